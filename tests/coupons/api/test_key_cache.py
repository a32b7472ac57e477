"""A web process remembers checked API keys for API_KEY_CACHE_SECONDS: no key query on the hot path,
and a revocation still takes effect within that time."""

import time

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coupons.models import ApiKey
from tests.coupons.api.conftest import assert_error


def key_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "coupons_apikey" in q["sql"]]


def test_a_key_used_again_within_the_period_costs_no_query(api, settings):
    settings.API_KEY_CACHE_SECONDS = 60
    assert api.get("/api/v1/offers/").status_code == 200
    with CaptureQueriesContext(connection) as captured:
        assert api.get("/api/v1/offers/").status_code == 200
    assert key_queries(captured) == []


def test_last_use_is_written_once_a_minute_even_for_a_remembered_key(api, settings):
    settings.API_KEY_CACHE_SECONDS = 60
    with CaptureQueriesContext(connection) as captured:
        for _ in range(3):
            assert api.get("/api/v1/offers/").status_code == 200
    writes = [sql for sql in key_queries(captured) if sql.startswith("UPDATE")]
    assert len(writes) == 1
    assert ApiKey.objects.get().last_used_at is not None


def test_a_revoked_key_is_refused_once_the_period_has_passed(api, settings):
    settings.API_KEY_CACHE_SECONDS = 0.3
    assert api.get("/api/v1/offers/").status_code == 200
    ApiKey.objects.update(revoked_at=timezone.now())
    time.sleep(0.35)
    assert_error(api.get("/api/v1/offers/"), 401, "unauthenticated")


def test_with_no_period_a_revocation_takes_effect_at_once(api, settings):
    settings.API_KEY_CACHE_SECONDS = 0
    assert api.get("/api/v1/offers/").status_code == 200
    ApiKey.objects.update(revoked_at=timezone.now())
    assert_error(api.get("/api/v1/offers/"), 401, "unauthenticated")
