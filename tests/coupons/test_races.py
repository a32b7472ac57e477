"""Concurrency guarantees with real threads, each on its own database connection."""

import pytest

from coupons import services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Redemption
from tests.concurrency import all_at_once
from tests.factories import CouponFactory, MemberFactory, OfferFactory, SiteFactory

pytestmark = [pytest.mark.django_db(transaction=True)]
THREADS = 30


def redeem(code: str, order_id: str, member_id: int | None = None):
    the_order = services.order_parse(order_value="100", currency="AUD")
    return services.coupon_redeem(code=code, order_id=order_id, order=the_order, member_id=member_id)


@pytest.fixture
def race_offer():
    return OfferFactory(site=SiteFactory())


def successes(results) -> list:
    return [r for r in results if isinstance(r, tuple) and r[1]]


def test_thirty_concurrent_redemptions_of_a_single_use_code_give_exactly_one_success(race_offer):
    coupon = CouponFactory(offer=race_offer)
    results = all_at_once(lambda i: redeem(coupon.code, f"order-{i}"), THREADS)
    assert len(successes(results)) == 1
    assert {r.code for r in results if isinstance(r, ApplicationError)} == {"already_redeemed"}
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 1 and Redemption.objects.count() == 1


def test_thirty_concurrent_redemptions_of_a_five_use_code_give_exactly_five(race_offer):
    coupon = CouponFactory(offer=race_offer, max_redemptions=5)
    results = all_at_once(lambda i: redeem(coupon.code, f"order-{i}"), THREADS)
    assert len(successes(results)) == 5
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 5 and Redemption.objects.count() == 5


def test_thirty_concurrent_redemptions_for_one_order_make_one_use(race_offer):
    coupon = CouponFactory(offer=race_offer, max_redemptions=None)
    results = all_at_once(lambda i: redeem(coupon.code, "same-order"), THREADS)
    assert len(successes(results)) == 1 and len({r[0].pk for r in results}) == 1
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 1


def test_thirty_concurrent_issues_for_one_identifier_give_one_coupon(race_offer):
    results = all_at_once(lambda i: services.coupon_issue(offer=race_offer, identifier="cust-1"), THREADS)
    assert len({coupon.pk for coupon, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert Coupon.objects.filter(offer=race_offer).count() == 1


def test_the_per_member_limit_holds_under_concurrency(race_offer):
    race_offer.max_redemptions_per_member = 2
    race_offer.save()
    member = MemberFactory(merchant=race_offer.merchant)
    coupons = [CouponFactory(offer=race_offer) for _ in range(THREADS)]
    results = all_at_once(lambda i: redeem(coupons[i].code, f"order-{i}", member_id=member.id), THREADS)
    assert len(successes(results)) == 2
    assert {r.code for r in results if isinstance(r, ApplicationError)} == {"member_limit_reached"}
    assert Redemption.objects.filter(member=member).count() == 2
