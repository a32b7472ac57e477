"""Subscription and delivery services: validation, rotation, test events, retry now, replay, recover, housekeeping."""

import json
from datetime import timedelta

import pytest

from coupons.errors import ApplicationError
from tests import factories
from webhooks import retries
from webhooks.formats import FORMATS
from webhooks.models import Attempt, Delivery, Event, Subscription
from webhooks.services import (
    deliveries_purge,
    deliveries_recover_failed_since,
    delivery_replay,
    delivery_retry_now,
    subscription_create,
    subscription_rotate_secret,
    subscription_send_test_event,
    subscription_update,
    subscriptions_auto_disable,
)
from webhooks.transport import deliveries_send_due

from .factories import DeliveryFactory, EventFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def refusal(**fields) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        subscription_create(
            **(
                {"url": "http://127.0.0.1:9/hook", "format": "standard", "events": ["coupon.redeemed"]}
                | fields
            )
        )
    assert refused.value.code == "invalid_request"
    return refused.value


# --- subscriptions -------------------------------------------------------------------------------


def test_a_new_subscription_gets_its_own_whsec_signing_secret(merchant):
    first = subscription_create(
        merchant=merchant, url="http://127.0.0.1:9/a", format="standard", events=["coupon.redeemed"]
    )
    second = subscription_create(
        merchant=merchant, url="http://127.0.0.1:9/b", format="standard", events=["coupon.redeemed"]
    )

    assert first.secret.startswith("whsec_") and len(first.secret) > 30
    assert first.secret != second.secret
    assert first.merchant == merchant


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"format": "growlytics", "events": ["coupon.redeemed"]}, "events", "cannot send coupon.redeemed"),
        ({"events": ["coupon.exploded"]}, "events", "Unknown event types: coupon.exploded"),
        ({"events": []}, "events", "at least one event"),
        ({"events": "coupon.redeemed"}, "events", "a list"),
        ({"format": "nope"}, "format", "Unknown format 'nope'"),
        ({"format": "redcat", "http_method": "GET"}, "http_method", "sent with POST, not GET"),
        ({"format": "uniqodo_callback", "params": {}}, "params", "needs params"),
        ({"format": "uniqodo_callback", "params": {"c": "password"}}, "params", "not a data item"),
        ({"params": {"code": "code"}}, "params", "takes no parameters"),
        ({"headers": {"webhook-signature": "v1,forged"}}, "headers", "set by the platform"),
        ({"headers": {"Bad Name": "x"}}, "headers", "not a valid header name"),
        ({"headers": {"X-Ok": "line\r\nInjected: 1"}}, "headers", "on one line"),
        ({"headers": ["X-Ok"]}, "headers", "an object"),
        ({"url": ""}, "url", "Enter the URL"),
    ],
)
def test_a_subscription_is_refused_with_the_field_at_fault_and_a_clear_message(fields, field, message):
    refused = refusal(**fields)

    assert message in refused.fields[field][0]
    # The body's message is the first problem.
    assert refused.message == next(iter(refused.fields.values()))[0]
    assert not Subscription.objects.exists()


def test_a_subscription_can_only_filter_on_offers_its_owner_sees(merchant, offer):
    foreign = factories.OfferFactory()

    refused = refusal(merchant=merchant, offers=[offer, foreign])

    assert refused.fields["offer_ids"] == [f"Unknown offers: {foreign.id}."]


def test_each_event_is_kept_once_in_the_order_given():
    subscription = subscription_create(
        url="http://127.0.0.1:9/hook",
        format="standard",
        events=["coupon.viewed", "coupon.issued", "coupon.viewed"],
    )

    assert subscription.events == ["coupon.viewed", "coupon.issued"]


def test_unknown_fields_are_refused():
    assert refusal(colour="blue").fields == {"colour": ["unknown"]}


def test_turning_a_disabled_subscription_back_on_clears_why_it_was_disabled(subscription):
    Subscription.objects.filter(pk=subscription.pk).update(
        active=False, disabled_reason="410", disabled_at=retries.clock(), failing_since=retries.clock()
    )

    subscription_update(subscription=subscription, active=True)

    subscription.refresh_from_db()
    assert (subscription.active, subscription.disabled_reason, subscription.disabled_at, subscription.failing_since) == (
        True, "", None, None,
    )  # fmt: skip


