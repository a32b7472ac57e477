"""Bad input of every kind gets a 4xx with the error body: never a 500, never an HTML page, nothing half-done."""

import json
from urllib.parse import quote

import pytest
from django.test import override_settings

from coupons.models import Coupon, Member, Offer
from tests.coupons.api.conftest import assert_error

ORDER = {"order_value": "10", "currency": "AUD"}
JSON_POSTS = ["/api/v1/offers/", "/api/v1/offers/{offer}/coupons/", "/api/v1/offers/{offer}/issue",
              "/api/v1/codes/validate", "/api/v1/codes/redeem", "/api/v1/members/"]  # fmt: skip


def urls(offer) -> list[str]:
    return [url.format(offer=offer.id) for url in JSON_POSTS]


def nothing_written(offer) -> bool:
    return Offer.objects.count() == 1 and not Coupon.objects.exists() and not Member.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b"{'single': 'quotes'}",
        b"\xff\xfe\x00",
        b"NaN",
        b'{"a": Infinity}',
        b"[" * 100_000 + b"]" * 100_000,
    ],
    ids=["truncated", "single quotes", "not utf-8", "NaN", "Infinity", "nested too deep"],
)
def test_malformed_json_is_a_400(api, offer, body):
    for url in urls(offer):
        assert_error(api.post(url, body, content_type="application/json"), 400, "invalid_request")
    assert nothing_written(offer)


@pytest.mark.parametrize(
    "body", [[], [1, 2], "text", 42, None], ids=["empty array", "array", "string", "number", "null"]
)
def test_a_body_that_is_not_an_object_is_a_400(api, offer, body):
    for url in urls(offer):
        response = api.post(url, json.dumps(body), content_type="application/json")
        assert_error(response, 400, "invalid_request")
    assert nothing_written(offer)


@pytest.mark.parametrize(
    "url, body",
    [
        ("/api/v1/codes/redeem", {"code": ["A"], "order_id": {"x": 1}, "order_value": [], "currency": 7}),
        ("/api/v1/codes/validate", {"code": {"nested": True}, "order_value": True, "currency": None}),
        ("/api/v1/codes/validate", {"code": "A", **ORDER, "shipping_amount": "1e999"}),
        ("/api/v1/codes/validate", {"code": "A", **ORDER, "order_value": "9" * 40}),
        ("/api/v1/offers/{offer}/coupons/", {"Members": [True, "x", None]}),
        ("/api/v1/offers/{offer}/coupons/", {"Members": [2**70]}),
        ("/api/v1/offers/{offer}/coupons/", {"count": 2**70}),
        ("/api/v1/offers/{offer}/coupons/", {"count": -5}),
        ("/api/v1/offers/{offer}/coupons/", {"count": 1.5}),
        ("/api/v1/offers/{offer}/issue", {"identifier": ["a"], "attributes": "x"}),
        ("/api/v1/members/", {"id": "one", "attributes": [1]}),
        ("/api/v1/members/", {"id": 2**80}),
        (
            "/api/v1/offers/",
            {"name": {"a": 1}, "coupon_type": ["fixedAmount"], "applicable_filters": {"a": 1}},
        ),
        (
            "/api/v1/offers/",
            {"name": "x", "coupon_type": "fixedAmount", "discount_value": 1, "code_length": 10**9},
        ),
        (
            "/api/v1/offers/",
            {"name": "x", "coupon_type": "fixedAmount", "discount_value": 1, "start_date": "soon"},
        ),
    ],
)
def test_wrong_types_and_absurd_numbers_are_a_400_naming_fields(api, offer, url, body):
    error = assert_error(api.post(url.format(offer=offer.id), body, format="json"), 400, "invalid_request")
    assert error["fields"]
    assert nothing_written(offer)


