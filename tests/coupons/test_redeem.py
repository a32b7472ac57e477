"""Redemption and rollback: one use per row, idempotent per order, failures announced."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from coupons import services
from coupons.errors import ApplicationError
from coupons.models import Coupon, CouponStatus, Redemption
from tests.factories import CouponFactory, LocationFactory, MemberFactory
from webhooks.models import Event


def order(value="100.00", currency="AUD"):
    return services.order_parse(order_value=value, currency=currency)


def redeem(coupon, order_id="ORDER-1", the_order=None, **kwargs):
    return services.coupon_redeem(code=coupon.code, order_id=order_id, order=the_order or order(), **kwargs)


def test_a_redemption_is_a_row_and_uses_the_code(offer):
    coupon = CouponFactory(offer=offer)
    redemption, created = redeem(coupon, location="Shop 123")
    coupon.refresh_from_db()
    assert (
        created and redemption.discount_amount == Decimal("10.00") and redemption.location.name == "Shop 123"
    )
    assert coupon.times_redeemed == 1 and coupon.status == CouponStatus.REDEEMED
    assert Event.objects.get(type="coupon.redeemed").data["redemption"]["order_id"] == "ORDER-1"


def test_the_same_order_again_returns_the_first_redemption_and_never_a_second_use(offer):
    coupon = CouponFactory(offer=offer)
    first, _ = redeem(coupon)
    again, created = redeem(coupon)
    assert again.pk == first.pk and not created
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 1 and Redemption.objects.count() == 1


def test_it_refuses_a_second_redemption_of_a_single_use_code(offer):
    coupon = CouponFactory(offer=offer)
    redeem(coupon)
    with pytest.raises(ApplicationError) as refused:
        redeem(coupon, order_id="ORDER-2")
    assert refused.value.code == "already_redeemed" and refused.value.status == 409
    assert Redemption.objects.count() == 1


def test_a_refused_redemption_records_the_failure_event_and_nothing_else(offer):
    coupon = CouponFactory(offer=offer)
    with pytest.raises(ApplicationError):
        redeem(coupon, the_order=order(currency="USD"), location="Shop 9")
    failure = Event.objects.get(type="coupon.redemption_failed")
    assert failure.data["error"] == {"code": "currency_mismatch", "message": "This offer is in AUD."}
    assert failure.data["redemption"]["location"] == "Shop 9"
    assert not Redemption.objects.exists() and Coupon.objects.get(pk=coupon.pk).times_redeemed == 0


def test_a_multi_use_code_counts_each_use_up_to_its_limit(offer):
    coupon = CouponFactory(offer=offer, max_redemptions=3)
    for n in range(3):
        redeem(coupon, order_id=f"O-{n}")
    with pytest.raises(ApplicationError) as refused:
        redeem(coupon, order_id="O-4")
    assert refused.value.code == "usage_limit_reached"
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.REDEEMED


def test_an_unlimited_code_stays_active(offer):
    coupon = CouponFactory(offer=offer, max_redemptions=None)
    for n in range(3):
        redeem(coupon, order_id=f"O-{n}")
    assert Coupon.objects.get(pk=coupon.pk).status == CouponStatus.ACTIVE


def test_the_codes_member_is_the_redeeming_member_unless_another_is_named(offer):
    owner, other = MemberFactory(merchant=offer.merchant), MemberFactory(merchant=offer.merchant)
    redemption, _ = redeem(CouponFactory(offer=offer, member=owner))
    assert redemption.member == owner
    redemption, _ = redeem(CouponFactory(offer=offer, member=owner), member_id=other.id)
    assert redemption.member == other


def test_an_unknown_member_is_an_invalid_request(offer):
    with pytest.raises(ApplicationError) as refused:
        redeem(CouponFactory(offer=offer), member_id=987654)
    assert refused.value.fields == {"member_id": ["unknown"]}
    assert not Event.objects.exists()


@pytest.mark.parametrize("order_id", [None, "", "   ", "x" * 201, "a\x00b", True])
def test_a_missing_or_malformed_order_id_is_refused_before_anything_happens(offer, order_id):
    with pytest.raises(ApplicationError) as refused:
        redeem(CouponFactory(offer=offer), order_id=order_id)
    assert refused.value.code == "invalid_request"
    assert not Redemption.objects.exists() and not Event.objects.exists()


def test_a_redemption_rolled_back_with_its_transaction_leaves_no_trace(offer):
    coupon = CouponFactory(offer=offer)
    with pytest.raises(RuntimeError), transaction.atomic():
        redeem(coupon)
        raise RuntimeError("the order failed")
    assert not Redemption.objects.exists() and not Event.objects.exists()
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 0


def test_a_rollback_gives_the_use_back(offer):
    coupon = CouponFactory(offer=offer)
    redemption, _ = redeem(coupon)
    services.redemption_rollback(redemption=redemption)
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0 and coupon.status == CouponStatus.ACTIVE
    assert Redemption.objects.get(pk=redemption.pk).rolled_back_at is not None
    again, created = redeem(coupon, order_id="ORDER-2")
    assert created


def test_a_rollback_cannot_happen_twice(offer):
    redemption, _ = redeem(CouponFactory(offer=offer))
    services.redemption_rollback(redemption=redemption)
    with pytest.raises(ApplicationError) as refused:
        services.redemption_rollback(redemption=redemption)
    assert refused.value.code == "already_rolled_back"
    assert Coupon.objects.get(code=redemption.coupon.code).times_redeemed == 0


def test_the_same_order_can_redeem_again_after_its_rollback(offer):
    coupon = CouponFactory(offer=offer)
    first, _ = redeem(coupon)
    services.redemption_rollback(redemption=first)
    second, created = redeem(coupon)
    assert created and second.pk != first.pk


def test_the_location_is_a_shop_of_the_offers_site(offer):
    LocationFactory(site=offer.site, name="Shop 123")
    redemption, _ = redeem(CouponFactory(offer=offer), location="Shop 123")
    assert redemption.location.site == offer.site
    assert offer.site.locations.count() == 1


def test_expiry_marks_codes_past_their_date(offer):
    past = CouponFactory(offer=offer, expires_at=timezone.now() - timedelta(hours=1))
    future = CouponFactory(offer=offer, expires_at=timezone.now() + timedelta(hours=1))
    assert services.coupons_expire() == 1
    assert Coupon.objects.get(pk=past.pk).status == CouponStatus.EXPIRED
    assert Coupon.objects.get(pk=future.pk).status == CouponStatus.ACTIVE