def test_an_update_never_puts_back_a_secret_rotated_meanwhile(subscription):
    stale = Subscription.objects.get(pk=subscription.pk)
    new_secret = subscription_rotate_secret(subscription=subscription)

    subscription_update(subscription=stale, name="Renamed")

    subscription.refresh_from_db()
    assert (subscription.name, subscription.secret) == ("Renamed", new_secret)


def test_rotating_keeps_the_previous_secret_signing_for_24_hours(subscription):
    old = subscription.secret
    now = retries.clock()

    new = subscription_rotate_secret(subscription=subscription, now=now)

    assert new != old and new == subscription.secret
    assert subscription.previous_secret == old
    assert subscription.previous_secret_expires_at == now + timedelta(hours=24)
    assert subscription.signing_secrets(now + timedelta(hours=23)) == [new, old]
    assert subscription.signing_secrets(now + timedelta(hours=25)) == [new]


# --- test events ---------------------------------------------------------------------------------

FORMAT_EVENTS = [
    (name, event) for name, format_class in FORMATS.items() for event in sorted(format_class.events)
]


@pytest.mark.parametrize(("format_name", "event_type"), FORMAT_EVENTS)
def test_a_test_event_of_every_format_and_event_reaches_the_receiver(receiver, format_name, event_type):
    params = {"code": "code", "orderId": "orderId"} if format_name == "uniqodo_callback" else {}
    subscription = SubscriptionFactory(
        url=receiver.url_for("/hook"), format=format_name, events=[event_type], params=params
    )
    receiver.expect_request("/hook").respond_with_data("ok")

    delivery = subscription_send_test_event(subscription=subscription)
    deliveries_send_due()

    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert Event.objects.get().data["test"] is True
    assert Attempt.objects.get().trigger == "manual"
    ((request, _),) = receiver.log
    if format_name == "uniqodo_callback":
        assert request.get_data() == b"code=SAMPLECODE&orderId=SAMPLE-ORDER"
    else:
        assert json.loads(request.get_data())


def test_a_test_event_is_refused_for_an_event_the_subscription_does_not_receive(subscription):
    with pytest.raises(ApplicationError, match="does not receive coupon.created"):
        subscription_send_test_event(subscription=subscription, event_type="coupon.created")


