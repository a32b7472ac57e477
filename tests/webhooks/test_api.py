"""The webhook API: subscription CRUD, owner isolation, the secret shown once, deliveries and retries."""

import pytest
from rest_framework.test import APIClient

from coupons import services as coupon_services
from coupons.models import ApiKey
from tests import factories
from tests.coupons.api.conftest import assert_error, client_for
from webhooks.models import Delivery, Subscription

from .factories import DeliveryFactory, EventFactory

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/api/v1/webhooks/subscriptions/"
DELIVERIES = "/api/v1/webhooks/deliveries/"


def client(merchant=None, distributor=None, scopes=None) -> APIClient:
    _, token = coupon_services.api_key_create(
        merchant=merchant, distributor=distributor, scopes=scopes or list(ApiKey.SCOPES)
    )
    return client_for(token)


@pytest.fixture
def api(merchant) -> APIClient:
    return client(merchant=merchant)


@pytest.fixture
def other_api() -> APIClient:
    return client(merchant=factories.MerchantFactory())


def body(**changes) -> dict:
    return {
        "url": "http://127.0.0.1:9/hook",
        "format": "hub_events",
        "events": ["coupon.issued", "coupon.redeemed"],
    } | changes


def create(api: APIClient, **changes) -> dict:
    response = api.post(SUBSCRIPTIONS, body(**changes), format="json")
    assert response.status_code == 201, response.content
    return response.json()


# --- subscriptions ---------------------------------------------------------------------------------


def test_creating_answers_the_subscription_with_its_secret_once(api, merchant, offer):
    created = create(api, offer_ids=[offer.id], headers={"X-Api-Key": "abc"})

    subscription = Subscription.objects.get()
    assert created == {
        "id": subscription.id, "name": "", "url": "http://127.0.0.1:9/hook", "format": "hub_events",
        "events": ["coupon.issued", "coupon.redeemed"], "http_method": "POST", "params": {},
        "headers": {"X-Api-Key": "abc"}, "offer_ids": [offer.id], "active": True, "disabled_reason": "",
        "circuit": {"state": "closed", "paused_since": None, "next_probe_at": None, "consecutive_failures": 0},
        "created_at": created["created_at"], "updated_at": created["updated_at"], "secret": subscription.secret,
    }  # fmt: skip
    assert created["secret"].startswith("whsec_")
    assert subscription.merchant == merchant and subscription.distributor is None
    for answer in (api.get(SUBSCRIPTIONS), api.get(f"{SUBSCRIPTIONS}{subscription.id}/")):
        assert "secret" not in answer.content.decode() and subscription.secret not in answer.content.decode()
    patched = api.patch(f"{SUBSCRIPTIONS}{subscription.id}/", {"name": "Hub"}, format="json")
    assert "secret" not in patched.json()


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url", "link-local"),
        ({"url": "ftp://example.com/"}, "url", "Only http:// and https://"),
        ({"format": "growlytics"}, "events", "cannot send coupon.redeemed"),
        ({"format": "uniqodo_callback", "events": ["coupon.redeemed"]}, "params", "needs params"),
        ({"format": "redcat", "events": ["coupon.redeemed"], "http_method": "GET"}, "http_method", "not GET"),
        ({"headers": {"webhook-signature": "v1,x"}}, "headers", "set by the platform"),
        ({"events": []}, "events", "at least one event"),
    ],
)
def test_an_invalid_subscription_is_a_400_naming_the_field(api, changes, field, message):
    response = api.post(SUBSCRIPTIONS, body(**changes), format="json")

    error = assert_error(response, 400, "invalid_request")
    assert message in error["fields"][field][0]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    "payload",
    [
        body(events="coupon.issued"),
        body(events=[{"x": 1}]),
        body(headers=["X-A"]),
        body(params={"code": {"nested": True}}),
        body(format="carrier-pigeon"),
        body(http_method="DELETE"),
        body(offer_ids=["one"]),
        body(offer_ids=[2**40]),
        body(active="maybe"),
        body(url="x" * 3000),
        body(secret="whsec_mine"),
        body(colour="blue"),
        ["not", "an", "object"],
        {},
    ],
)
def test_malformed_bodies_are_a_400_never_a_500(api, payload):
    assert_error(api.post(SUBSCRIPTIONS, payload, format="json"), 400, "invalid_request")


def test_invalid_json_is_a_400(api):
    assert_error(api.post(SUBSCRIPTIONS, "{nope", content_type="application/json"), 400, "invalid_request")


def test_fields_that_cannot_be_written_are_named(api):
    error = assert_error(
        api.post(SUBSCRIPTIONS, body(secret="whsec_x", colour="red"), format="json"), 400, "invalid_request"
    )

    assert error["fields"] == {"colour": ["unknown"], "secret": ["read_only"]}


