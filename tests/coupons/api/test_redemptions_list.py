"""GET /redemptions/ for reconciliation: by order, code and time, only what the key's owner may see, cursor pages."""

from base64 import b64encode
from datetime import timedelta

import pytest
from django.utils import timezone

from tests import factories
from tests.coupons.api.conftest import assert_error

REDEMPTIONS = "/api/v1/redemptions/"


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [r["id"] for r in response.json()["results"]]


def walk(client, query: dict | None = None, *, between_pages=None) -> list[int]:
    """Every id of the list, following `next` from the first page; `between_pages` runs after each page read."""
    seen, response = [], client.get(REDEMPTIONS, query or {})
    while True:
        seen += ids(response)
        if between_pages:
            between_pages()
        if not response.json()["next"]:
            return seen
        response = client.get(response.json()["next"])


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def used(offer):
    return factories.CouponFactory(offer=offer, code="RECON0001")


def test_redemptions_are_found_by_order_code_and_time(api, offer, used, now):
    hour_ago = factories.RedemptionFactory(coupon=used, order_id="A-1", redeemed_at=now - timedelta(hours=1))
    day_ago = factories.RedemptionFactory(coupon=used, order_id="A-2", redeemed_at=now - timedelta(days=1))
    other_code = factories.RedemptionFactory(
        coupon=factories.CouponFactory(offer=offer), order_id="A-1", redeemed_at=now - timedelta(minutes=5)
    )
    rolled_back = factories.RedemptionFactory(
        coupon=used, order_id="A-3", redeemed_at=now - timedelta(minutes=1), rolled_back_at=now
    )

    assert ids(api.get(REDEMPTIONS)) == [rolled_back.id, other_code.id, day_ago.id, hour_ago.id]
    assert ids(api.get(REDEMPTIONS, {"order_id": "A-1"})) == [other_code.id, hour_ago.id]
    assert ids(api.get(REDEMPTIONS, {"code": "RECON0001"})) == [rolled_back.id, day_ago.id, hour_ago.id]
    assert ids(api.get(REDEMPTIONS, {"code": "RECON0001", "order_id": "A-1"})) == [hour_ago.id]
    window = {
        "since": (now - timedelta(hours=2)).isoformat(),
        "until": (now - timedelta(minutes=3)).isoformat(),
    }
    assert ids(api.get(REDEMPTIONS, window)) == [other_code.id, hour_ago.id]
    # since is inclusive, until exclusive: consecutive windows never count a redemption twice.
    at = hour_ago.redeemed_at.isoformat()
    assert ids(api.get(REDEMPTIONS, {"since": at, "until": now.isoformat()})) == [
        rolled_back.id,
        other_code.id,
        hour_ago.id,
    ]
    assert ids(api.get(REDEMPTIONS, {"until": at})) == [day_ago.id]
    assert ids(api.get(REDEMPTIONS, {"order_id": "NOPE"})) == []
    shown = api.get(REDEMPTIONS, {"order_id": "A-3"}).json()["results"][0]
    assert (shown["code"], shown["offer_id"], shown["order_id"]) == ("RECON0001", offer.id, "A-3")
    assert shown["rolled_back_at"] is not None


def test_a_key_finds_only_the_redemptions_its_owner_may_see(make_client, api, merchant, offer, used):
    mine = factories.RedemptionFactory(coupon=used, order_id="SHARED")
    stranger = factories.MerchantFactory()
    theirs = factories.RedemptionFactory(
        coupon=factories.CouponFactory(
            offer=factories.OfferFactory(site=factories.SiteFactory(merchant=stranger))
        ),
        order_id="SHARED",
    )
    distributor = factories.DistributorFactory()
    offer.distributors.add(distributor)
    by_distributor = factories.RedemptionFactory(
        coupon=factories.CouponFactory(offer=offer), order_id="SHARED", distributor=distributor
    )

    assert ids(api.get(REDEMPTIONS, {"order_id": "SHARED"})) == [by_distributor.id, mine.id]
    assert ids(make_client(merchant=stranger).get(REDEMPTIONS, {"order_id": "SHARED"})) == [theirs.id]
    publisher = make_client(distributor=distributor)
    assert ids(publisher.get(REDEMPTIONS, {"order_id": "SHARED"})) == [by_distributor.id]
    assert ids(publisher.get(REDEMPTIONS, {"code": theirs.coupon.code})) == []


def test_the_list_needs_the_read_scope(make_client, merchant):
    assert_error(make_client(merchant=merchant, scopes=["redeem"]).get(REDEMPTIONS), 403, "forbidden")
    assert make_client(merchant=merchant, scopes=["read"]).get(REDEMPTIONS).status_code == 200


def test_pages_follow_a_cursor_without_a_count(api, used):
    made = [factories.RedemptionFactory(coupon=used).id for _ in range(5)]
    first = api.get(REDEMPTIONS, {"page_size": 2}).json()
    assert set(first) == {"next", "previous", "results"} and first["previous"] is None
    assert "cursor=" in first["next"] and "page_size=2" in first["next"]
    assert walk(api, {"page_size": 2}) == made[::-1]


def test_redemptions_made_while_pages_are_read_neither_repeat_nor_skip_a_row(api, used):
    before = [factories.RedemptionFactory(coupon=used).id for _ in range(7)]
    made_meanwhile = []

    def redeem_more():
        made_meanwhile.append(factories.RedemptionFactory(coupon=used).id)

    seen = walk(api, {"page_size": 3}, between_pages=redeem_more)
    assert seen == before[::-1]  # newest first: the new ones are ahead of the first page, not in the walk
    assert len(made_meanwhile) == 3
    assert walk(api, {"page_size": 3}) == (before + made_meanwhile)[::-1]


def _cursor(text: str) -> str:
    return b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "query, field",
    [
        ({"since": "yesterday"}, "since"),
        ({"until": "0001-01-01T00:00:00+05:00"}, "until"),
        ({"since": "9999-12-31T23:59:59-05:00"}, "since"),
        ({"since": "2026-01-02T00:00:00+00:00", "until": "2026-01-01T00:00:00+00:00"}, "until"),
        ({"code": "C" * 65}, "code"),
        ({"order_id": "O" * 201}, "order_id"),
        ({"cursor": "not a cursor"}, "cursor"),
        ({"cursor": _cursor("p=abc")}, "cursor"),
        ({"cursor": _cursor("p=1e5")}, "cursor"),
        ({"cursor": _cursor(f"p={2**63}")}, "cursor"),
        ({"cursor": _cursor("o=-1")}, "cursor"),
    ],
)
def test_bad_filters_and_cursors_are_a_400_naming_the_parameter(api, used, query, field):
    factories.RedemptionFactory(coupon=used)
    error = assert_error(api.get(REDEMPTIONS, query), 400, "invalid_request")
    assert field in error["fields"]


def test_a_cursor_from_the_far_end_of_the_ids_is_an_empty_page(api, used):
    factories.RedemptionFactory(coupon=used)
    assert ids(api.get(REDEMPTIONS, {"cursor": _cursor(f"p={10**18 - 1}&r=1")})) == []
    assert ids(api.get(REDEMPTIONS, {"cursor": _cursor("p=-999999999999999999")})) == []
