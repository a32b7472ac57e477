"""Codes over the API: Redcat-style creation, listing with filters, issue, the Talon.One GET, query and view."""

from datetime import timedelta
from io import BytesIO

import pytest
from django.utils import timezone

from coupons.models import Coupon
from tests import factories
from tests.coupons.api.conftest import assert_error

COUPON_FIELDS = {
    "id", "uuid", "code", "offer_id", "member_id", "identifier", "status", "issued_at", "viewed_at", "expires_at",
    "times_redeemed", "redemptions_left", "discount_value",
}  # fmt: skip


def test_it_creates_codes_for_members_in_the_request(api, offer):
    members = factories.MemberFactory.create_batch(2, merchant=offer.merchant)
    response = api.post(
        f"/api/v1/offers/{offer.id}/coupons/",
        {"Members": [m.id for m in members], "Multiple": False},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    assert body["count"] == 2 and set(body["results"][0]) >= COUPON_FIELDS
    assert {c["member_id"] for c in body["results"]} == {m.id for m in members}
    assert body["results"][0]["discount_value"] == "10.00" and body["results"][0]["status"] == "active"


def test_redcats_misspelt_mulitple_false_gives_no_member_a_second_code(api, offer, member):
    url = f"/api/v1/offers/{offer.id}/coupons/"
    api.post(url, {"Members": [member.id]}, format="json")
    response = api.post(url, {"Members": [member.id], "Mulitple": False}, format="json")
    assert response.status_code == 201 and response.json()["count"] == 0
    assert api.post(url, {"Members": [member.id], "Multiple": True}, format="json").json()["count"] == 1
    assert Coupon.objects.filter(member=member).count() == 2


def test_it_creates_a_count_of_codes_without_members(api, offer):
    response = api.post(f"/api/v1/offers/{offer.id}/coupons/", {"count": 5}, format="json")
    assert response.status_code == 201 and response.json()["count"] == 5
    assert Coupon.objects.filter(offer=offer, member__isnull=True).count() == 5


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "Members"),
        ({"Members": [1], "count": 2}, "Members"),
        ({"count": 0}, "count"),
        ({"count": "many"}, "count"),
        ({"count": 10**12}, "count"),
        ({"Members": []}, "Members"),
        ({"Members": "1300"}, "Members"),
        ({"Members": [424242]}, "Members"),
        ({"Members": [1], "TaskServer": "perhaps"}, "TaskServer"),
    ],
)
def test_it_refuses_a_creation_body_naming_the_field(api, offer, body, field):
    response = api.post(f"/api/v1/offers/{offer.id}/coupons/", body, format="json")
    assert field in assert_error(response, 400, "invalid_request")["fields"]
    assert not Coupon.objects.exists()


def test_creating_codes_needs_the_offers_scope(make_client, merchant, offer):
    reader = make_client(merchant=merchant, scopes=["read"])
    assert_error(
        reader.post(f"/api/v1/offers/{offer.id}/coupons/", {"count": 1}, format="json"), 403, "forbidden"
    )


def test_it_lists_codes_filtered_by_status_member_and_job(api, offer, member):
    live = factories.CouponFactory(offer=offer, member=member)
    past = factories.CouponFactory(offer=offer, expires_at=timezone.now() - timedelta(minutes=1))
    used = factories.CouponFactory(offer=offer, status="redeemed", times_redeemed=1)
    url = f"/api/v1/offers/{offer.id}/coupons/"
    assert len(api.get(url).json()["results"]) == 3
    assert [c["id"] for c in api.get(url + "?status=active").json()["results"]] == [live.id]
    expired = api.get(url + "?status=expired").json()["results"]
    assert [c["id"] for c in expired] == [past.id] and expired[0]["status"] == "expired"
    assert [c["id"] for c in api.get(url + "?status=redeemed").json()["results"]] == [used.id]
    assert [c["id"] for c in api.get(url + f"?member={member.id}").json()["results"]] == [live.id]
    assert api.get(url + "?job=1").json()["results"] == []
    assert "status" in assert_error(api.get(url + "?status=lost"), 400, "invalid_request")["fields"]
    assert "member" in assert_error(api.get(url + "?member=abc"), 400, "invalid_request")["fields"]


def test_it_issues_one_code_per_identifier(api, offer, member):
    url = f"/api/v1/offers/{offer.id}/issue"
    first = api.post(url, {"identifier": "cust-1", "member_id": member.id}, format="json")
    assert first.status_code == 201 and first.json()["member_id"] == member.id
    again = api.post(url, {"identifier": "cust-1"}, format="json")
    assert again.status_code == 200 and again.json()["code"] == first.json()["code"]
    assert Coupon.objects.filter(offer=offer).count() == 1


