"""Offers over the API: list, create with defaults, read, patch, report; each error answers the error body."""

from decimal import Decimal

import pytest

from coupons.models import Offer
from tests import factories
from tests.coupons.api.conftest import assert_error

OFFER_FIELDS = {
    "id", "uuid", "external_id", "name", "merchant_id", "site_id", "active_status", "start_date", "finish_date",
    "coupon_type", "discount_value", "currency", "applicable_on", "applicable_filters", "min_order_amount",
    "usage_limit_type", "max_redemptions_per_code", "max_redemptions_per_member", "expiry_type", "expiry_value",
    "expiry_unit", "code_length", "code_alphabet", "code_prefix", "code_pattern", "vanity_code", "public_token",
}  # fmt: skip


def test_it_creates_an_offer_for_the_keys_merchant_on_its_default_site(api, merchant, site):
    response = api.post(
        "/api/v1/offers/",
        {"name": "Ten off", "coupon_type": "fixedAmount", "discount_value": 10, "min_order_amount": "50",
         "start_date": "2030-01-01T09:00:00+11:00", "external_id": "CAMP-1"},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) >= OFFER_FIELDS
    assert body["merchant_id"] == merchant.id and body["site_id"] == site.id
    assert body["discount_value"] == "10.00" and body["min_order_amount"] == "50.00"
    assert body["start_date"] == "2029-12-31T22:00:00+00:00"
    offer = Offer.objects.get(pk=body["id"])
    assert offer.discount_value == Decimal("10.00") and offer.external_id == "CAMP-1"


def test_a_free_shipping_offer_needs_no_discount_value(api, merchant):
    response = api.post("/api/v1/offers/", {"name": "Ship", "coupon_type": "freeShipping"}, format="json")
    assert response.status_code == 201
    assert response.json()["discount_value"] is None


def test_it_names_the_missing_fields_of_an_offer(api, merchant):
    error = assert_error(api.post("/api/v1/offers/", {}, format="json"), 400, "invalid_request")
    assert set(error["fields"]) == {"name", "coupon_type"}
    error = assert_error(
        api.post("/api/v1/offers/", {"name": "x", "coupon_type": "percentage"}, format="json"),
        400,
        "invalid_request",
    )
    assert error["fields"] == {"discount_value": ["required"]}


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"coupon_type": "percentage", "discount_value": "150"}, "discount_value"),
        ({"coupon_type": "bogus", "discount_value": "1"}, "coupon_type"),
        ({"coupon_type": "fixedAmount", "discount_value": "-1"}, "discount_value"),
        ({"coupon_type": "fixedAmount", "discount_value": "1.234"}, "discount_value"),
        ({"coupon_type": "fixedAmount", "discount_value": "1", "currency": "EURO"}, "currency"),
        ({"coupon_type": "fixedAmount", "discount_value": "1", "code_length": 4}, "code_length"),
        ({"coupon_type": "fixedAmount", "discount_value": "1", "site_id": 999999}, "site_id"),
        ({"coupon_type": "fixedAmount", "discount_value": "1", "merchant_id": 999999}, "merchant_id"),
        ({"coupon_type": "mystery"}, "mystery_discounts"),
    ],
)
def test_it_refuses_an_invalid_offer_naming_the_field(api, merchant, fields, field):
    response = api.post("/api/v1/offers/", {"name": "x", **fields}, format="json")
    assert field in assert_error(response, 400, "invalid_request")["fields"]
    assert not Offer.objects.exists()


def test_a_distributor_only_key_cannot_create_offers(make_client):
    client = make_client(distributor=factories.DistributorFactory())
    response = client.post("/api/v1/offers/", {"name": "x", "coupon_type": "freeShipping"}, format="json")
    assert_error(response, 403, "forbidden")


def test_a_merchant_and_distributor_key_sees_the_offer_it_created(make_client, merchant):
    distributor = factories.DistributorFactory()
    client = make_client(merchant=merchant, distributor=distributor)
    created = client.post(
        "/api/v1/offers/", {"name": "x", "coupon_type": "freeShipping"}, format="json"
    ).json()
    assert created["distributor_ids"] == [distributor.id]
    assert client.get(f"/api/v1/offers/{created['id']}/").status_code == 200


