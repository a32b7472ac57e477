"""The redemption request's database work stays within budget: every query on the hot path is paid for
at hundreds of requests a second (bench/redeem.py)."""

import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from webhooks.models import Subscription

TRANSACTION_CONTROL = re.compile(
    r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE SAVEPOINT|ROLLBACK TO SAVEPOINT)\b"
)

# Lock the code (with its offer, site and member), look for a first use of the order, count the use,
# insert it, insert the event, insert the delivery of each subscription still active (one INSERT ... SELECT).
# The API key was checked by the warm-up request and is remembered (API_KEY_CACHE_SECONDS).
REDEEM_QUERY_BUDGET = 6


def redeem(api, code: str, order_id: str = "order-1"):
    body = {"code": code, "order_id": order_id, "order_value": "50.00", "currency": "AUD"}
    return api.post("/api/v1/codes/redeem", json.dumps(body), content_type="application/json")


def statements(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if not TRANSACTION_CONTROL.match(q["sql"])]


@pytest.fixture
def subscribed(offer) -> Subscription:
    return Subscription.objects.create(
        url="https://hooks.example.com/in",
        format="standard",
        events=["coupon.redeemed"],
        merchant=offer.merchant,
    )


def test_a_redemption_request_stays_within_its_query_budget(api, offer, subscribed) -> None:
    first, second = factories.CouponFactory(offer=offer), factories.CouponFactory(offer=offer)
    assert redeem(api, first.code, "warm-up").status_code == 201  # per-process caches filled, as in a worker
    with CaptureQueriesContext(connection) as captured:
        response = redeem(api, second.code)
    assert response.status_code == 201, response.content
    queries = statements(captured)
    assert len(queries) <= REDEEM_QUERY_BUDGET, "\n".join(queries)
    # The answer still carries everything the spec promises, from the objects already in hand.
    body = response.json()
    assert body["code"] == second.code and body["offer_id"] == offer.id and body["location"] is None
    assert body["discount_amount"] == "10.00" and body["order_id"] == "order-1"


def test_a_repeated_redemption_answers_the_first_use_in_full(api, offer) -> None:
    coupon = factories.CouponFactory(offer=offer)
    created = redeem(api, coupon.code).json()
    replay = redeem(api, coupon.code)
    assert replay.status_code == 200
    assert replay.json() == created


@pytest.mark.django_db(transaction=True)
def test_a_plain_redemption_is_one_transaction_without_savepoints(api, offer, subscribed) -> None:
    first, second = factories.CouponFactory(offer=offer), factories.CouponFactory(offer=offer)
    assert redeem(api, first.code, "warm-up").status_code == 201
    with CaptureQueriesContext(connection) as captured:
        assert redeem(api, second.code).status_code == 201
    control = [
        q["sql"].split()[0].upper() for q in captured.captured_queries if TRANSACTION_CONTROL.match(q["sql"])
    ]
    assert "SAVEPOINT" not in control and "RELEASE" not in control, control


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_redemption_still_leaves_nothing(api, offer, subscribed) -> None:
    coupon = factories.CouponFactory(offer=offer)
    body = {"code": coupon.code, "order_id": "dry", "order_value": "50.00", "currency": "AUD"}
    response = api.post(
        "/api/v1/codes/redeem", json.dumps(body), content_type="application/json", HTTP_X_DRY_RUN="1"
    )
    assert response.status_code == 201 and response["X-Dry-Run"] == "true"
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and not coupon.redemptions.exists()


@pytest.mark.django_db(transaction=True)
def test_a_validation_reads_without_opening_a_transaction(api, offer) -> None:
    first, second = factories.CouponFactory(offer=offer), factories.CouponFactory(offer=offer)
    body = {"order_value": "50.00", "currency": "AUD"}
    assert api.post("/api/v1/codes/validate", {**body, "code": first.code}, format="json").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        response = api.post("/api/v1/codes/validate", {**body, "code": second.code}, format="json")
    assert response.status_code == 200 and response.json()["valid"] is True
    assert [q["sql"] for q in captured.captured_queries if TRANSACTION_CONTROL.match(q["sql"])] == []
    assert len(captured.captured_queries) == 1  # the code with its offer, site and member