def test_offer_ids_must_be_offers_the_key_sees(api, offer):
    foreign = factories.OfferFactory()

    error = assert_error(
        api.post(SUBSCRIPTIONS, body(offer_ids=[offer.id, foreign.id, 999999]), format="json"),
        400,
        "invalid_request",
    )

    assert error["fields"]["offer_ids"] == [f"Unknown offers: {foreign.id}, 999999."]


def test_a_distributor_key_subscribes_as_the_distributor_to_authorised_offers_only(offer):
    distributor = factories.DistributorFactory()
    offer.distributors.add(distributor)
    publisher = client(distributor=distributor)
    callback = {"format": "uniqodo_callback", "events": ["coupon.redeemed"], "params": {"code": "code"}}

    created = create(publisher, offer_ids=[offer.id], **callback)
    refused = publisher.post(
        SUBSCRIPTIONS, body(offer_ids=[factories.OfferFactory().id], **callback), format="json"
    )

    subscription = Subscription.objects.get(pk=created["id"])
    assert (subscription.distributor, subscription.merchant) == (distributor, None)
    assert_error(refused, 400, "invalid_request")


def test_another_owners_subscription_is_not_found_for_every_operation(api, other_api):
    theirs = create(other_api)
    url = f"{SUBSCRIPTIONS}{theirs['id']}/"

    assert api.get(SUBSCRIPTIONS).json()["results"] == []
    assert_error(api.get(url), 404, "not_found")
    assert_error(api.patch(url, {"name": "mine now"}, format="json"), 404, "not_found")
    assert_error(api.delete(url), 404, "not_found")
    assert_error(api.post(f"{url}rotate-secret"), 404, "not_found")
    assert_error(api.post(f"{url}test"), 404, "not_found")
    assert Subscription.objects.get().name == ""


def test_a_key_without_the_webhooks_scope_is_forbidden(merchant):
    assert_error(client(merchant=merchant, scopes=["read", "redeem"]).get(SUBSCRIPTIONS), 403, "forbidden")


def test_requests_without_a_key_are_unauthenticated():
    assert_error(APIClient().get(SUBSCRIPTIONS), 401, "unauthenticated")


def test_patch_changes_only_what_it_names_and_reactivating_clears_the_reason(api):
    created = create(api)
    Subscription.objects.filter(pk=created["id"]).update(active=False, disabled_reason="410 Gone")
    url = f"{SUBSCRIPTIONS}{created['id']}/"

    changed = api.patch(url, {"events": ["coupon.viewed"], "active": True}, format="json")

    assert changed.status_code == 200
    assert (changed.json()["events"], changed.json()["active"], changed.json()["disabled_reason"]) == (
        ["coupon.viewed"],
        True,
        "",
    )
    assert changed.json()["url"] == created["url"]
    assert_error(api.patch(url, {"format": "growlytics"}, format="json"), 400, "invalid_request")
    assert_error(api.patch(url, {"url": "http://[fe80::1]/"}, format="json"), 400, "invalid_request")


def test_delete_removes_the_subscription_and_its_log(api):
    created = create(api)
    DeliveryFactory(subscription_id=created["id"])
    url = f"{SUBSCRIPTIONS}{created['id']}/"

    assert api.delete(url).status_code == 204

    assert_error(api.get(url), 404, "not_found")
    assert not Delivery.objects.exists()


def test_rotating_answers_the_new_secret_and_the_old_keeps_signing_a_day(api):
    created = create(api)

    rotated = api.post(f"{SUBSCRIPTIONS}{created['id']}/rotate-secret")

    subscription = Subscription.objects.get()
    assert rotated.status_code == 200
    assert rotated.json()["secret"] == subscription.secret != created["secret"]
    assert subscription.signing_secrets() == [subscription.secret, created["secret"]]


def test_a_dry_run_creates_nothing(api):
    response = api.post(SUBSCRIPTIONS, body(), format="json", HTTP_X_DRY_RUN="true")

    assert response.status_code == 201 and response["X-Dry-Run"] == "true"
    assert not Subscription.objects.exists()


def test_the_same_idempotency_key_replays_the_creating_answer_without_its_secret(api):
    first = api.post(SUBSCRIPTIONS, body(), format="json", HTTP_IDEMPOTENCY_KEY="create-hub")
    again = api.post(SUBSCRIPTIONS, body(), format="json", HTTP_IDEMPOTENCY_KEY="create-hub")

    # The secret is shown once: a client that lost the first answer rotates the secret to get one.
    assert again.json() == {k: v for k, v in first.json().items() if k != "secret"}
    assert again["Idempotent-Replayed"] == "true"
    assert Subscription.objects.count() == 1


