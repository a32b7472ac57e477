"""Webhook operations over the API, as the admin's actions: replay a delivery, recover failures since a time, test."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from tests import factories
from tests.coupons.api.conftest import assert_error
from webhooks.models import Delivery, Subscription
from webhooks.transport import deliveries_send_due

from .factories import DeliveryFactory, EventFactory, SubscriptionFactory
from .test_api import DELIVERIES, SUBSCRIPTIONS, client

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(merchant):
    return client(merchant=merchant)


@pytest.fixture
def theirs():
    """Another merchant's subscription, with a failed delivery."""
    subscription = SubscriptionFactory(merchant=factories.MerchantFactory())
    DeliveryFactory(subscription=subscription, status="failed", next_attempt_at=None)
    return subscription


def state(subscription: Subscription) -> list[tuple]:
    return list(
        Delivery.objects.filter(subscription=subscription)
        .order_by("id")
        .values_list("id", "status", "manual", "next_attempt_at")
    )


# --- replay ----------------------------------------------------------------------------------------


def test_a_replay_sends_the_same_message_again_as_a_new_delivery_with_the_same_webhook_id(
    api, subscription, receiver
):
    receiver.expect_request("/hook").respond_with_data("ok")
    original = DeliveryFactory(
        subscription=subscription, status="succeeded", attempts=1, next_attempt_at=None
    )

    answer = api.post(f"{DELIVERIES}{original.id}/replay")

    assert answer.status_code == 202, answer.content
    replay = Delivery.objects.get(pk=answer.json()["id"])
    assert replay.id != original.id and answer.json()["status"] == "pending"
    assert (replay.event_id, replay.message_id, replay.manual) == (
        original.event_id,
        original.message_id,
        True,
    )
    deliveries_send_due()
    ((request, _),) = receiver.log
    assert request.headers["webhook-id"] == original.message_id
    original.refresh_from_db()
    assert (original.status, original.attempts) == ("succeeded", 1)
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.changes) == (
        "delivery.replay",
        str(original.id),
        {"replay_id": replay.id},
    )


def test_another_owners_delivery_cannot_be_replayed(api, theirs):
    before = Delivery.objects.count()
    assert_error(api.post(f"{DELIVERIES}{theirs.deliveries.get().id}/replay"), 404, "not_found")
    assert_error(api.post(f"{DELIVERIES}999999/replay"), 404, "not_found")
    assert Delivery.objects.count() == before and not AuditEntry.objects.exists()


def test_a_delivery_of_a_disabled_subscription_is_not_replayed(api, subscription):
    delivery = DeliveryFactory(subscription=subscription, status="failed")
    Subscription.objects.filter(pk=subscription.pk).update(active=False, disabled_reason="410 Gone")
    assert_error(api.post(f"{DELIVERIES}{delivery.id}/replay"), 409, "subscription_disabled")
    assert Delivery.objects.count() == 1


def test_a_dry_run_replays_nothing(api, subscription):
    delivery = DeliveryFactory(subscription=subscription, status="succeeded")
    assert api.post(f"{DELIVERIES}{delivery.id}/replay", HTTP_X_DRY_RUN="true").status_code == 202
    assert Delivery.objects.count() == 1 and not AuditEntry.objects.exists()


# --- recover failed since --------------------------------------------------------------------------


def test_recover_sends_again_the_subscriptions_deliveries_failed_since_the_time(api, subscription, merchant):
    now = timezone.now()
    since = now - timedelta(hours=2)

    def failed(age: timedelta, owner=subscription, status="failed"):
        return DeliveryFactory(subscription=owner, status=status, next_attempt_at=None, created_at=now - age)

    recent = [failed(timedelta(hours=1)), failed(timedelta(minutes=5))]
    older = failed(timedelta(hours=3))
    succeeded = failed(timedelta(minutes=1), status="succeeded")
    sibling = SubscriptionFactory(merchant=merchant, url="http://127.0.0.1:9/other")
    elsewhere = failed(timedelta(minutes=1), owner=sibling)
    untouched = state(sibling)

    answer = api.post(
        f"{SUBSCRIPTIONS}{subscription.id}/recover", {"since": since.isoformat()}, format="json"
    )

    assert answer.status_code == 202, answer.content
    assert answer.json()["recovered"] == 2 and answer.json()["subscription_id"] == subscription.id
    for delivery in recent:
        delivery.refresh_from_db()
        assert (delivery.status, delivery.manual) == (
            "pending",
            True,
        ) and delivery.next_attempt_at is not None
    for delivery, status in ((older, "failed"), (succeeded, "succeeded"), (elsewhere, "failed")):
        delivery.refresh_from_db()
        assert delivery.status == status and not delivery.manual
    assert state(sibling) == untouched
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.object_id, entry.changes["recovered"]) == (
        "subscription.recover_failed", str(subscription.id), 2,
    )  # fmt: skip


