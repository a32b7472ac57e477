"""Members over the API: create with the integrator's id, read, and a member's codes and redemptions per owner."""

from coupons.api.auth import api_key_find
from coupons.models import Member, MemberProfile
from tests import factories
from tests.coupons.api.conftest import assert_error
from webhooks.models import Event


def test_it_creates_a_member_with_the_integrators_id(api):
    body = {"id": 1300, "member_no": "GATA0001300", "email": "a@example.com", "attributes": {"tier": "gold"}}
    response = api.post("/api/v1/members/", body, format="json")
    assert response.status_code == 201
    assert {k: response.json()[k] for k in body} == body
    assert set(response.json()) >= {"id", "member_no", "external_id", "uuid", "email", "attributes"}
    assert MemberProfile.objects.get(member_id=1300).member_no == "GATA0001300"


def test_it_creates_a_member_with_an_id_of_its_own(api):
    response = api.post("/api/v1/members/", {"external_id": "cust-9"}, format="json")
    assert (
        response.status_code == 201
        and MemberProfile.objects.get(member_id=response.json()["id"]).external_id == "cust-9"
    )


def test_it_refuses_a_taken_id_or_number_and_bad_fields(api, member):
    assert (
        "id"
        in assert_error(
            api.post("/api/v1/members/", {"id": member.id}, format="json"), 400, "invalid_request"
        )["fields"]
    )
    taken = api.post("/api/v1/members/", {"member_no": member.profiles.get().member_no}, format="json")
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
    member_no = member.profiles.get().member_no
    assert api.get(f"/api/v1/members/{member.id}/").json()["member_no"] == member_no
    body = api.get(f"/api/v1/members/?member_no={member_no}").json()
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
    assert_error(other_api.get(f"/api/v1/members/{member.id}/coupons/"), 404, "not_found")
    assert_error(other_api.get(f"/api/v1/members/{member.id}/redemptions/"), 404, "not_found")
    assert_error(api.get("/api/v1/members/424242/coupons/"), 404, "not_found")
    assert_error(api.get("/api/v1/members/424242/redemptions/"), 404, "not_found")


def test_members_need_their_scopes(make_client, merchant, member):
    redeemer = make_client(merchant=merchant, scopes=["redeem"])
    assert_error(redeemer.get(f"/api/v1/members/{member.id}/"), 403, "forbidden")
    assert_error(redeemer.post("/api/v1/members/", {}, format="json"), 403, "forbidden")


# --- what one owner told the platform about a member is that owner's alone ----------------------


def told(client, member_id: int, **fields):
    response = client.post("/api/v1/members/", {"id": member_id, **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_another_owner_cannot_list_or_read_a_member_it_never_told_about(api, other_api):
    told(api, 1300, email="jo@example.com", member_no="GATA0001300", external_id="cust-1")
    for query in ("email=jo@example.com", "member_no=GATA0001300", "external_id=cust-1", ""):
        assert other_api.get(f"/api/v1/members/?{query}").json()["results"] == []
    other_api.defaults["HTTP_X_REQUEST_ID"] = "same-request"  # the bodies compare whole
    assert other_api.get("/api/v1/members/1300/").json() == other_api.get("/api/v1/members/424242/").json()
    assert_error(other_api.get("/api/v1/members/1300/"), 404, "not_found")


def test_two_owners_both_use_member_1300_without_noticing_each_other(api, other_api):
    mine = told(api, 1300, email="jo@example.com", member_no="GATA0001300", attributes={"tier": "gold"})
    theirs = told(other_api, 1300, email="sam@example.org", member_no="GATA0001300")
    assert theirs["email"] == "sam@example.org" and theirs["attributes"] == {}
    assert theirs["uuid"] != mine["uuid"]
    assert api.get("/api/v1/members/1300/").json() == mine
    assert other_api.get("/api/v1/members/1300/").json() == theirs
    assert_error(other_api.post("/api/v1/members/", {"id": 1300}, format="json"), 400, "invalid_request")


def test_an_id_or_number_another_owner_holds_is_not_refused_as_taken(api, other_api, member):
    response = other_api.post(
        "/api/v1/members/", {"id": member.id, "member_no": member.profiles.get().member_no}, format="json"
    )
    assert response.status_code == 201, response.content


def test_another_owners_issue_changes_nothing_of_the_members_profile(api, other_api, offer, member):
    theirs = factories.OfferFactory(site=factories.SiteFactory(merchant=other_api_merchant(other_api)))
    told(other_api, member.id)
    response = other_api.post(
        f"/api/v1/offers/{theirs.id}/issue",
        {"identifier": "x", "member_id": member.id, "attributes": {"tier": "stolen"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert member.profiles.get(merchant=offer.merchant).attributes == {}
    assert api.get(f"/api/v1/members/{member.id}/").json()["attributes"] == {}


def test_a_member_id_another_owner_holds_is_unknown_to_issue_and_code_creation(other_api, member):
    theirs = factories.OfferFactory(site=factories.SiteFactory(merchant=other_api_merchant(other_api)))
    issue = other_api.post(
        f"/api/v1/offers/{theirs.id}/issue", {"identifier": "x", "member_id": member.id}, format="json"
    )
    assert assert_error(issue, 400, "invalid_request")["fields"] == {"member_id": ["unknown"]}
    created = other_api.post(f"/api/v1/offers/{theirs.id}/coupons/", {"Members": [member.id]}, format="json")
    assert assert_error(created, 400, "invalid_request")["fields"] == {"Members": ["unknown"]}


def test_redcat_members_of_each_owner_get_their_codes_with_their_own_numbers(api, other_api, offer):
    theirs = factories.OfferFactory(site=factories.SiteFactory(merchant=other_api_merchant(other_api)))
    told(api, 1300, member_no="MINE-1300")
    told(other_api, 1300, member_no="THEIRS-1300")
    for client, each in ((api, offer), (other_api, theirs)):
        response = client.post(f"/api/v1/offers/{each.id}/coupons/", {"Members": [1300]}, format="json")
        assert response.status_code == 201, response.content
    for each, number in ((offer, "MINE-1300"), (theirs, "THEIRS-1300")):
        created = Event.objects.get(type="coupon.created", offer=each)
        assert [c["member_no"] for c in created.data["coupons"]] == [number]
        issued = Event.objects.get(type="coupon.issued", offer=each)
        assert issued.data["member"]["member_no"] == number


def other_api_merchant(client):
    return api_key_find(client.token).merchant


def test_validate_and_redeem_know_only_the_keys_own_members(other_api, member):
    theirs = factories.OfferFactory(site=factories.SiteFactory(merchant=other_api_merchant(other_api)))
    code = factories.CouponFactory(offer=theirs).code
    order = {"code": code, "order_value": "50", "currency": "AUD"}
    for member_id in (member.id, 424242):
        validated = other_api.post("/api/v1/codes/validate", order | {"member_id": member_id}, format="json")
        assert assert_error(validated, 400, "invalid_request")["fields"] == {"member_id": ["unknown"]}
        redeemed = other_api.post(
            "/api/v1/codes/redeem", order | {"order_id": "1", "member_id": member_id}, format="json"
        )
        assert assert_error(redeemed, 400, "invalid_request")["fields"] == {"member_id": ["unknown"]}
