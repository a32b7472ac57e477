"""Members over the API: create with the integrator's id, read, and a member's codes and redemptions per owner."""

from coupons.models import Member
from tests import factories
from tests.coupons.api.conftest import assert_error


def test_it_creates_a_member_with_the_integrators_id(api):
    body = {"id": 1300, "member_no": "GATA0001300", "email": "a@example.com", "attributes": {"tier": "gold"}}
    response = api.post("/api/v1/members/", body, format="json")
    assert response.status_code == 201
    assert {k: response.json()[k] for k in body} == body
    assert set(response.json()) >= {"id", "member_no", "external_id", "uuid", "email", "attributes"}
    assert Member.objects.get(pk=1300).member_no == "GATA0001300"


def test_it_creates_a_member_with_an_id_of_its_own(api):
    response = api.post("/api/v1/members/", {"external_id": "cust-9"}, format="json")
    assert (
        response.status_code == 201 and Member.objects.get(pk=response.json()["id"]).external_id == "cust-9"
    )


def test_it_refuses_a_taken_id_or_number_and_bad_fields(api, member):
    assert (
        "id"
        in assert_error(
            api.post("/api/v1/members/", {"id": member.id}, format="json"), 400, "invalid_request"
        )["fields"]
    )
    taken = api.post("/api/v1/members/", {"member_no": member.member_no}, format="json")
    assert "member_no" in assert_error(taken, 400, "invalid_request")["fields"]
    for body, field in [
        ({"id": -1}, "id"),
        ({"email": "nope"}, "email"),
        ({"attributes": [1]}, "attributes"),
    ]:
        assert (
            field
            in assert_error(api.post("/api/v1/members/", body, format="json"), 400, "invalid_request")[
                "fields"
            ]
        )
    assert Member.objects.count() == 1


def test_it_reads_and_lists_members(api, member):
    assert api.get(f"/api/v1/members/{member.id}/").json()["member_no"] == member.member_no
    body = api.get(f"/api/v1/members/?member_no={member.member_no}").json()
    assert [m["id"] for m in body["results"]] == [member.id]
    assert_error(api.get("/api/v1/members/424242/"), 404, "not_found")


def test_a_members_codes_and_redemptions_are_those_of_the_keys_offers(api, other_api, offer, member):
    mine = factories.CouponFactory(offer=offer, member=member)
    theirs = factories.CouponFactory(member=member)  # another merchant's offer
    factories.RedemptionFactory(coupon=mine, member=member)
    factories.RedemptionFactory(coupon=theirs, member=member)
    assert [c["id"] for c in api.get(f"/api/v1/members/{member.id}/coupons/").json()["results"]] == [mine.id]
    redemptions = api.get(f"/api/v1/members/{member.id}/redemptions/").json()["results"]
    assert [r["coupon_id"] for r in redemptions] == [mine.id]
    assert other_api.get(f"/api/v1/members/{member.id}/coupons/").json()["count"] == 0
    assert other_api.get(f"/api/v1/members/{member.id}/redemptions/").json()["count"] == 0
    assert_error(api.get("/api/v1/members/424242/coupons/"), 404, "not_found")
    assert_error(api.get("/api/v1/members/424242/redemptions/"), 404, "not_found")


def test_members_need_their_scopes(make_client, merchant, member):
    redeemer = make_client(merchant=merchant, scopes=["redeem"])
    assert_error(redeemer.get(f"/api/v1/members/{member.id}/"), 403, "forbidden")
    assert_error(redeemer.post("/api/v1/members/", {}, format="json"), 403, "forbidden")