def test_it_lists_only_the_keys_offers_paginated(api, other_api, merchant, site):
    mine = factories.OfferFactory.create_batch(3, site=site)
    factories.OfferFactory()  # another merchant's
    body = api.get("/api/v1/offers/?page_size=2").json()
    assert body["count"] == 3 and len(body["results"]) == 2 and body["next"]
    second = api.get(body["next"]).json()
    assert {o["id"] for o in body["results"] + second["results"]} == {o.id for o in mine}
    assert_error(api.get("/api/v1/offers/?page=99"), 404, "not_found")


def test_it_finds_an_offer_by_external_id(api, site):
    offer = factories.OfferFactory(site=site, external_id="CAMP-9")
    factories.OfferFactory(site=site, external_id="CAMP-8")
    body = api.get("/api/v1/offers/?external_id=CAMP-9").json()
    assert [o["id"] for o in body["results"]] == [offer.id]


def test_a_distributor_sees_only_the_offers_it_is_authorised_for(make_client, site):
    distributor = factories.DistributorFactory()
    authorised = factories.OfferFactory(site=site)
    authorised.distributors.add(distributor)
    hidden = factories.OfferFactory(site=site)
    client = make_client(distributor=distributor)
    assert [o["id"] for o in client.get("/api/v1/offers/").json()["results"]] == [authorised.id]
    assert client.get(f"/api/v1/offers/{authorised.id}/").status_code == 200
    assert_error(client.get(f"/api/v1/offers/{hidden.id}/"), 404, "not_found")


def test_it_patches_an_offer(api, offer):
    response = api.patch(
        f"/api/v1/offers/{offer.id}/",
        {"name": "Renamed", "active_status": 0, "discount_value": "7.5"},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["name"] == "Renamed" and response.json()["discount_value"] == "7.50"
    offer.refresh_from_db()
    assert (offer.name, offer.active_status, offer.discount_value) == ("Renamed", 0, Decimal("7.50"))


def test_a_patch_that_breaks_a_rule_changes_nothing(api, offer):
    response = api.patch(
        f"/api/v1/offers/{offer.id}/",
        {"name": "Renamed", "coupon_type": "percentage", "discount_value": "120"},
        format="json",
    )
    assert_error(response, 400, "invalid_request")
    offer.refresh_from_db()
    assert offer.name != "Renamed" and offer.coupon_type == "fixedAmount"


def test_a_patch_cannot_move_an_offer_to_another_merchant_or_a_foreign_site(api, offer):
    other_site = factories.SiteFactory()
    assert_error(
        api.patch(f"/api/v1/offers/{offer.id}/", {"merchant_id": other_site.merchant_id}, format="json"),
        400, "invalid_request",
    )  # fmt: skip
    assert_error(
        api.patch(f"/api/v1/offers/{offer.id}/", {"site_id": other_site.id}, format="json"),
        400,
        "invalid_request",
    )


def test_an_unknown_offer_is_not_found(api, merchant):
    assert_error(api.get("/api/v1/offers/424242/"), 404, "not_found")
    assert_error(api.patch("/api/v1/offers/424242/", {"name": "x"}, format="json"), 404, "not_found")
    assert_error(api.get("/api/v1/offers/99999999999999999999/"), 404, "not_found")


def test_the_report_counts_the_funnel_and_the_discount_given(api, offer):
    issued = factories.CouponFactory(offer=offer)
    factories.CouponFactory(offer=offer, issued_at=None)
    factories.RedemptionFactory(coupon=issued, discount_amount=Decimal("10.00"))
    body = api.get(f"/api/v1/offers/{offer.id}/stats/").json()
    assert body["codes"] == 2 and body["issued"] == 1 and body["redemptions"] == 1
    assert body["discount_given"] == "10.00"
    assert len(body["redemptions_per_day"]) == 1 and body["redemptions_per_day"][0]["count"] == 1


def test_the_report_of_another_owners_offer_is_not_found(other_api, offer):
    assert_error(other_api.get(f"/api/v1/offers/{offer.id}/stats/"), 404, "not_found")