def test_a_test_event_rings_the_bell_once_committed(subscription, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        subscription_send_test_event(subscription=subscription)

    assert len(callbacks) == 1


# --- retry now, replay, recover ------------------------------------------------------------------


def test_retry_now_sends_a_failed_delivery_again_and_records_a_manual_attempt(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("ok")
    delivery = DeliveryFactory(subscription=subscription, status="failed", attempts=9, next_attempt_at=None)

    delivery_retry_now(delivery=delivery)
    assert (delivery.status, delivery.manual) == ("pending", True)
    deliveries_send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.manual) == ("succeeded", 10, False)
    assert Attempt.objects.get().trigger == "manual"


def test_a_manual_attempt_that_fails_on_an_exhausted_delivery_fails_it_again(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("down", status=500)
    delivery = DeliveryFactory(subscription=subscription, status="failed", attempts=9, next_attempt_at=None)

    delivery_retry_now(delivery=delivery)
    deliveries_send_due()

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 10)


def test_retry_now_refuses_a_succeeded_delivery_a_delivery_in_flight_and_a_disabled_subscription(
    subscription,
):
    succeeded = DeliveryFactory(subscription=subscription, status="succeeded")
    in_flight = DeliveryFactory(
        subscription=subscription, claimed_until=retries.clock() + timedelta(seconds=30)
    )
    disabled = DeliveryFactory(subscription=SubscriptionFactory(active=False, disabled_reason="410 Gone"))

    for delivery, code in [
        (succeeded, "already_succeeded"),
        (in_flight, "delivery_in_flight"),
        (disabled, "subscription_disabled"),
    ]:
        with pytest.raises(ApplicationError) as refused:
            delivery_retry_now(delivery=delivery)
        assert refused.value.code == code and refused.value.status == 409


def test_replay_sends_the_same_event_again_as_a_new_delivery_with_the_same_webhook_id(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("ok")
    original = DeliveryFactory(
        subscription=subscription, status="succeeded", attempts=1, next_attempt_at=None
    )

    replay = delivery_replay(delivery=original)
    deliveries_send_due()

    replay.refresh_from_db()
    original.refresh_from_db()
    assert replay.id != original.id
    assert (replay.event_id, replay.message_id, replay.status) == (
        original.event_id,
        original.message_id,
        "succeeded",
    )
    assert (original.status, original.attempts) == ("succeeded", 1)
    ((request, _),) = receiver.log
    assert request.headers["webhook-id"] == original.message_id


def test_recover_sends_again_every_delivery_failed_since_a_moment(subscription):
    now = retries.clock()
    recent = [
        DeliveryFactory(subscription=subscription, status="failed", created_at=now - timedelta(hours=h))
        for h in (1, 2)
    ]
    old = DeliveryFactory(subscription=subscription, status="failed", created_at=now - timedelta(days=3))
    succeeded = DeliveryFactory(
        subscription=subscription, status="succeeded", created_at=now - timedelta(hours=1)
    )
    elsewhere = DeliveryFactory(status="failed", created_at=now - timedelta(hours=1))

    count = deliveries_recover_failed_since(subscription=subscription, since=now - timedelta(days=1), now=now)

    assert count == 2
    statuses = dict(Delivery.objects.values_list("id", "status"))
    assert [statuses[d.id] for d in recent] == ["pending", "pending"]
    assert (statuses[old.id], statuses[succeeded.id], statuses[elsewhere.id]) == (
        "failed",
        "succeeded",
        "failed",
    )
    assert set(Delivery.objects.filter(status="pending").values_list("manual", flat=True)) == {True}


def test_recover_refuses_a_disabled_subscription(subscription):
    Subscription.objects.filter(pk=subscription.pk).update(active=False)
    subscription.refresh_from_db()

    with pytest.raises(ApplicationError, match="turn it on first"):
        deliveries_recover_failed_since(subscription=subscription, since=retries.clock())


# --- housekeeping --------------------------------------------------------------------------------


def test_a_subscription_failing_for_five_days_is_disabled_with_the_reason(receiver):
    now = retries.clock()
    failing = SubscriptionFactory(
        url=receiver.url_for("/a"), failing_since=now - timedelta(days=5, minutes=1)
    )
    recent = SubscriptionFactory(url=receiver.url_for("/b"), failing_since=now - timedelta(days=4))
    healthy = SubscriptionFactory(url=receiver.url_for("/c"))

    assert subscriptions_auto_disable(now=now) == 1

    failing.refresh_from_db()
    assert failing.active is False and failing.disabled_at == now
    assert failing.disabled_reason.startswith("Disabled automatically: every delivery has failed since")
    assert "5 days without a success" in failing.disabled_reason
    assert Subscription.objects.get(pk=recent.pk).active and Subscription.objects.get(pk=healthy.pk).active


def test_the_first_failure_starts_the_failing_streak_and_later_ones_keep_its_start(receiver, subscription):
    receiver.expect_request("/hook").respond_with_data("down", status=500)
    DeliveryFactory(subscription=subscription)
    first = retries.clock()
    deliveries_send_due(now=first)
    DeliveryFactory(subscription=subscription, next_attempt_at=first)

    deliveries_send_due(now=first + timedelta(minutes=10))

    subscription.refresh_from_db()
    assert subscription.failing_since == first


def test_the_purge_deletes_events_past_retention_with_their_deliveries_and_attempts(subscription, settings):
    settings.WEBHOOKS_RETENTION_DAYS = 30
    now = retries.clock()
    old = EventFactory(created_at=now - timedelta(days=31))
    kept = EventFactory(created_at=now - timedelta(days=29))
    for event in (old, kept):
        delivery = DeliveryFactory(event=event, subscription=subscription, status="succeeded")
        Attempt.objects.create(delivery=delivery, subscription=subscription, status_code=200)

    assert deliveries_purge(now=now) == 1

    assert list(Event.objects.values_list("id", flat=True)) == [kept.id]
    assert Delivery.objects.get().event_id == kept.id
    assert Attempt.objects.get().delivery.event_id == kept.id


@pytest.mark.parametrize("params", [{"code\x00": "code"}, {"\ud800": "code"}, {"code": "co\x00de"}])
def test_callback_parameters_the_database_cannot_store_are_refused_on_every_path(params):
    # The admin form and the API both save through here; jsonb refuses NUL and no encoder takes a lone surrogate.
    error = refusal(format="uniqodo_callback", params=params)
    assert set(error.fields) == {"params"}
    assert not Subscription.objects.exists()
