"""Claims: concurrent senders never send a delivery twice while its claim holds; a dead sender's claim lapses."""

import threading
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webhooks import retries
from webhooks.models import Attempt, Delivery
from webhooks.recording import results_record
from webhooks.transport import claim_window, deliveries_claim, deliveries_send_due

from .conftest import sent_now
from .factories import DeliveryFactory, SubscriptionFactory


def claim(subscription, now, token=None, limit=10) -> list[Delivery]:
    return deliveries_claim(wants={subscription.id: limit}, now=now, token=token or uuid.uuid4())[0]


def test_a_claimed_delivery_is_not_claimed_again_until_its_claim_lapses(db, subscription):
    delivery = DeliveryFactory(subscription=subscription)
    now = retries.clock()

    assert [d.id for d in claim(subscription, now)] == [delivery.id]
    assert claim(subscription, now) == []
    assert claim(subscription, now + claim_window() - timedelta(seconds=1)) == []
    # A dispatcher killed mid-send never records; once its claim lapses another takes the delivery over.
    assert [d.id for d in claim(subscription, now + claim_window() + timedelta(seconds=1))] == [delivery.id]


def test_a_claim_outlives_the_whole_request_deadline(settings):
    assert claim_window() > timedelta(seconds=settings.WEBHOOKS_TOTAL_TIMEOUT)


def test_a_claim_reports_the_subscriptions_that_ran_out_of_due_deliveries(db, subscription):
    DeliveryFactory.create_batch(3, subscription=subscription)

    claimed, exhausted = deliveries_claim(wants={subscription.id: 2}, now=retries.clock(), token=uuid.uuid4())
    assert (len(claimed), exhausted) == (2, set())
    claimed, exhausted = deliveries_claim(wants={subscription.id: 2}, now=retries.clock(), token=uuid.uuid4())
    assert (len(claimed), exhausted) == (1, {subscription.id})


def test_a_sender_whose_claim_was_taken_over_does_not_overwrite_the_new_senders_outcome(
    db, receiver, subscription
):
    receiver.expect_request("/hook").respond_with_data("ok")
    DeliveryFactory(subscription=subscription)
    now = retries.clock()
    slow, quick = uuid.uuid4(), uuid.uuid4()
    (stale,) = claim(subscription, now, token=slow)
    (fresh,) = claim(subscription, now + claim_window() + timedelta(seconds=1), token=quick)
    results_record([sent_now(fresh)], token=quick)

    results_record([sent_now(stale)], token=slow)  # the slow sender finally finishes

    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)
    assert Attempt.objects.count() == 2  # both attempts really happened and are kept


def test_deliveries_of_disabled_subscriptions_and_future_retries_are_not_claimed(db, subscription):
    disabled = SubscriptionFactory(active=False)
    DeliveryFactory(subscription=disabled)
    DeliveryFactory(subscription=subscription, next_attempt_at=retries.clock() + timedelta(minutes=5))
    DeliveryFactory(subscription=subscription, status=Delivery.Status.FAILED)

    assert claim(subscription, retries.clock()) == []
    assert claim(disabled, retries.clock()) == []


@pytest.mark.django_db(transaction=True)
def test_concurrent_senders_send_every_delivery_exactly_once(receiver, settings):
    """Four threads, each with its own database connection, drain the same 120 deliveries of two subscriptions."""
    settings.WEBHOOKS_SEND_CONCURRENCY = 4
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def count(request):
        with lock:
            seen[request.headers["webhook-id"]] += 1
        from werkzeug import Response

        return Response("ok")

    receiver.expect_request("/hook").respond_with_handler(count)
    subscriptions = [SubscriptionFactory(url=receiver.url_for("/hook")) for _ in range(2)]
    deliveries = [DeliveryFactory(subscription=subscriptions[n % 2]) for n in range(120)]
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            start.wait(timeout=10)
            deliveries_send_due()
        except BaseException as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    deliveries_send_due()  # whatever a thread that found a subscription busy left for later

    assert errors == []
    assert not any(thread.is_alive() for thread in threads)
    assert sorted(seen) == sorted(d.message_id for d in deliveries)
    assert set(seen.values()) == {1}
    assert Attempt.objects.count() == 120
    assert set(Delivery.objects.values_list("status", "attempts")) == {("succeeded", 1)}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_on_postgresql_a_row_another_sender_is_claiming_is_skipped_not_waited_for(subscription):
    held, free = DeliveryFactory(subscription=subscription), DeliveryFactory(subscription=subscription)
    locked, release = threading.Event(), threading.Event()

    def other_sender() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                Delivery.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(timeout=10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_sender)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        with CaptureQueriesContext(connection) as queries:
            claimed = claim(subscription, retries.clock())
    finally:
        release.set()
        thread.join(timeout=10)

    assert [d.id for d in claimed] == [free.id]
    assert any("FOR UPDATE OF" in q["sql"] and "SKIP LOCKED" in q["sql"] for q in queries.captured_queries)
