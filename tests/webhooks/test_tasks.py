"""The cluster side: a debounced doorbell task, a minute sweep, housekeeping tasks that never raise, schedules."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django_q.models import OrmQ, Schedule

from tests import factories
from webhooks import retries, tasks
from webhooks.models import Delivery, Subscription
from webhooks.outbox import event_record
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


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_commits_enqueues_one_send_task_and_a_commit_after_its_start_another(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    SubscriptionFactory(url=receiver.url_for("/hook"))
    offer = factories.OfferFactory()
    for _ in range(5):
        with transaction.atomic():  # really committed: the doorbell rings after each
            event_record(event_type="coupon.redeemed", offer=offer, data={})
    assert queued_send_tasks() == 1

    assert tasks.deliveries_send_task() == 5  # the task starts, clears the flag and sends
    with transaction.atomic():
        event_record(event_type="coupon.redeemed", offer=offer, data={})

    assert queued_send_tasks() == 2


def test_the_send_task_sends_what_is_due(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("ok")
    DeliveryFactory(subscription=subscription)

    assert tasks.deliveries_send_task() == 1

    assert Delivery.objects.get().status == "succeeded"


def test_the_sweep_takes_over_a_delivery_whose_sender_died_holding_its_claim(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("ok")
    expired = retries.clock() - timedelta(seconds=1)
    DeliveryFactory(
        subscription=subscription, claimed_until=expired, claim_token="5f0e3c84-1111-4f6a-9a55-7d1c0a3e9b21"
    )

    assert tasks.deliveries_sweep_task() == 1

    assert Delivery.objects.get().status == "succeeded"


def test_a_failing_task_logs_and_returns_instead_of_raising(monkeypatch, caplog):
    def broken() -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr("webhooks.transport.deliveries_send_due", broken)

    with caplog.at_level(logging.ERROR, logger="webhooks.tasks"):
        assert tasks.deliveries_sweep_task() == 0

    assert "sweep due deliveries" in caplog.text and "database went away" in caplog.text


def test_the_doorbell_never_raises_after_a_commit(monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(tasks.cache, "add", unreachable)

    with caplog.at_level(logging.ERROR, logger="webhooks.tasks"):
        tasks.deliveries_kick()

    assert "the retry sweep will send instead" in caplog.text
    assert queued_send_tasks() == 0


def test_the_housekeeping_tasks_run_their_services(subscription, settings):
    Subscription.objects.filter(pk=subscription.pk).update(failing_since=retries.clock() - timedelta(days=6))
    DeliveryFactory(
        subscription=subscription,
        event__created_at=retries.clock() - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS + 1),
    )

    assert tasks.subscriptions_auto_disable_task() == 1
    assert tasks.deliveries_purge_task() == 1
    assert not Delivery.objects.exists()


def test_the_webhook_schedules_exist_after_migrate():
    schedules = dict(Schedule.objects.filter(name__startswith="webhooks:").values_list("func", "minutes"))

    assert schedules == {
        "webhooks.tasks.deliveries_sweep_task": 1,
        "webhooks.tasks.subscriptions_auto_disable_task": 60,
        "webhooks.tasks.deliveries_purge_task": 1440,
    }


def test_the_cluster_never_reruns_a_task_that_is_still_running_and_polls_often():
    cluster = settings.Q_CLUSTER
    assert cluster["retry"] > cluster["timeout"] > tasks_run_bound()
    assert cluster["max_attempts"] == 1 and cluster["ack_failures"] is True
    assert cluster["poll"] <= 0.2 and cluster["queue_limit"] <= 10


def tasks_run_bound() -> float:
    from webhooks.transport import CLAIM_MARGIN, RUN_SECONDS, claim_duration

    # A run stops claiming after RUN_SECONDS; its last batch may then time out wave after wave.
    return RUN_SECONDS + (claim_duration() - CLAIM_MARGIN).total_seconds()


# A backlog draws more than one worker: a run that claims a full batch asks the cluster for a helper.


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
