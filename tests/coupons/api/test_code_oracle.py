"""Codes of other owners' offers cannot be found by importing or choosing them: a collision reads like any
other refusal of the row, and each one counts against the unknown-code limit."""

import pytest
from django.core.cache import cache
from django.test import override_settings
from django_q.conf import Conf

from coupons.models import Coupon, Offer
from tests import factories
from tests.coupons.api.conftest import assert_error


@pytest.fixture(autouse=True)
def _fresh_counters(db):
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def theirs(db):
    """Codes of another merchant's offer."""
    offer = factories.OfferFactory(vanity_code="THEIRVANITY")
    factories.CouponFactory(offer=offer, code="THEIRVANITY")
    return [factories.CouponFactory(offer=offer, code=f"THEIRS{n}").code for n in range(5)]


def import_(api, offer, codes, dry_run=False):
    headers = {"HTTP_X_DRY_RUN": "true"} if dry_run else {}
    body = "code\n" + "".join(f"{code}\n" for code in codes)
    return api.post(f"/api/v1/offers/{offer.id}/codes/import", body, content_type="text/csv", **headers)


def rows(response) -> list[tuple[str, str, str]]:
    return [
        (r["code"], r["reason"], r["message"]) for r in assert_error(response, 400, "invalid_request")["rows"]
    ]


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_import_refuses_another_owners_code_as_it_refuses_its_own(api, offer, theirs, dry_run):
    factories.CouponFactory(offer=offer, code="MINE1")
    refused = rows(import_(api, offer, ["MINE1", theirs[0], "FRESH1"], dry_run=dry_run))
    (_, mine_reason, mine_message), (_, their_reason, their_message) = refused
    assert (mine_reason, mine_message) == (their_reason, their_message)
    assert not any(word in their_message.lower() for word in ("offer", "owner", "merchant", "exist"))


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3)
def test_each_collision_with_another_owners_code_counts_against_the_unknown_code_limit(api, offer, theirs):
    assert len(rows(import_(api, offer, theirs[:2], dry_run=True))) == 2
    # Two of three counted: two more would pass the limit, so the rows stay hidden.
    assert_error(import_(api, offer, theirs[2:4], dry_run=True), 429, "rate_limited")
    # Past the limit every import is refused, with or without a collision: the answer tells nothing.
    assert_error(import_(api, offer, ["FRESH1"], dry_run=True), 429, "rate_limited")
    assert_error(api.get("/api/v1/codes/GUESS"), 429, "rate_limited")  # the same counter as look-ups


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3)
def test_collisions_with_own_codes_are_not_counted(api, offer, theirs):
    mine = [factories.CouponFactory(offer=offer, code=f"MINE{n}").code for n in range(5)]
    for _ in range(3):
        assert len(rows(import_(api, offer, mine))) == 5
    assert import_(api, offer, ["FRESH1"]).status_code == 201


def test_a_vanity_code_another_owner_holds_is_refused_as_any_taken_code_without_a_500(api, offer, theirs):
    mine = factories.OfferFactory(site=offer.site, vanity_code="MYVANITY")
    factories.CouponFactory(offer=mine, code="MYVANITY")
    api.defaults["HTTP_X_REQUEST_ID"] = "vanity-check"  # one request id: the error bodies compare whole
    base = {"name": "V", "coupon_type": "fixedAmount", "discount_value": "5.00"}
    for vanity in ("THEIRVANITY", theirs[0]):
        refused = assert_error(api.post("/api/v1/offers/", base | {"vanity_code": vanity}, format="json"), 400,
                               "invalid_request")  # fmt: skip
        own = assert_error(api.post("/api/v1/offers/", base | {"vanity_code": "MYVANITY"}, format="json"), 400,
                           "invalid_request")  # fmt: skip
        assert refused == own and refused["fields"] == {"vanity_code": ["unavailable"]}
        patched = api.patch(f"/api/v1/offers/{offer.id}/", {"vanity_code": vanity}, format="json")
        assert assert_error(patched, 400, "invalid_request") == own
    assert Offer.objects.filter(merchant=offer.merchant).count() == 2
    offer.refresh_from_db()
    assert offer.vanity_code is None and not Coupon.objects.filter(offer=offer).exists()


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=2)
def test_vanity_codes_another_owner_holds_count_against_the_unknown_code_limit(api, offer, theirs):
    for vanity in theirs[:2]:
        patched = api.patch(f"/api/v1/offers/{offer.id}/", {"vanity_code": vanity}, format="json")
        assert_error(patched, 400, "invalid_request")
    assert_error(api.patch(f"/api/v1/offers/{offer.id}/", {"vanity_code": theirs[2]}, format="json"), 429,
                 "rate_limited")  # fmt: skip


@override_settings(UNKNOWN_CODE_LIMIT_PER_MINUTE=3, CSV_IMPORT_INLINE_MAX_ROWS=2)
def test_a_large_import_by_a_job_counts_its_collisions_before_its_rows_are_shown(
    api, offer, theirs, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", True)
    with django_capture_on_commit_callbacks(execute=True):
        accepted = import_(api, offer, [*theirs[:4], "FRESH1"])
    assert accepted.status_code == 202, accepted.content
    job = api.get(accepted["Location"])
    assert_error(job, 429, "rate_limited")  # four found codes: past the limit, the rows stay hidden
    assert_error(import_(api, offer, ["FRESH2"]), 429, "rate_limited")
