"""X-DRY-RUN: every write answers what would happen and leaves no row, webhook event or on-commit task behind."""

import pytest

from coupons.models import Coupon, IdempotencyRecord, Job, JobChunk, Location, Member, Offer, Redemption
from tests import factories
from tests.coupons.api.conftest import assert_error
from webhooks.models import Delivery, Event, Subscription

MODELS = [Offer, Coupon, Redemption, Member, Job, JobChunk, Location, IdempotencyRecord, Event, Delivery]
EVENTS = ["coupon.created", "coupon.issued", "coupon.viewed", "coupon.redeemed", "coupon.redemption_failed"]


def row_counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in MODELS}


@pytest.fixture
def world(offer, member):
    """A subscription to every event, a code, a redeemed code and its redemption."""
    Subscription.objects.create(url="http://127.0.0.1:9/hook", format="standard", events=EVENTS)
    coupon = factories.CouponFactory(offer=offer)
    used = factories.CouponFactory(offer=offer, times_redeemed=1, status="redeemed")
    redemption = factories.RedemptionFactory(coupon=used)
    offer.external_id = "EXT-1"
    offer.save()
    return {"offer": offer, "member": member, "coupon": coupon, "redemption": redemption}


ORDER = {"order_value": "80.00", "currency": "AUD"}
WRITES = {
    "create offer": ("post", "/api/v1/offers/", lambda w: {"name": "Dry", "coupon_type": "freeShipping"}, 201),
    "patch offer": ("patch", "/api/v1/offers/{offer}/", lambda w: {"name": "Renamed"}, 200),
    "create codes": ("post", "/api/v1/offers/{offer}/coupons/", lambda w: {"Members": [w["member"].id]}, 201),
    "create codes in a job": ("post", "/api/v1/offers/{offer}/coupons/", lambda w: {"count": 5, "TaskServer": True},
                              202),
    "import codes": ("post", "/api/v1/offers/{offer}/codes/import", None, 201),
    "issue": ("post", "/api/v1/offers/{offer}/issue", lambda w: {"identifier": "c-1", "email": "new@example.com"},
              201),
    "talon get": ("get", "/api/v1/customer_engagement/coupon?applicationId={site}&campaignId={offer}"
                         "&externalCampaignId=EXT-1&identifier=c-2", None, 201),
    "validate": ("post", "/api/v1/codes/validate", lambda w: {"code": w["coupon"].code, **ORDER}, 200),
    "redeem": ("post", "/api/v1/codes/redeem", lambda w: {"code": w["coupon"].code, "order_id": "O-1",
                                                          "location": "New shop", **ORDER}, 201),
    "refused redemption": ("post", "/api/v1/codes/redeem", lambda w: {"code": w["redemption"].coupon.code,
                                                                      "order_id": "O-2", **ORDER}, 409),
    "rollback": ("post", "/api/v1/redemptions/{redemption}/rollback", None, 200),
    "view": ("post", "/api/v1/codes/{code}/view", lambda w: {"session_id": "s"}, 200),
    "create member": ("post", "/api/v1/members/", lambda w: {"id": 777, "email": "m@example.com"}, 201),
}  # fmt: skip


def send(api, world, name: str, **headers):
    method, url, body, _ = WRITES[name]
    url = url.format(offer=world["offer"].id, site=world["offer"].site_id, redemption=world["redemption"].id,
                     code=world["coupon"].code)  # fmt: skip
    if name == "import codes":
        return api.post(url, b"code\nDRY-RUN-CODE-1\n", content_type="text/csv", **headers)
    return getattr(api, method)(url, body(world) if body else None, format="json", **headers)


@pytest.mark.parametrize("name", list(WRITES))
def test_a_dry_run_answers_as_the_real_write_would_and_leaves_nothing_behind(
    api, world, name, django_capture_on_commit_callbacks
):
    before = row_counts()
    with django_capture_on_commit_callbacks() as callbacks:
        dry = send(api, world, name, HTTP_X_DRY_RUN="true", HTTP_IDEMPOTENCY_KEY=f"dry-{name}")
    assert dry.status_code == WRITES[name][3], dry.content[:300]
    assert dry["X-Dry-Run"] == "true"
    assert row_counts() == before
    assert callbacks == [], "no webhook send or job run is scheduled"

    real = send(api, world, name)
    assert real.status_code == dry.status_code
    assert "X-Dry-Run" not in real
    if name not in ("validate", "rollback", "patch offer", "view"):
        assert row_counts() != before, "the same request without X-DRY-RUN does write"


def test_a_dry_run_changes_no_existing_row(api, world):
    send(api, world, "patch offer", HTTP_X_DRY_RUN="1")
    send(api, world, "rollback", HTTP_X_DRY_RUN="yes")
    send(api, world, "view", HTTP_X_DRY_RUN="true")
    world["offer"].refresh_from_db()
    world["redemption"].refresh_from_db()
    world["coupon"].refresh_from_db()
    assert world["offer"].name != "Renamed"
    assert world["redemption"].rolled_back_at is None and world["redemption"].coupon.times_redeemed == 1
    assert world["coupon"].viewed_at is None


def test_a_dry_run_still_runs_every_check(api, world):
    assert_error(send(api, world, "refused redemption", HTTP_X_DRY_RUN="true"), 409, "already_redeemed")
    response = api.post("/api/v1/codes/redeem", {"code": "NOPE", "order_id": "1", **ORDER}, format="json",
                        HTTP_X_DRY_RUN="true")  # fmt: skip
    assert_error(response, 404, "not_found")


def test_dry_run_false_writes_and_a_bad_value_is_refused(api, world):
    assert send(api, world, "create member", HTTP_X_DRY_RUN="false").status_code == 201
    assert Member.objects.filter(pk=777).exists()
    error = assert_error(send(api, world, "create offer", HTTP_X_DRY_RUN="perhaps"), 400, "invalid_request")
    assert "X-DRY-RUN" in error["fields"]
