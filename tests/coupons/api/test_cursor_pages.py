"""Long lists (codes, deliveries, attempts, redemptions) page by cursor: stable while rows are inserted, no COUNT(*)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests import factories
from tests.coupons.api.conftest import assert_error
from tests.webhooks.factories import DeliveryFactory, SubscriptionFactory


def walk(client, url: str, query: dict, *, between_pages=None) -> list[int]:
    """Every id of a list, following `next` from its first page; `between_pages` runs after each page read."""
    seen, response = [], client.get(url, query)
    while True:
        assert response.status_code == 200, response.content
        body = response.json()
        assert "count" not in body
        seen += [row["id"] for row in body["results"]]
        if between_pages:
            between_pages()
        if not body["next"]:
            return seen
        response = client.get(body["next"])


def test_codes_inserted_between_page_reads_are_neither_repeated_nor_skipped(api, offer):
    first = [factories.CouponFactory(offer=offer).id for _ in range(10)]
    inserted = []

    def generate_more():
        inserted.extend(factories.CouponFactory(offer=offer).id for _ in range(2))

    seen = walk(api, f"/api/v1/offers/{offer.id}/coupons/", {"page_size": 3}, between_pages=generate_more)

    assert len(seen) == len(set(seen))  # no duplicates
    assert seen[: len(first)] == first  # no gaps among the codes there when the walk began
    assert seen == first + inserted[: len(seen) - len(first)]  # codes made meanwhile follow, in order


def test_a_filtered_list_keeps_its_filter_from_page_to_page(api, offer, member):
    mine = [factories.CouponFactory(offer=offer, member=member).id for _ in range(5)]
    for _ in range(5):
        factories.CouponFactory(offer=offer)
    assert walk(api, f"/api/v1/offers/{offer.id}/coupons/", {"member": member.id, "page_size": 2}) == mine


def test_a_cursor_page_counts_nothing(api, offer):
    for _ in range(3):
        factories.CouponFactory(offer=offer)
    with CaptureQueriesContext(connection) as captured:
        assert api.get(f"/api/v1/offers/{offer.id}/coupons/", {"page_size": 2}).status_code == 200
    assert not [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]


def test_a_client_paging_by_number_still_gets_numbered_pages_with_a_count(api, offer):
    made = [factories.CouponFactory(offer=offer).id for _ in range(5)]
    url = f"/api/v1/offers/{offer.id}/coupons/"
    second = api.get(url, {"page": 2, "page_size": 2}).json()
    assert second["count"] == 5 and [c["id"] for c in second["results"]] == made[2:4]
    assert "page=3" in second["next"] and "cursor" not in second["next"]
    assert_error(api.get(url, {"page": 9}), 404, "not_found")


@pytest.mark.parametrize("cursor", ["%%%", "cD1hYmM=", "bz0tMQ=="])  # not base64; p=abc; o=-1
def test_a_cursor_no_page_gave_is_a_400(api, offer, cursor):
    error = assert_error(
        api.get(f"/api/v1/offers/{offer.id}/coupons/", {"cursor": cursor}), 400, "invalid_request"
    )
    assert "cursor" in error["fields"]


def test_a_members_codes_and_redemptions_page_by_cursor(api, offer, member):
    coupons = [factories.CouponFactory(offer=offer, member=member) for _ in range(3)]
    redemptions = [factories.RedemptionFactory(coupon=c, member=member).id for c in coupons]
    assert walk(api, f"/api/v1/members/{member.id}/coupons/", {"page_size": 2}) == [c.id for c in coupons]
    assert walk(api, f"/api/v1/members/{member.id}/redemptions/", {"page_size": 2}) == redemptions[::-1]


# --- webhooks -------------------------------------------------------------------------------------


@pytest.fixture
def subscription(merchant):
    return SubscriptionFactory(merchant=merchant)


def test_deliveries_made_between_page_reads_are_neither_repeated_nor_skipped(api, subscription):
    before = [DeliveryFactory(subscription=subscription).id for _ in range(7)]
    seen = walk(
        api,
        "/api/v1/webhooks/deliveries/",
        {"page_size": 3},
        between_pages=lambda: DeliveryFactory(subscription=subscription),
    )
    assert seen == before[::-1]  # newest first: deliveries made meanwhile come before the first page


def test_attempts_are_listed_newest_first_by_cursor_for_the_keys_own_deliveries_only(
    api, make_client, subscription, merchant
):
    delivery = DeliveryFactory(subscription=subscription, status="failed")
    other = DeliveryFactory(subscription=SubscriptionFactory(merchant=merchant, url="http://127.0.0.1:9/b"))
    theirs = DeliveryFactory(subscription=SubscriptionFactory(merchant=factories.MerchantFactory()))
    attempts = []
    for n in range(4):
        attempts.append(delivery.attempt_log.create(subscription=subscription, status_code=500 + n).id)
    other_attempt = other.attempt_log.create(subscription=other.subscription, status_code=200).id
    theirs.attempt_log.create(subscription=theirs.subscription, status_code=200)

    url = "/api/v1/webhooks/attempts/"
    assert walk(api, url, {"page_size": 2}) == [other_attempt, *attempts[::-1]]
    assert walk(api, url, {"delivery": delivery.id, "page_size": 3}) == attempts[::-1]
    assert walk(api, url, {"subscription": other.subscription_id}) == [other_attempt]
    assert walk(api, url, {"delivery": theirs.id}) == []
    shown = api.get(url, {"delivery": delivery.id}).json()["results"][0]
    assert (shown["delivery_id"], shown["subscription_id"], shown["status_code"]) == (
        delivery.id,
        subscription.id,
        503,
    )
    assert (
        "subscription" in assert_error(api.get(url, {"subscription": "x"}), 400, "invalid_request")["fields"]
    )
    assert_error(make_client(merchant=merchant, scopes=["read"]).get(url), 403, "forbidden")
