"""A backlog draws more than one worker: a run that claims a full batch asks the cluster for a helper."""

import pytest
from django.core.cache import cache
from django_q.models import OrmQ

from webhooks import tasks
from webhooks.models import Delivery
from webhooks.transport import batch_size, deliveries_send_due

from .factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def no_flag():
    cache.delete(tasks.SEND_QUEUED_FLAG)
    yield
    cache.delete(tasks.SEND_QUEUED_FLAG)


def queued_send_tasks() -> int:
    return sum(1 for task in OrmQ.objects.all() if task.func() == "webhooks.tasks.deliveries_send_task")


def test_a_run_with_a_backlog_asks_for_one_helper_and_still_sends_everything(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    subscription = SubscriptionFactory(url=receiver.url_for("/hook"))
    DeliveryFactory.create_batch(3 * batch_size(), subscription=subscription)

    assert deliveries_send_due() == 3 * batch_size()

    assert queued_send_tasks() == 1  # three full batches, one request for help
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_run_with_less_than_a_batch_works_alone(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    subscription = SubscriptionFactory(url=receiver.url_for("/hook"))
    DeliveryFactory.create_batch(batch_size() - 1, subscription=subscription)

    assert deliveries_send_due() == batch_size() - 1
    assert queued_send_tasks() == 0
