"""Tenant boundaries between a merchant and the distributors it authorises for its offers."""

import pytest

from tests import factories
from tests.coupons.api.conftest import assert_error

ORDER = {"order_value": "80", "currency": "AUD"}


@pytest.fixture
def distributor(offer):
    distributor = factories.DistributorFactory()
    offer.distributors.add(distributor)
    return distributor


@pytest.fixture
def distributor_api(make_client, distributor):
    return make_client(distributor=distributor)


def test_a_distributor_cannot_roll_back_a_redemption_the_merchant_made(distributor_api, offer):
    redemption = factories.RedemptionFactory(coupon=factories.CouponFactory(offer=offer, times_redeemed=1))
    response = distributor_api.post(f"/api/v1/redemptions/{redemption.id}/rollback")
    assert_error(response, 404, "not_found")
    redemption.refresh_from_db()
    assert redemption.rolled_back_at is None


def test_a_distributor_cannot_roll_back_another_distributors_redemption(distributor_api, offer):
    other = factories.DistributorFactory()
    offer.distributors.add(other)
    redemption = factories.RedemptionFactory(
        coupon=factories.CouponFactory(offer=offer, times_redeemed=1), distributor=other
    )
    assert_error(distributor_api.post(f"/api/v1/redemptions/{redemption.id}/rollback"), 404, "not_found")


def test_a_distributor_rolls_back_its_own_redemption(distributor_api, offer, distributor):
    coupon = factories.CouponFactory(offer=offer)
    body = {"code": coupon.code, "order_id": "1", **ORDER}
    redemption = distributor_api.post("/api/v1/codes/redeem", body, format="json").json()
    response = distributor_api.post(f"/api/v1/redemptions/{redemption['id']}/rollback")
    assert response.status_code == 200, response.content
    assert response.json()["rolled_back_at"]


def test_the_merchant_rolls_back_a_distributors_redemption_of_its_offer(api, offer, distributor):
    redemption = factories.RedemptionFactory(
        coupon=factories.CouponFactory(offer=offer, times_redeemed=1), distributor=distributor
    )
    response = api.post(f"/api/v1/redemptions/{redemption.id}/rollback")
    assert response.status_code == 200, response.content


WRITES = {
    "offer patch": ("patch", "/api/v1/offers/{offer}/", {"name": "Mine now"}, "json"),
    "code creation": ("post", "/api/v1/offers/{offer}/coupons/", {"count": 1}, "json"),
    "code import": ("post", "/api/v1/offers/{offer}/codes/import", {"file": "x"}, "multipart"),
}


@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_distributor_cannot_change_the_merchants_offer_or_make_its_codes(distributor_api, offer, name):
    method, url, body, fmt = WRITES[name]
    response = getattr(distributor_api, method)(url.format(offer=offer.id), body, format=fmt)
    assert_error(response, 403, "forbidden")
    offer.refresh_from_db()
    assert offer.name != "Mine now" and not offer.coupons.exists()


def test_a_distributor_still_issues_validates_and_redeems_the_offers_codes(distributor_api, offer):
    issued = distributor_api.post(f"/api/v1/offers/{offer.id}/issue", {"identifier": "x"}, format="json")
    assert issued.status_code == 201, issued.content
    code = issued.json()["code"]
    validated = distributor_api.post("/api/v1/codes/validate", {"code": code, **ORDER}, format="json")
    assert validated.json()["valid"] is True
    redeemed = distributor_api.post(
        "/api/v1/codes/redeem", {"code": code, "order_id": "1", **ORDER}, format="json"
    )
    assert redeemed.status_code == 201, redeemed.content
