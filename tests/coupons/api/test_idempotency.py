"""Idempotency-Key: the first answer replayed for the same key and body, 422 for another body, per API key."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone

from config.schedules import SCHEDULES
from coupons.api.idempotency import idempotency_records_purge
from coupons.models import ApiKey, Coupon, IdempotencyRecord, Merchant
from coupons.services import api_key_create
from coupons.tasks import idempotency_records_purge_task
from tests import factories
from tests.concurrency import all_at_once
from tests.coupons.api.conftest import assert_error, client_for


def create_codes(api, offer, key: str, count: int = 1, **headers):
    return api.post(f"/api/v1/offers/{offer.id}/coupons/", {"count": count}, format="json",
                    HTTP_IDEMPOTENCY_KEY=key, **headers)  # fmt: skip


def test_the_same_key_and_body_replays_the_first_answer_without_running_again(api, offer):
    first = create_codes(api, offer, "k-1")
    again = create_codes(api, offer, "k-1")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Coupon.objects.count() == 1


def test_the_same_key_with_another_body_is_a_conflict(api, offer):
    create_codes(api, offer, "k-2")
    error = assert_error(create_codes(api, offer, "k-2", count=2), 422, "idempotency_conflict")
    assert "Idempotency-Key" in error["fields"]
    assert Coupon.objects.count() == 1


def test_the_same_key_on_another_path_is_a_conflict(api, offer):
    create_codes(api, offer, "k-3")
    response = api.post("/api/v1/members/", {"count": 1}, format="json", HTTP_IDEMPOTENCY_KEY="k-3")
    assert_error(response, 422, "idempotency_conflict")


def test_keys_belong_to_one_api_key(api, make_client, merchant, offer):
    create_codes(api, offer, "shared")
    other = make_client(merchant=merchant)
    response = create_codes(other, offer, "shared")
    assert response.status_code == 201 and "Idempotent-Replayed" not in response
    assert Coupon.objects.count() == 2


def test_a_refusal_is_replayed_but_bad_input_frees_the_key(api, coupon):
    order = {"code": coupon.code, "order_value": "80", "currency": "AUD"}
    bad = api.post("/api/v1/codes/redeem", order, format="json", HTTP_IDEMPOTENCY_KEY="r-1")
    assert_error(bad, 400, "invalid_request")  # order_id missing: nothing ran
    fixed = api.post(
        "/api/v1/codes/redeem", {**order, "order_id": "A"}, format="json", HTTP_IDEMPOTENCY_KEY="r-1"
    )
    assert fixed.status_code == 201
    refused = api.post(
        "/api/v1/codes/redeem", {**order, "order_id": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="r-2"
    )
    assert_error(refused, 409, "already_redeemed")
    api.post(f"/api/v1/redemptions/{fixed.json()['id']}/rollback")
    replayed = api.post(
        "/api/v1/codes/redeem", {**order, "order_id": "B"}, format="json", HTTP_IDEMPOTENCY_KEY="r-2"
    )
    assert replayed.status_code == 409 and replayed["Idempotent-Replayed"] == "true"


def test_a_job_answer_is_replayed_with_its_location(api, offer):
    body = {"count": 2, "TaskServer": True}
    url = f"/api/v1/offers/{offer.id}/coupons/"
    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="job-1")
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="job-1")
    assert (
        again.status_code == 202 and again["Location"] == first["Location"] and again.json() == first.json()
    )


def test_a_key_older_than_the_ttl_is_ignored(api, offer):
    create_codes(api, offer, "old")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = create_codes(api, offer, "old", count=2)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again
    assert Coupon.objects.count() == 3


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_an_unusable_key_is_refused(api, offer, key):
    assert "Idempotency-Key" in assert_error(create_codes(api, offer, key), 400, "invalid_request")["fields"]
    assert not Coupon.objects.exists()


@override_settings(IDEMPOTENCY_KEY_TTL_HOURS=1)
def test_the_hourly_task_purges_records_past_the_ttl(api, offer):
    create_codes(api, offer, "keep")
    create_codes(api, offer, "drop")
    IdempotencyRecord.objects.filter(key="drop").update(created_at=timezone.now() - timedelta(hours=2))
    assert idempotency_records_purge_task() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["keep"]
    assert idempotency_records_purge() == 0
    assert "coupons.tasks.idempotency_records_purge_task" in [func for func, _ in SCHEDULES.values()]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_with_one_key_run_once(is_postgres):
    assert is_postgres
    merchant = Merchant.objects.create(name="Concurrent")
    offer = factories.OfferFactory(site=factories.SiteFactory(merchant=merchant))
    _, token = api_key_create(merchant=merchant, scopes=list(ApiKey.SCOPES))
    answers = all_at_once(lambda _: create_codes(client_for(token), offer, "race", count=3), 6)
    assert len(answers) == 6 and {a.status_code for a in answers} == {201}
    assert all(a.json() == answers[0].json() for a in answers)
    assert sum(1 for a in answers if "Idempotent-Replayed" not in a) == 1
    assert Coupon.objects.filter(offer=offer).count() == 3


def test_a_replay_is_byte_for_byte_the_first_answer(api, offer):
    body = {"name": "Zebra", "coupon_type": "fixedAmount", "discount_value": "5.00", "applicable_filters": [],
            "mystery_discounts": [], "external_id": "ext-ü"}  # fmt: skip
    first = api.post("/api/v1/offers/", body, format="json", HTTP_IDEMPOTENCY_KEY="bytes")
    again = api.post("/api/v1/offers/", body, format="json", HTTP_IDEMPOTENCY_KEY="bytes")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"]


SUBSCRIPTION = {"url": "http://127.0.0.1:9/hook", "format": "standard", "events": ["coupon.redeemed"]}


def test_a_replayed_subscription_creation_never_shows_the_secret_again(api, db):
    first = api.post(
        "/api/v1/webhooks/subscriptions/", SUBSCRIPTION, format="json", HTTP_IDEMPOTENCY_KEY="s-1"
    )
    again = api.post(
        "/api/v1/webhooks/subscriptions/", SUBSCRIPTION, format="json", HTTP_IDEMPOTENCY_KEY="s-1"
    )
    assert first.status_code == again.status_code == 201
    assert first.json()["secret"].startswith("whsec_")
    assert "secret" not in again.json() and again["Idempotent-Replayed"] == "true"
    assert {k: v for k, v in first.json().items() if k != "secret"} == again.json()
    assert b"whsec_" not in bytes(IdempotencyRecord.objects.get(key="s-1").response_content)


def test_a_replayed_rotation_never_shows_the_new_secret_again(api, db):
    subscription_id = api.post("/api/v1/webhooks/subscriptions/", SUBSCRIPTION, format="json").json()["id"]
    path = f"/api/v1/webhooks/subscriptions/{subscription_id}/rotate-secret"
    first = api.post(path, HTTP_IDEMPOTENCY_KEY="r-1")
    again = api.post(path, HTTP_IDEMPOTENCY_KEY="r-1")
    assert first.status_code == again.status_code == 200
    assert first.json()["secret"].startswith("whsec_") and "secret" not in again.json()
    assert again.json()["id"] == subscription_id
    assert b"whsec_" not in bytes(IdempotencyRecord.objects.get(key="r-1").response_content)


def test_a_replayed_import_answers_its_first_answer_though_its_codes_now_exist(api, offer):
    def upload():
        return api.post(f"/api/v1/offers/{offer.id}/codes/import", "code\nOWNCODE0001\n", content_type="text/csv",
                        HTTP_IDEMPOTENCY_KEY="import-1")  # fmt: skip

    first, again = upload(), upload()
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again["Idempotent-Replayed"] == "true"
    assert Coupon.objects.filter(code="OWNCODE0001").count() == 1
