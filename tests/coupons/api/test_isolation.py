"""Owner isolation: another owner's key gets 404 for every kind of object, exactly as if it did not exist."""

import pytest

from coupons import jobs
from tests import factories
from tests.coupons.api.conftest import assert_error

ORDER = {"order_value": "80", "currency": "AUD"}


@pytest.fixture
def theirs(offer, member):
    """Another merchant's view of our offer, code, member, redemption and job."""
    offer.external_id = "EXT-1"
    offer.save()
    coupon = factories.CouponFactory(offer=offer, member=member)
    redemption = factories.RedemptionFactory(coupon=factories.CouponFactory(offer=offer), member=member)
    job = jobs.job_generate_start(offer=offer, count=3)
    return {"offer": offer, "coupon": coupon, "member": member, "redemption": redemption, "job": job}


def requests(o: dict) -> dict:
    offer, code = o["offer"].id, o["coupon"].code
    return {
        "offer": ("get", f"/api/v1/offers/{offer}/", None),
        "offer patch": ("patch", f"/api/v1/offers/{offer}/", {"name": "Mine now"}),
        "offer stats": ("get", f"/api/v1/offers/{offer}/stats/", None),
        "offer codes": ("get", f"/api/v1/offers/{offer}/coupons/", None),
        "offer code creation": ("post", f"/api/v1/offers/{offer}/coupons/", {"count": 1}),
        "offer csv": ("get", f"/api/v1/offers/{offer}/coupons.csv", None),
        "offer import": ("post", f"/api/v1/offers/{offer}/codes/import", {"file": "x"}),
        "issue": ("post", f"/api/v1/offers/{offer}/issue", {"identifier": "x"}),
        "talon get": ("get", f"/api/v1/customer_engagement/coupon?applicationId={o['offer'].merchant_id}"
                             f"&campaignId={offer}&externalCampaignId=EXT-1&identifier=x", None),
        "code": ("get", f"/api/v1/codes/{code}", None),
        "code view": ("post", f"/api/v1/codes/{code}/view", {}),
        "validate": ("post", "/api/v1/codes/validate", {"code": code, **ORDER}),
        "redeem": ("post", "/api/v1/codes/redeem", {"code": code, "order_id": "1", **ORDER}),
        "redemption": ("get", f"/api/v1/redemptions/{o['redemption'].id}/", None),
        "rollback": ("post", f"/api/v1/redemptions/{o['redemption'].id}/rollback", None),
        "job": ("get", f"/api/v1/jobs/{o['job'].id}/", None),
    }  # fmt: skip


ALL = ["offer", "offer patch", "offer stats", "offer codes", "offer code creation", "offer csv", "offer import",
       "issue", "talon get", "code", "code view", "validate", "redeem", "redemption", "rollback", "job"]  # fmt: skip


def test_every_request_kind_is_checked(theirs):
    assert sorted(requests(theirs)) == sorted(ALL)


@pytest.mark.parametrize("name", ALL)
def test_another_merchants_key_gets_not_found(other_api, theirs, name):
    method, url, body = requests(theirs)[name]
    fmt = "multipart" if name == "offer import" else "json"
    response = (
        getattr(other_api, method)(url, body, format=fmt)
        if body is not None
        else getattr(other_api, method)(url)
    )
    assert_error(response, 404, "not_found")


@pytest.mark.parametrize("name", ALL)
def test_a_distributor_not_authorised_for_the_offer_gets_not_found(make_client, theirs, name):
    client = make_client(distributor=factories.DistributorFactory())
    method, url, body = requests(theirs)[name]
    fmt = "multipart" if name == "offer import" else "json"
    response = (
        getattr(client, method)(url, body, format=fmt) if body is not None else getattr(client, method)(url)
    )
    assert_error(response, 404, "not_found")


def test_the_answers_are_the_same_as_for_objects_that_do_not_exist(other_api, theirs):
    other_api.credentials(HTTP_AUTHORIZATION=f"Bearer {other_api.token}", HTTP_X_REQUEST_ID="same-request-id")
    hidden = other_api.get(f"/api/v1/offers/{theirs['offer'].id}/").json()
    absent = other_api.get("/api/v1/offers/424242/").json()
    assert hidden == absent
    assert (
        other_api.get(f"/api/v1/codes/{theirs['coupon'].code}").json()
        == other_api.get("/api/v1/codes/NOPE").json()
    )


def test_another_merchant_sees_none_of_a_members_codes_or_redemptions(other_api, theirs):
    member = theirs["member"]
    assert_error(other_api.get(f"/api/v1/members/{member.id}/coupons/"), 404, "not_found")
    assert_error(other_api.get(f"/api/v1/members/{member.id}/redemptions/"), 404, "not_found")


def test_nothing_of_the_owner_changed(other_api, theirs):
    for method, url, body in requests(theirs).values():
        if method != "get":
            getattr(other_api, method)(url, body, format="json")
    theirs["offer"].refresh_from_db()
    theirs["redemption"].refresh_from_db()
    assert theirs["offer"].name != "Mine now" and theirs["redemption"].rolled_back_at is None
    assert theirs["offer"].coupons.count() == 2 and theirs["job"].chunks.count() == 1