def test_issuing_refuses_bad_input_and_closed_offers(api, offer):
    url = f"/api/v1/offers/{offer.id}/issue"
    assert "identifier" in assert_error(api.post(url, {}, format="json"), 400, "invalid_request")["fields"]
    assert (
        "member_id"
        in assert_error(
            api.post(url, {"identifier": "a", "member_id": 424242}, format="json"), 400, "invalid_request"
        )["fields"]
    )
    assert (
        "email"
        in assert_error(
            api.post(url, {"identifier": "a", "email": "not-an-email"}, format="json"), 400, "invalid_request"
        )["fields"]
    )
    offer.active_status = 0
    offer.save()
    assert_error(api.post(url, {"identifier": "a"}, format="json"), 409, "offer_inactive")
    assert not Coupon.objects.exists()


def test_the_talon_one_get_creates_then_retrieves_the_identifiers_code(api, site):
    offer = factories.OfferFactory(site=site, external_id="EXT-1")
    query = f"applicationId={site.id}&campaignId={offer.id}&externalCampaignId=EXT-1&identifier=cust-7"
    created = api.get(f"/api/v1/customer_engagement/coupon?{query}")
    assert created.status_code == 201 and created.json()["identifier"] == "cust-7"
    retrieved = api.get(f"/api/v1/customer_engagement/coupon?{query}")
    assert retrieved.status_code == 200 and retrieved.json()["code"] == created.json()["code"]
    by_merchant = query.replace(f"applicationId={site.id}", f"applicationId={offer.merchant_id}")
    assert api.get(f"/api/v1/customer_engagement/coupon?{by_merchant}").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        ("externalCampaignId=EXT-1", "externalCampaignId=EXT-2"),
        ("applicationId={site}", "applicationId=424242"),
    ],
)
def test_the_talon_one_get_answers_not_found_for_a_mismatch(api, site, change):
    offer = factories.OfferFactory(site=site, external_id="EXT-1")
    query = f"applicationId={site.id}&campaignId={offer.id}&externalCampaignId=EXT-1&identifier=c"
    query = query.replace(change[0].format(site=site.id), change[1])
    assert_error(api.get(f"/api/v1/customer_engagement/coupon?{query}"), 404, "not_found")
    assert not Coupon.objects.exists()


def test_the_talon_one_get_names_missing_parameters(api, offer):
    error = assert_error(api.get("/api/v1/customer_engagement/coupon"), 400, "invalid_request")
    assert {"applicationId", "campaignId", "externalCampaignId"} <= set(error["fields"])
    query = f"applicationId={offer.site_id}&campaignId={offer.id}&externalCampaignId=x"
    error = assert_error(api.get(f"/api/v1/customer_engagement/coupon?{query}"), 400, "invalid_request")
    assert "identifier" in error["fields"]


def test_the_code_query_shows_offer_status_expiry_and_redemptions_left(api, coupon):
    body = api.get(f"/api/v1/codes/{coupon.code}").json()
    assert body["code"] == coupon.code and body["status"] == "active" and body["redemptions_left"] == 1
    assert body["offer"]["id"] == coupon.offer_id and "expires_at" in body


def test_the_code_query_of_an_unknown_code_is_not_found(api, offer):
    assert_error(api.get("/api/v1/codes/NOSUCHCODE"), 404, "not_found")


def test_viewing_a_code_records_the_first_view_only(api, coupon):
    first = api.post(f"/api/v1/codes/{coupon.code}/view", {"session_id": "s-1"}, format="json")
    assert first.status_code == 200 and first.json()["viewed_at"]
    again = api.post(f"/api/v1/codes/{coupon.code}/view", {}, format="json")
    assert again.json()["viewed_at"] == first.json()["viewed_at"]
    assert_error(api.post("/api/v1/codes/NOSUCHCODE/view", {}, format="json"), 404, "not_found")


def test_the_import_endpoint_takes_excels_unicode_text_and_names_the_encodings_it_refuses(api, offer):
    url = f"/api/v1/offers/{offer.id}/codes/import"
    unicode_text = BytesIO("\ufeffcode\tnote\r\nUNI-1\tCafé\r\n".encode("utf-16-le"))
    unicode_text.name = "codes.txt"
    assert api.post(url, {"file": unicode_text}, format="multipart").status_code == 201
    windows = "code;note\r\nWIN-1;5€ off\r\n".encode("cp1252")
    assert api.post(url, windows, content_type="text/csv").status_code == 201
    assert set(Coupon.objects.filter(offer=offer).values_list("code", flat=True)) == {"UNI-1", "WIN-1"}
    refused = assert_error(
        api.post(url, "code\nX1\n".encode("utf-32"), content_type="text/csv"), 400, "invalid_request"
    )
    assert refused["fields"] == {"file": ["unsupported_encoding"]}
    assert "UTF-8, Windows-1252 or UTF-16" in refused["message"]