def test_a_test_event_is_queued_as_a_manual_delivery(api):
    created = create(api)

    response = api.post(f"{SUBSCRIPTIONS}{created['id']}/test")

    assert response.status_code == 202
    delivery = Delivery.objects.get()
    assert response.json()["id"] == delivery.id and response.json()["event_type"] == "coupon.issued"
    assert delivery.manual is True


# --- deliveries ------------------------------------------------------------------------------------


def test_deliveries_are_listed_with_their_attempts_and_filtered(api, other_api):
    mine = Subscription.objects.get(pk=create(api)["id"])
    second = Subscription.objects.get(pk=create(api, url="http://127.0.0.1:9/second")["id"])
    failed = DeliveryFactory(
        subscription=mine, status="failed", attempts=2, event=EventFactory(type="coupon.issued")
    )
    failed.attempt_log.create(
        subscription=mine, status_code=500, duration_ms=12, error="The receiver answered HTTP 500."
    )
    failed.attempt_log.create(subscription=mine, status_code=None, duration_ms=5000, error="Timed out")
    pending = DeliveryFactory(subscription=second)
    DeliveryFactory(subscription=Subscription.objects.get(pk=create(other_api)["id"]))

    listed = api.get(DELIVERIES).json()
    by_status = api.get(DELIVERIES, {"status": "failed"}).json()["results"]
    by_subscription = api.get(DELIVERIES, {"subscription": second.id}).json()["results"]
    by_type = api.get(DELIVERIES, {"event_type": "coupon.issued"}).json()["results"]

    assert [d["id"] for d in listed["results"]] == [pending.id, failed.id]
    assert [d["id"] for d in by_status] == [failed.id]
    assert [d["id"] for d in by_subscription] == [pending.id]
    assert [d["id"] for d in by_type] == [failed.id]
    shown = by_status[0]
    assert (shown["status"], shown["attempt_count"], shown["event_id"], shown["message_id"]) == (
        "failed", 2, str(failed.event.uuid), failed.message_id,
    )  # fmt: skip
    assert [(a["status_code"], a["error"]) for a in shown["attempts"]] == [
        (500, "The receiver answered HTTP 500."), (None, "Timed out"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "query", [{"status": "lost"}, {"subscription": "abc"}, {"subscription": "0"}, {"event_type": "x"}]
)
def test_bad_delivery_filters_are_a_400(api, query):
    assert_error(api.get(DELIVERIES, query), 400, "invalid_request")


def test_retry_sends_a_failed_delivery_again_and_refuses_what_cannot_be_retried(api, other_api):
    mine = Subscription.objects.get(pk=create(api)["id"])
    failed = DeliveryFactory(subscription=mine, status="failed", next_attempt_at=None)
    succeeded = DeliveryFactory(subscription=mine, status="succeeded")
    theirs = DeliveryFactory(
        subscription=Subscription.objects.get(pk=create(other_api)["id"]), status="failed"
    )

    retried = api.post(f"{DELIVERIES}{failed.id}/retry")

    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    assert Delivery.objects.get(pk=failed.pk).manual is True
    assert_error(api.post(f"{DELIVERIES}{succeeded.id}/retry"), 409, "already_succeeded")
    assert_error(api.post(f"{DELIVERIES}{theirs.id}/retry"), 404, "not_found")
    assert_error(api.get(f"{DELIVERIES}{theirs.id}/"), 404, "not_found")
    assert api.get(f"{DELIVERIES}{failed.id}/").json()["id"] == failed.id


def test_a_callbacks_parameters_keep_the_order_they_were_given_in(api):
    # jsonb sorts an object's keys (shortest first): this order is the one it would not keep.
    params = {"voucher_code": "code", "ref": "orderId", "total": "orderValue", "z": "redeemedAt"}
    created = create(api, format="uniqodo_callback", events=["coupon.redeemed"], params=params)

    subscription = Subscription.objects.get()
    assert list(subscription.params) == list(params)
    shown = api.get(f"{SUBSCRIPTIONS}{created['id']}/")
    assert (
        shown.content.index(b'"voucher_code"') < shown.content.index(b'"ref"') < shown.content.index(b'"z"')
    )
    assert list(shown.json()["params"]) == list(params)
    changed = {"z": "redeemedAt", "voucher_code": "code"}
    assert list(api.patch(f"{SUBSCRIPTIONS}{created['id']}/", {"params": changed}, format="json").json()["params"]) == [
        "z", "voucher_code",
    ]  # fmt: skip
    assert list(Subscription.objects.get().params) == ["z", "voucher_code"]
