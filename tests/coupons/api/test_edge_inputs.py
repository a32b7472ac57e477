"""Edge values that the databases refuse or Python cannot compute: each is a 400 naming the field, never a 500."""

import json

import pytest

from coupons import services
from coupons.models import Coupon, ExpiryType, Member, Offer
from coupons.selectors import Owner
from tests import factories
from tests.coupons.api.conftest import assert_error

OFFER = {"name": "x", "coupon_type": "fixedAmount", "discount_value": "5.00"}


def raw_post(api, path: str, text: str):
    """A JSON body as text, so it can hold what json.dumps would escape differently (lone surrogates)."""
    return api.post(path, text.encode("utf-8", "surrogatepass"), content_type="application/json")


@pytest.mark.parametrize(
    "path", ["/api/v1/offers/?external_id=a%00b", "/api/v1/members/?email=a%00b@example.com",
             "/api/v1/members/?external_id=%00", "/api/v1/webhooks/deliveries/?status=%00"],
)  # fmt: skip
def test_nul_in_a_query_filter_is_a_400_naming_it(api, db, path):
    error = assert_error(api.get(path), 400, "invalid_request")
    name = path.split("?")[1].split("=")[0]
    assert list(error["fields"]) == [name]


@pytest.mark.parametrize(
    "attributes",
    ['{"a\\u0000b": 1}', '{"ok": "a\\u0000"}', '{"\\ud800": 1}', '{"ok": "\\udfff"}', '{"ok": {"deep": ["\\ud83d"]}}'],
)  # fmt: skip
def test_nul_and_lone_surrogates_in_attributes_are_a_400_naming_them(api, offer, attributes):
    for path in ("/api/v1/members/", f"/api/v1/offers/{offer.id}/issue"):
        response = raw_post(api, path, '{"identifier": "c-1", "attributes": ' + attributes + "}")
        assert assert_error(response, 400, "invalid_request")["fields"] == {
            "attributes": ["invalid_character"]
        }
    assert not Member.objects.exists() and not Coupon.objects.exists()


def test_a_lone_surrogate_in_a_subscriptions_params_is_a_400(api, db):
    body = {"url": "http://127.0.0.1:9/hook", "format": "uniqodo_callback", "events": ["coupon.redeemed"]}
    text = json.dumps(body)[:-1] + ', "params": {"\\ud800code": "code", "a\\u0000": "orderId"}}'
    assert assert_error(raw_post(api, "/api/v1/webhooks/subscriptions/", text), 400, "invalid_request")[
        "fields"
    ] == {"params": ["invalid_character"]}


def test_an_emoji_is_not_a_lone_surrogate(api, db):
    response = raw_post(api, "/api/v1/members/", '{"attributes": {"\\ud83c\\udf69": "\\u2713"}}')
    assert response.status_code == 201 and response.json()["attributes"] == {"🍩": "✓"}


@pytest.mark.parametrize(
    "fields",
    [{"code_prefix": "P" * 20, "code_length": 50}, {"code_pattern": "*" * 60 + "####", "code_prefix": "PREFIX-"}],
)  # fmt: skip
def test_a_code_longer_than_the_code_column_is_refused(api, offer, fields):
    error = assert_error(
        api.post("/api/v1/offers/", {**OFFER, **fields}, format="json"), 400, "invalid_request"
    )
    assert "code_length" in error["fields"]
    error = assert_error(
        api.patch(f"/api/v1/offers/{offer.id}/", fields, format="json"), 400, "invalid_request"
    )
    assert "code_length" in error["fields"]


@pytest.mark.parametrize("unit, value", [("day", 2_000_000_000), ("hour", 2_000_000_000), ("day", 3_000_000)])
def test_a_relative_expiry_beyond_the_calendar_is_refused(api, offer, unit, value):
    fields = {"expiry_type": "relative", "expiry_unit": unit, "expiry_value": value}
    error = assert_error(
        api.post("/api/v1/offers/", {**OFFER, **fields}, format="json"), 400, "invalid_request"
    )
    assert "expiry_value" in error["fields"]
    assert_error(api.patch(f"/api/v1/offers/{offer.id}/", fields, format="json"), 400, "invalid_request")


def test_an_offer_stored_with_a_huge_relative_expiry_still_issues(api, offer):
    Offer.objects.filter(pk=offer.pk).update(
        expiry_type=ExpiryType.RELATIVE, expiry_unit="day", expiry_value=2**31 - 1
    )
    response = api.post(f"/api/v1/offers/{offer.id}/issue", {"identifier": "c-1"}, format="json")
    assert response.status_code == 201, response.content[:300]
    assert response.json()["expires_at"] is None  # further off than any calendar date: it never expires


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01"])
def test_offer_dates_at_the_ends_of_the_calendar_are_a_400(api, offer, moment):
    for name in ("start_date", "finish_date"):
        response = api.post("/api/v1/offers/", {**OFFER, name: moment}, format="json")
        assert name in assert_error(response, 400, "invalid_request")["fields"]


def test_a_csv_expiry_at_the_start_of_the_calendar_is_a_row_error(api, offer):
    for cell in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01"):
        response = api.post(
            f"/api/v1/offers/{offer.id}/codes/import",
            f"code,expiry\nOWNCODE0001,{cell}\n",
            content_type="text/csv",
        )
        error = assert_error(response, 400, "invalid_request")
        assert [row["reason"] for row in error["rows"]] in (["bad_date"], ["expiry_in_past"]), error
    assert not Coupon.objects.exists()


def test_a_member_created_without_an_id_never_takes_one_an_integrator_gave(api, merchant):
    owner = Owner(merchant_id=merchant.id)
    given = [services.member_create(owner=owner, id=n).member_id for n in (1, 2, 5)]
    factories.MemberFactory()  # an id from the sequence, after the given ones
    created = [api.post("/api/v1/members/", {}, format="json") for _ in range(5)]
    assert [response.status_code for response in created] == [201] * 5
    assert not set(given) & {response.json()["id"] for response in created}
    assert api.post("/api/v1/members/", {"id": 4000}, format="json").status_code == 201
    assert api.post("/api/v1/members/", {}, format="json").json()["id"] > 4000
