"""Anti-enumeration: unknown codes are counted per key and per address; past the limit, 429 with Retry-After."""

import os
import uuid

import pytest
from django.core.cache import cache
from django.test import override_settings

from coupons.api.throttling import unknown_code_count
from tests.coupons.api.conftest import assert_error

ORDER = {"order_value": "10", "currency": "AUD"}
LOOKUPS = {
    "query": lambda api, code: api.get(f"/api/v1/codes/{code}"),
    "validate": lambda api, code: api.post("/api/v1/codes/validate", {"code": code, **ORDER}, format="json"),
    "redeem": lambda api, code: api.post(
        "/api/v1/codes/redeem", {"code": code, "order_id": "1", **ORDER}, format="json"
    ),
    "view": lambda api, code: api.post(f"/api/v1/codes/{code}/view", {}, format="json"),
}


@pytest.fixture(autouse=True)
def _fresh_counters(db):
    cache.clear()
    yield
    cache.clear()


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3)
@pytest.mark.parametrize("lookup", list(LOOKUPS))
def test_past_the_limit_unknown_codes_answer_429_with_retry_after(api, coupon, lookup):
    look = LOOKUPS[lookup]
    for n in range(3):
        assert_error(look(api, f"GUESS{n}"), 404, "not_found")
    response = look(api, "GUESS9")
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert look(api, coupon.code).status_code in (200, 201), "a real code is never refused"


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3)
def test_real_codes_do_not_count(api, coupon):
    for _ in range(10):
        assert LOOKUPS["query"](api, coupon.code).status_code == 200
    assert_error(LOOKUPS["query"](api, "GUESS"), 404, "not_found")


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3)
def test_the_count_is_per_key_and_per_address(api, make_client, merchant):
    for n in range(3):
        LOOKUPS["query"](api, f"GUESS{n}")
    other_key = make_client(merchant=merchant)
    assert_error(LOOKUPS["query"](other_key, "GUESS"), 429, "rate_limited")  # same address
    assert_error(
        other_key.get("/api/v1/codes/GUESS", REMOTE_ADDR="203.0.113.9"), 404, "not_found"
    )  # another address, another key
    assert_error(api.get("/api/v1/codes/GUESS", REMOTE_ADDR="203.0.113.9"), 429, "rate_limited")  # same key


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=2)
def test_a_dry_run_is_counted_too(api, offer):
    """Otherwise X-DRY-RUN would be a free pass for guessing (the database cache shares the rolled-back transaction)."""
    for n in range(2):
        body = {"code": f"GUESS{n}", "order_id": "1", **ORDER}
        assert_error(
            api.post("/api/v1/codes/redeem", body, format="json", HTTP_X_DRY_RUN="true"), 404, "not_found"
        )
    response = api.post(
        "/api/v1/codes/validate", {"code": "GUESS", **ORDER}, format="json", HTTP_X_DRY_RUN="true"
    )
    assert_error(response, 429, "rate_limited")


@pytest.mark.redis
@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=2)
def test_the_counters_live_in_a_shared_redis_cache(api, offer):
    redis_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["TEST_REDIS_URL"],
                   "KEY_PREFIX": f"enumeration-{uuid.uuid4().hex}"}  # fmt: skip
    with override_settings(CACHES={"default": redis_cache}):
        for n in range(2):
            assert_error(LOOKUPS["query"](api, f"GUESS{n}"), 404, "not_found")
        assert_error(LOOKUPS["query"](api, "GUESS"), 429, "rate_limited")


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=1)
def test_the_window_is_one_minute(api, rf):
    request = rf.get("/")
    request._request = request
    request.auth = None
    assert unknown_code_count(request, now=120.0) == 0
    assert unknown_code_count(request, now=150.0) == 30
    assert unknown_code_count(request, now=180.0) == 0
