"""The cluster side: a dispatcher asked for on commit, runs that hand over, a minute sweep, tasks that never raise."""

import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from tests import factories
from webhooks import doorbell, retries, tasks
from webhooks.models import Delivery, Dispatcher, Subscription
from webhooks.outbox import event_record
from webhooks.transport import HANDOVER_WAIT, LOOK_EVERY, Dispatch

from .factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_watch():
    doorbell.watch_forget()
    yield
    doorbell.watch_forget()


@pytest.fixture
def short_runs(settings):
    settings.WEBHOOKS_DISPATCHER_RUN_SECONDS = 0.5


def queued_send_tasks() -> int:
    return sum(1 for task in OrmQ.objects.all() if task.func() == "webhooks.tasks.deliveries_send_task")


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_commits_with_no_dispatcher_running_asks_for_one_dispatcher(receiver):
    SubscriptionFactory(url=receiver.url_for("/hook"))
    offer = factories.OfferFactory()
    for _ in range(5):
        with transaction.atomic():  # really committed: the doorbell rings after each
            event_record(event_type="coupon.redeemed", offer=offer, data={})

    assert queued_send_tasks() == 1


@pytest.mark.django_db(transaction=True)
def test_commits_ask_for_nothing_while_a_dispatcher_holds_a_lease(receiver):
    Dispatcher.objects.create(slot=1, lease_until=timezone.now() + timedelta(seconds=10))
    SubscriptionFactory(url=receiver.url_for("/hook"))
    with transaction.atomic():
        event_record(event_type="coupon.redeemed", offer=factories.OfferFactory(), data={})

    assert queued_send_tasks() == 0


@pytest.mark.django_db(transaction=True)
def test_a_dispatcher_run_sends_what_is_due_and_hands_over_to_the_next_run(
    receiver, subscription, short_runs
):
    receiver.expect_request("/hook").respond_with_data("ok")
    DeliveryFactory(subscription=subscription)

    assert tasks.deliveries_sweep_task() == 1

    assert Delivery.objects.get().status == "succeeded"
    assert queued_send_tasks() == 1  # its successor
    assert Dispatcher.objects.get().lease_until is None  # the slot is free for it at once
    assert Subscription.objects.get().dispatch_token is None


def test_a_second_dispatcher_finds_every_slot_taken_and_returns_at_once(short_runs):
    Dispatcher.objects.create(slot=1, token="5f0e3c84-1111-4f6a-9a55-7d1c0a3e9b21",
                              lease_until=timezone.now() + timedelta(seconds=10))  # fmt: skip

    assert tasks.deliveries_sweep_task() == 0


def test_a_dispatcher_whose_predecessor_was_killed_takes_its_slot_once_the_lease_lapses(short_runs):
    Dispatcher.objects.create(slot=1, token="5f0e3c84-1111-4f6a-9a55-7d1c0a3e9b21",
                              lease_until=timezone.now() - timedelta(seconds=1))  # fmt: skip

    assert Dispatch(continuous=True).slot_acquire(wait=0)


def test_the_sweep_takes_over_a_delivery_whose_sender_died_holding_its_claim(
    receiver, subscription, short_runs
):
    receiver.expect_request("/hook").respond_with_data("ok")
    expired = retries.clock() - timedelta(seconds=1)
    DeliveryFactory(
        subscription=subscription, claimed_until=expired, claim_token="5f0e3c84-1111-4f6a-9a55-7d1c0a3e9b21"
    )

    assert tasks.deliveries_sweep_task() == 1

    assert Delivery.objects.get().status == "succeeded"


def test_a_failing_task_logs_and_returns_instead_of_raising(monkeypatch, caplog):
    def broken(**kwargs) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr("webhooks.transport.dispatcher_run", broken)

    with caplog.at_level(logging.ERROR, logger="webhooks.tasks"):
        assert tasks.deliveries_sweep_task() == 0

    assert "sweep due deliveries" in caplog.text and "database went away" in caplog.text


def test_the_doorbell_never_raises_after_a_commit(monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise ConnectionError("database down")

    monkeypatch.setattr(doorbell, "dispatcher_alive", unreachable)

    with caplog.at_level(logging.ERROR, logger="webhooks.doorbell"):
        doorbell._watch.check()

    assert "the minute sweep will start one" in caplog.text
    assert queued_send_tasks() == 0


def test_the_housekeeping_tasks_run_their_services(subscription, settings):
    Subscription.objects.filter(pk=subscription.pk).update(failing_since=retries.clock() - timedelta(days=6))
    DeliveryFactory(
        subscription=subscription,
        status=Delivery.Status.FAILED,
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
    assert cluster["retry"] > cluster["timeout"] > dispatcher_run_bound()
    assert cluster["max_attempts"] == 1 and cluster["ack_failures"] is True
    assert cluster["poll"] <= 0.2 and cluster["queue_limit"] <= 10


def dispatcher_run_bound() -> float:
    # Waiting for a slot, the run itself, then its last requests (each within the deadline) and a margin.
    return (
        HANDOVER_WAIT
        + settings.WEBHOOKS_DISPATCHER_RUN_SECONDS
        + LOOK_EVERY
        + settings.WEBHOOKS_TOTAL_TIMEOUT
        + 5
    )