@pytest.mark.parametrize(
    "code",
    [
        "NUL\x00CODE",
        "\x00",
        "🎟️🎟️🎟️",
        "C" * 65,
        "C" * 10_000,
        "'; DROP TABLE coupons_coupon; --",
        "%00",
        "..",
        " ",
    ],
)
def test_odd_codes_are_a_4xx(api, offer, code):
    post = [
        api.post("/api/v1/codes/validate", {"code": code, **ORDER}, format="json"),
        api.post("/api/v1/codes/redeem", {"code": code, "order_id": "1", **ORDER}, format="json"),
    ]
    path = quote(code, safe="")
    get = [api.get(f"/api/v1/codes/{path}"), api.post(f"/api/v1/codes/{path}/view", {}, format="json")]
    for response in post + get:
        assert 400 <= response.status_code < 500, (response.status_code, response.content[:200])
        assert response["Content-Type"] == "application/json"
        assert set(response.json()["error"]) >= {"code", "message", "fields"}
    assert nothing_written(offer)


def test_an_emoji_in_text_fields_is_stored_as_given(api, member):
    response = api.post(
        "/api/v1/members/", {"external_id": "cliente-☕-🎉", "attributes": {"🍩": "✓"}}, format="json"
    )
    assert response.status_code == 201 and response.json()["attributes"] == {"🍩": "✓"}


def test_a_20_mb_body_is_a_413_before_it_is_read(api, offer):
    body = b'{"code": "' + b"A" * (20 * 1024 * 1024) + b'"}'
    for url in urls(offer):
        assert_error(api.post(url, body, content_type="application/json"), 413, "payload_too_large")


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_the_body_limit_follows_the_setting(api, offer):
    body = json.dumps({"name": "x" * 2000, "coupon_type": "freeShipping"})
    assert_error(api.post("/api/v1/offers/", body, content_type="application/json"), 413, "payload_too_large")
    assert nothing_written(offer)


def test_an_unsupported_media_type_is_a_415(api, offer):
    response = api.post("/api/v1/members/", "id=1", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_a_wrong_method_is_a_405(api, offer):
    assert_error(api.delete(f"/api/v1/offers/{offer.id}/"), 405, "method_not_allowed")
    assert_error(api.get("/api/v1/codes/redeem"), 405, "method_not_allowed")


def test_an_unacceptable_accept_header_is_a_406_in_json(api, offer):
    response = api.get("/api/v1/offers/", HTTP_ACCEPT="text/html")
    assert_error(response, 406, "not_acceptable")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nope/",
        "/api/v1/offers",
        "/api/v1/offers/abc/",
        "/api/v1/offers/-1/",
        "/api/v2/offers/",
        "/api/",
    ],
)
def test_unknown_api_paths_answer_json_404_even_for_a_post(api, path):
    for response in (api.get(path), api.post(path, {}, format="json")):
        assert_error(response, 404, "not_found")


@pytest.mark.parametrize(
    "query",
    [
        "page=abc",
        "page=0",
        "page=99999999999999999999",
        "page_size=-1&page=2",
        "status=%00",
        "member=1e9999",
        "job=-1",
    ],
)
def test_odd_query_parameters_are_a_4xx(api, offer, query):
    response = api.get(f"/api/v1/offers/{offer.id}/coupons/?{query}")
    assert 400 <= response.status_code < 500
    assert set(response.json()["error"]) >= {"code", "message", "fields"}


def test_a_crash_under_api_answers_a_json_500_without_details(api, offer, monkeypatch, caplog):
    from coupons import selectors

    def broken(*args, **kwargs):
        raise RuntimeError("boom: internal detail")

    monkeypatch.setattr(selectors, "offer_stats", broken)
    response = api.get(f"/api/v1/offers/{offer.id}/stats/")
    error = assert_error(response, 500, "server_error")
    assert "boom" not in error["message"]
    assert "boom: internal detail" in caplog.text  # logged for the operator


def test_pages_outside_the_api_keep_djangos_own_errors(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and not response["Content-Type"].startswith("application/json")
