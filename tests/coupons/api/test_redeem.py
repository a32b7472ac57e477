"""Validate, redeem and roll back over the API: answers, refusals as 409 (or valid: false), repeats."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from coupons.models import Coupon, Redemption
from tests import factories
from tests.coupons.api.conftest import assert_error
from webhooks.models import Event

ORDER = {"order_value": "80.00", "currency": "AUD"}
REDEMPTION_FIELDS = {
    "id", "coupon_id", "code", "offer_id", "order_id", "order_value", "currency", "discount_amount", "member_id",
    "location", "redeemed_at", "rolled_back_at",
}  # fmt: skip


def redeem(api, code: str, order_id: str = "ORD-1", **extra):
    return api.post(
        "/api/v1/codes/redeem", {"code": code, "order_id": order_id, **ORDER, **extra}, format="json"
    )


def test_a_valid_code_validates_with_its_discount_and_writes_nothing(api, coupon):
    response = api.post("/api/v1/codes/validate", {"code": coupon.code, **ORDER}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "valid": True, "code": coupon.code, "offer_id": coupon.offer_id, "discount_amount": "10.00",
        "free_shipping": False, "error": None,
    }  # fmt: skip
    assert not Redemption.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize(
    "change, code",
    [
        ({"currency": "NZD"}, "currency_mismatch"),
        ({"order_value": "1.00", "min_order": Decimal("50")}, "min_order_not_met"),
        ({"used": True}, "already_redeemed"),
        ({"expired": True}, "expired"),
    ],
)
def test_a_refused_code_validates_as_not_valid_with_the_error(api, coupon, change, code):
    if change.pop("min_order", None):
        coupon.offer.min_order_amount = Decimal("50")
        coupon.offer.save()
    if change.pop("used", None):
        Coupon.objects.filter(pk=coupon.pk).update(times_redeemed=1, status="redeemed")
    if change.pop("expired", None):
        Coupon.objects.filter(pk=coupon.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = api.post("/api/v1/codes/validate", {"code": coupon.code, **ORDER, **change}, format="json")
    body = response.json()
    assert response.status_code == 200 and body["valid"] is False and body["discount_amount"] == "0.00"
    assert body["error"]["code"] == code and body["error"]["message"]


def test_validating_an_unknown_code_is_not_found(api, offer):
    assert_error(
        api.post("/api/v1/codes/validate", {"code": "NOPE", **ORDER}, format="json"), 404, "not_found"
    )


@pytest.mark.parametrize(
    "body, field",
    [
        ({**ORDER}, "code"),
        ({"code": "X", "currency": "AUD"}, "order_value"),
        ({"code": "X", "order_value": "ten", "currency": "AUD"}, "order_value"),
        ({"code": "X", "order_value": "-1", "currency": "AUD"}, "order_value"),
        ({"code": "X", "order_value": "1", "currency": "A1"}, "currency"),
        ({"code": "X", **ORDER, "products": "abc"}, "products"),
        ({"code": "X", **ORDER, "products": [{"sku": 1}]}, "products"),
        ({"code": "X", **ORDER, "member_id": "me"}, "member_id"),
    ],
)
def test_validation_names_the_bad_field(api, offer, body, field):
    response = api.post("/api/v1/codes/validate", body, format="json")
    assert field in assert_error(response, 400, "invalid_request")["fields"]


def test_a_product_offer_discounts_the_matching_products(api, site):
    offer = factories.OfferFactory(site=site, coupon_type="percentage", discount_value=Decimal("10"),
                                   applicable_on="product", applicable_filters=["sku-1"])  # fmt: skip
    coupon = factories.CouponFactory(offer=offer)
    body = {
        "code": coupon.code,
        **ORDER,
        "products": [{"id": "sku-1", "amount": "30.00"}, {"id": "sku-2", "amount": "50"}],
    }
    assert api.post("/api/v1/codes/validate", body, format="json").json()["discount_amount"] == "3.00"
    refused = api.post("/api/v1/codes/validate", {**body, "products": ["sku-9"]}, format="json").json()
    assert refused["error"]["code"] == "not_applicable"


def test_redeeming_uses_the_code_once_and_answers_the_redemption(api, coupon, member):
    response = redeem(api, coupon.code, member_id=member.id, location="Shop 123")
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= REDEMPTION_FIELDS
    assert (
        body["discount_amount"] == "10.00"
        and body["order_value"] == "80.00"
        and body["location"] == "Shop 123"
    )
    assert body["member_id"] == member.id and body["rolled_back_at"] is None
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 1 and coupon.status == "redeemed"
    assert Event.objects.filter(type="coupon.redeemed").count() == 1


def test_the_same_code_and_order_again_answers_the_first_redemption(api, coupon):
    first = redeem(api, coupon.code)
    again = redeem(api, coupon.code)
    assert again.status_code == 200 and again.json() == first.json()
    assert Redemption.objects.count() == 1


def test_a_second_order_on_a_single_use_code_is_refused_with_409(api, coupon):
    redeem(api, coupon.code, "ORD-1")
    assert_error(redeem(api, coupon.code, "ORD-2"), 409, "already_redeemed")
    assert Redemption.objects.count() == 1
    assert Event.objects.filter(type="coupon.redemption_failed").count() == 1


@pytest.mark.parametrize(
    "extra, code",
    [({"currency": "USD"}, "currency_mismatch"), ({"order_value": "0.50", "min": True}, "min_order_not_met")],
)
def test_redemption_refusals_answer_409_with_the_error(api, coupon, extra, code):
    if extra.pop("min", None):
        coupon.offer.min_order_amount = Decimal("5")
        coupon.offer.save()
    assert_error(redeem(api, coupon.code, **extra), 409, code)
    assert not Redemption.objects.exists()


def test_redeeming_an_unknown_code_is_not_found(api, offer):
    assert_error(redeem(api, "NOPE"), 404, "not_found")


def test_redeeming_without_an_order_id_names_it(api, coupon):
    response = api.post("/api/v1/codes/redeem", {"code": coupon.code, **ORDER}, format="json")
    assert "order_id" in assert_error(response, 400, "invalid_request")["fields"]


def test_a_rollback_gives_the_use_back_once(api, coupon):
    redemption = redeem(api, coupon.code).json()
    response = api.post(f"/api/v1/redemptions/{redemption['id']}/rollback")
    assert response.status_code == 200 and response.json()["rolled_back_at"]
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and coupon.status == "active"
    assert_error(api.post(f"/api/v1/redemptions/{redemption['id']}/rollback"), 409, "already_rolled_back")
    assert redeem(api, coupon.code, "ORD-2").status_code == 201


def test_a_redemption_can_be_read_back(api, coupon):
    redemption = redeem(api, coupon.code).json()
    assert api.get(f"/api/v1/redemptions/{redemption['id']}/").json() == redemption
    assert_error(api.get("/api/v1/redemptions/424242/"), 404, "not_found")
    assert_error(api.post("/api/v1/redemptions/424242/rollback"), 404, "not_found")


def test_validating_and_redeeming_need_their_scopes(make_client, merchant, coupon):
    validator = make_client(merchant=merchant, scopes=["validate"])
    assert (
        validator.post("/api/v1/codes/validate", {"code": coupon.code, **ORDER}, format="json").status_code
        == 200
    )
    assert_error(redeem(validator, coupon.code), 403, "forbidden")
    reader = make_client(merchant=merchant, scopes=["read"])
    assert_error(
        reader.post("/api/v1/codes/validate", {"code": coupon.code, **ORDER}, format="json"), 403, "forbidden"
    )
    assert_error(reader.post("/api/v1/redemptions/1/rollback"), 403, "forbidden")


def test_a_distributor_redemption_records_the_distributor(make_client, coupon):
    distributor = factories.DistributorFactory()
    coupon.offer.distributors.add(distributor)
    body = redeem(make_client(distributor=distributor), coupon.code).json()
    assert body["distributor_id"] == distributor.id
