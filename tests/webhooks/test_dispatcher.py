"""The dispatcher: fair lanes with an in-flight cap, the circuit breaker, retries on time, records that survive deletions."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from webhooks import retries
from webhooks.models import Attempt, Delivery, Event, Subscription
from webhooks.recording import results_record
from webhooks.services import deliveries_purge, subscription_delete
from webhooks.transport import deliveries_claim, deliveries_send_due

from .conftest import sent_now
from .factories import DeliveryFactory, EventFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


class Gauge:
    """Counts a receiver's requests in flight and remembers the most at once."""

    def __init__(self, delay: float) -> None:
        self.delay, self.now, self.most, self.answered = delay, 0, 0, []
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.delay)
        with self.lock:
            self.now -= 1
            self.answered.append(time.monotonic())
        return Response("ok")


@pytest.fixture
def slow_server():
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    if server.is_running():
        server.stop()


def test_a_slow_receiver_holds_only_its_own_lane_and_never_more_than_its_cap(receiver, slow_server, settings):
    settings.WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 2
    slow, fast = Gauge(delay=0.5), Gauge(delay=0)
    slow_server.expect_request("/hook").respond_with_handler(slow)
    receiver.expect_request("/hook").respond_with_handler(fast)
    DeliveryFactory.create_batch(6, subscription=SubscriptionFactory(url=slow_server.url_for("/hook")))
    DeliveryFactory.create_batch(20, subscription=SubscriptionFactory(url=receiver.url_for("/hook")))
    started = time.monotonic()

    assert deliveries_send_due() == 26

    assert slow.most == 2  # its cap, however many of its deliveries were due
    assert (
        len(fast.answered) == 20 and max(fast.answered) - started < 0.5
    )  # before the slow lane's first answer
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def failing_subscription(receiver, deliveries: int) -> Subscription:
    def down(request):
        time.sleep(0.02)  # a receiver that answers, slowly enough for each record to see the streak grow
        return Response("down", status=500)

    receiver.expect_request("/hook").respond_with_handler(down)
    subscription = SubscriptionFactory(url=receiver.url_for("/hook"))
    DeliveryFactory.create_batch(deliveries, subscription=subscription)
    return subscription


def test_the_circuit_opens_after_failures_in_a_row_and_drops_nothing(receiver, settings):
    settings.WEBHOOKS_CIRCUIT_FAILURES = 5
    subscription = failing_subscription(receiver, deliveries=30)
    now = retries.clock()

    deliveries_send_due(now=now)

    subscription.refresh_from_db()
    assert subscription.circuit_opened_at == now and subscription.consecutive_failures >= 5
    assert subscription.circuit_probe_at > now  # on the retry schedule
    assert Attempt.objects.count() < 30  # paused long before every delivery was tried
    assert set(Delivery.objects.values_list("status", flat=True)) == {"pending"}  # none dropped
    assert "paused since" in subscription.circuit_summary()


def test_an_open_circuit_sends_one_probe_when_it_falls_due_and_nothing_before(receiver, settings):
    settings.WEBHOOKS_CIRCUIT_FAILURES = 5
    subscription = failing_subscription(receiver, deliveries=30)
    now = retries.clock()
    deliveries_send_due(now=now)
    subscription.refresh_from_db()
    probe_at, tried = subscription.circuit_probe_at, Attempt.objects.count()

    assert deliveries_send_due(now=probe_at - timedelta(milliseconds=1)) == 0
    assert deliveries_send_due(now=probe_at) == 1  # one probe, which fails

    subscription.refresh_from_db()
    assert Attempt.objects.count() == tried + 1
    assert subscription.circuit_opened_at == now and subscription.circuit_probe_at > probe_at


def test_a_successful_probe_closes_the_circuit_and_everything_waiting_goes_out(receiver, settings):
    settings.WEBHOOKS_CIRCUIT_FAILURES = 5
    subscription = failing_subscription(receiver, deliveries=30)
    deliveries_send_due(now=retries.clock())
    subscription.refresh_from_db()
    receiver.clear()
    receiver.expect_request("/hook").respond_with_data("ok")

    deliveries_send_due(now=subscription.circuit_probe_at + timedelta(days=1))

    subscription.refresh_from_db()
    assert (subscription.circuit_opened_at, subscription.consecutive_failures) == (None, 0)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_a_success_between_failures_keeps_the_circuit_closed(receiver, settings):
    settings.WEBHOOKS_CIRCUIT_FAILURES = 3
    flaky = iter([500, 500, 200, 500, 500, 200] * 5)
    receiver.expect_request("/hook").respond_with_handler(lambda request: Response("x", status=next(flaky)))
    subscription = SubscriptionFactory(url=receiver.url_for("/hook"))
    settings.WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION = 1  # one at a time: the answers come in order
    DeliveryFactory.create_batch(4, subscription=subscription)

    deliveries_send_due(now=retries.clock())

    subscription.refresh_from_db()
    assert subscription.circuit_opened_at is None