def test_another_owners_subscription_cannot_be_recovered(api, theirs):
    before = state(theirs)
    url = f"{SUBSCRIPTIONS}{theirs.id}/recover"
    assert_error(api.post(url, {"since": "2020-01-01T00:00:00+00:00"}, format="json"), 404, "not_found")
    assert state(theirs) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"since": "yesterday"},
        {"since": None},
        {"since": "0001-01-01T00:00:00+05:00"},
        {"since": "9999-12-31T23:59:59-05:00"},
        {"since": "2020-01-01T00:00:00+00:00", "until": "2021-01-01T00:00:00+00:00"},
        [],
    ],
)
def test_a_bad_recover_body_is_a_400_naming_the_field(api, subscription, body):
    failed = DeliveryFactory(subscription=subscription, status="failed")
    error = assert_error(
        api.post(f"{SUBSCRIPTIONS}{subscription.id}/recover", body, format="json"), 400, "invalid_request"
    )
    assert error["fields"]
    failed.refresh_from_db()
    assert failed.status == "failed"


def test_a_disabled_subscription_is_not_recovered(api, subscription):
    DeliveryFactory(subscription=subscription, status="failed")
    Subscription.objects.filter(pk=subscription.pk).update(active=False)
    body = {"since": "2020-01-01T00:00:00+00:00"}
    assert_error(
        api.post(f"{SUBSCRIPTIONS}{subscription.id}/recover", body, format="json"),
        409,
        "subscription_disabled",
    )
    assert Delivery.objects.get().status == "failed"


# --- test events -----------------------------------------------------------------------------------


def test_a_test_event_of_a_chosen_type_reaches_the_receiver(api, subscription, receiver):
    receiver.expect_request("/hook").respond_with_data("ok")
    answer = api.post(
        f"{SUBSCRIPTIONS}{subscription.id}/test", {"event_type": "coupon.redeemed"}, format="json"
    )
    assert answer.status_code == 202, answer.content
    assert answer.json()["event_type"] == "coupon.redeemed"
    deliveries_send_due()
    ((request, _),) = receiver.log
    assert request.get_json()["type"] == "coupon.redeemed" and request.get_json()["data"]["test"] is True
    assert AuditEntry.objects.get().action == "subscription.test_event"


@pytest.mark.parametrize("event_type", ["coupon.created", "coupon.nope", 7, None])
def test_a_test_event_the_subscription_does_not_receive_is_a_400(api, subscription, event_type):
    body = {"event_type": event_type}
    error = assert_error(
        api.post(f"{SUBSCRIPTIONS}{subscription.id}/test", body, format="json"), 400, "invalid_request"
    )
    assert "event_type" in error["fields"]
    assert not Delivery.objects.exists()


def test_a_disabled_subscription_gets_no_test_event(api, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(active=False)
    assert_error(api.post(f"{SUBSCRIPTIONS}{subscription.id}/test"), 409, "subscription_disabled")
    assert not Delivery.objects.exists()


# --- scope -----------------------------------------------------------------------------------------


def test_the_operations_need_the_webhooks_scope(merchant, subscription):
    reader = client(merchant=merchant, scopes=["read", "redeem", "offers"])
    delivery = DeliveryFactory(subscription=subscription, status="failed", event=EventFactory())
    assert_error(reader.post(f"{DELIVERIES}{delivery.id}/replay"), 403, "forbidden")
    assert_error(reader.post(f"{DELIVERIES}{delivery.id}/retry"), 403, "forbidden")
    body = {"since": "2020-01-01T00:00:00+00:00"}
    assert_error(
        reader.post(f"{SUBSCRIPTIONS}{subscription.id}/recover", body, format="json"), 403, "forbidden"
    )
    assert_error(reader.post(f"{SUBSCRIPTIONS}{subscription.id}/test"), 403, "forbidden")
    assert Delivery.objects.count() == 1 and Delivery.objects.get().status == "failed"