def test_retries_fall_due_on_the_controllable_clock_and_not_before(receiver, subscription, monkeypatch):
    receiver.expect_request("/hook").respond_with_data("busy", status=503, headers={"Retry-After": "30"})
    DeliveryFactory(subscription=subscription)
    start = retries.clock()
    clock = {"now": start}
    monkeypatch.setattr(retries, "clock", lambda: clock["now"])

    deliveries_send_due()  # the first attempt, then Retry-After (30 s) beats the immediate retry
    due = Delivery.objects.get().next_attempt_at
    assert timedelta(seconds=29) < due - start <= timedelta(seconds=30)

    clock["now"] = due - timedelta(seconds=1)
    assert deliveries_send_due() == 0
    clock["now"] = due
    assert deliveries_send_due() == 1
    attempt = Attempt.objects.order_by("id").last()
    assert attempt.due_at == due and attempt.started_at - due < timedelta(seconds=1)


def claimed(*subscriptions: Subscription, token) -> list[Delivery]:
    wants = {subscription.id: 10 for subscription in subscriptions}
    return deliveries_claim(wants=wants, now=retries.clock(), token=token)[0]


def test_a_subscription_deleted_during_a_send_leaves_the_other_records_intact(receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    kept, deleted = (SubscriptionFactory(url=receiver.url_for("/hook")) for _ in range(2))
    DeliveryFactory(subscription=kept), DeliveryFactory(subscription=deleted)
    token = uuid.uuid4()
    results = [sent_now(delivery) for delivery in claimed(kept, deleted, token=token)]

    subscription_delete(subscription=deleted)  # while the requests were in flight
    results_record(results, token=token)

    assert list(Delivery.objects.values_list("subscription_id", "status", "attempts")) == [
        (kept.id, "succeeded", 1)
    ]
    assert list(Attempt.objects.values_list("subscription_id", flat=True)) == [kept.id]


def test_an_event_deleted_during_a_send_leaves_the_other_records_intact(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("ok")
    first, second = DeliveryFactory(subscription=subscription), DeliveryFactory(subscription=subscription)
    token = uuid.uuid4()
    results = [sent_now(delivery) for delivery in claimed(subscription, token=token)]

    Event.objects.filter(pk=first.event_id).delete()
    results_record(results, token=token)

    assert list(Delivery.objects.values_list("id", "status")) == [(second.id, "succeeded")]
    assert Attempt.objects.get().delivery_id == second.id


def test_the_purge_keeps_an_old_event_whose_delivery_is_still_pending(subscription, settings):
    old = retries.clock() - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS + 1)
    waiting = DeliveryFactory(subscription=subscription, event=EventFactory(created_at=old))
    done = DeliveryFactory(subscription=subscription, event=EventFactory(created_at=old), status="succeeded")
    given_up = DeliveryFactory(subscription=subscription, event=EventFactory(created_at=old), status="failed")

    assert deliveries_purge() == 2

    assert list(Event.objects.values_list("id", flat=True)) == [waiting.event_id]
    assert not Delivery.objects.filter(id__in=[done.id, given_up.id]).exists()


def test_the_purge_during_a_send_keeps_the_event_being_sent(receiver, subscription, settings):
    receiver.expect_request("/hook").respond_with_data("ok")
    old = retries.clock() - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS + 1)
    DeliveryFactory(subscription=subscription, event=EventFactory(created_at=old))
    token = uuid.uuid4()
    results = [sent_now(delivery) for delivery in claimed(subscription, token=token)]

    assert deliveries_purge() == 0  # pending while its request is in flight
    results_record(results, token=token)

    assert Delivery.objects.get().status == "succeeded"


def test_a_retention_shorter_than_the_retry_schedule_is_refused_at_start(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.WEBHOOKS_RETENTION_DAYS = 1
    with pytest.raises(
        ImproperlyConfigured, match="WEBHOOKS_RETENTION_DAYS=1 is shorter than the retry schedule"
    ):
        retries.retention_check()


def test_retry_now_on_a_paused_subscription_probes_at_once(receiver, settings):
    from webhooks.services import delivery_retry_now

    settings.WEBHOOKS_CIRCUIT_FAILURES = 5
    subscription = failing_subscription(receiver, deliveries=30)
    deliveries_send_due(now=retries.clock())
    tried = Attempt.objects.count()

    delivery_retry_now(delivery=Delivery.objects.order_by("id").first())

    assert deliveries_send_due() == 1  # the probe, though the next was minutes away
    assert Attempt.objects.count() == tried + 1
    subscription.refresh_from_db()
    assert subscription.circuit_opened_at is not None  # it failed again: still paused


def test_turning_a_subscription_back_on_closes_its_circuit(receiver, settings):
    from webhooks.services import subscription_update

    settings.WEBHOOKS_CIRCUIT_FAILURES = 5
    subscription = failing_subscription(receiver, deliveries=10)
    deliveries_send_due(now=retries.clock())
    Subscription.objects.filter(pk=subscription.pk).update(active=False)

    subscription_update(subscription=subscription, active=True)

    subscription.refresh_from_db()
    assert (subscription.circuit_opened_at, subscription.consecutive_failures, subscription.failing_since) == (
        None, 0, None,
    )  # fmt: skip
