"""Every rule of coupon_validate: discounts per type, limits, dates and applicability."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from coupons import services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Redemption
from coupons.selectors import Owner
from tests.factories import CouponFactory, MemberFactory, OfferFactory, RedemptionFactory
from webhooks.models import Event


def order(value="100.00", currency="AUD", **extra):
    return services.order_parse(order_value=value, currency=currency, **extra)


def validate(coupon, the_order=None, **kwargs):
    return services.coupon_validate(code=coupon.code, order=the_order or order(), **kwargs)


def test_a_fixed_amount_takes_its_value_off(offer):
    result = validate(CouponFactory(offer=offer))
    assert result.valid and result.discount_amount == Decimal("10.00") and not result.free_shipping


def test_a_fixed_amount_never_exceeds_the_order(offer):
    assert validate(CouponFactory(offer=offer), order("4.50")).discount_amount == Decimal("4.50")


def test_a_percentage_rounds_half_up_to_the_cent(site):
    offer = OfferFactory(site=site, coupon_type="percentage", discount_value=Decimal("12.50"))
    assert validate(CouponFactory(offer=offer), order("10.10")).discount_amount == Decimal("1.26")


def test_free_shipping_gives_the_shipping_amount(site):
    offer = OfferFactory(site=site, coupon_type="freeShipping", discount_value=None)
    result = validate(CouponFactory(offer=offer), order(shipping_amount="7.95"))
    assert result.valid and result.free_shipping and result.discount_amount == Decimal("7.95")


def test_a_mystery_code_gives_the_discount_drawn_at_issue(site):
    offer = OfferFactory(site=site, coupon_type="mystery", discount_value=None,
                         mystery_discounts=[{"coupon_type": "percentage", "discount_value": "20"}])  # fmt: skip
    coupon = CouponFactory(offer=offer, discount_type="percentage", discount_value=Decimal("20"))
    assert validate(coupon).discount_amount == Decimal("20.00")


def test_a_product_offer_discounts_only_the_matching_products(site):
    offer = OfferFactory(site=site, coupon_type="percentage", discount_value=Decimal("10"),
                         applicable_on="product", applicable_filters=["a", "b"])  # fmt: skip
    the_order = order(products=[{"id": "a", "amount": "30"}, {"id": "z", "amount": "70"}])
    assert validate(CouponFactory(offer=offer), the_order).discount_amount == Decimal("3.00")


def test_a_collection_offer_without_a_matching_collection_is_not_applicable(site):
    offer = OfferFactory(site=site, applicable_on="collection", applicable_filters=["summer"])
    result = validate(CouponFactory(offer=offer), order(collections=["winter"]))
    assert not result.valid and result.error.code == "not_applicable"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"active_status": 0}, "offer_inactive"),
        ({"start_date": timezone.now() + timedelta(days=1)}, "not_started"),
        ({"finish_date": timezone.now() - timedelta(seconds=1), "start_date": None}, "expired"),
        ({"min_order_amount": Decimal("150")}, "min_order_not_met"),
        ({"currency": "USD"}, "currency_mismatch"),
    ],
)
def test_offer_rules_refuse_with_their_error_code(offer, change, code):
    coupon = CouponFactory(offer=offer)
    for name, value in change.items():
        setattr(offer, name, value)
    offer.save()
    result = validate(coupon)
    assert not result.valid and result.error.code == code and result.discount_amount == 0


def test_an_expired_code_is_refused(offer):
    coupon = CouponFactory(offer=offer, expires_at=timezone.now() - timedelta(minutes=1))
    assert validate(coupon).error.code == "expired"


def test_a_deactivated_code_is_refused(offer):
    coupon = services.coupon_deactivate(coupon=CouponFactory(offer=offer))
    assert validate(coupon).error.code == "offer_inactive"


def test_a_used_single_use_code_is_already_redeemed(offer):
    coupon = CouponFactory(offer=offer, times_redeemed=1, max_redemptions=1)
    assert validate(coupon).error.code == "already_redeemed"


def test_a_used_up_multi_use_code_has_reached_its_limit(offer):
    coupon = CouponFactory(offer=offer, times_redeemed=3, max_redemptions=3)
    assert validate(coupon).error.code == "usage_limit_reached"


def test_a_member_over_the_offers_per_member_limit_is_refused(offer):
    offer.max_redemptions_per_member = 1
    offer.save()
    member = MemberFactory(merchant=offer.merchant)
    RedemptionFactory(coupon=CouponFactory(offer=offer), member=member)
    assert validate(CouponFactory(offer=offer), member_id=member.id).error.code == "member_limit_reached"


def test_validation_writes_nothing(offer):
    coupon = CouponFactory(offer=offer)
    validate(coupon)
    validate(coupon, order(currency="USD"))
    assert not Redemption.objects.exists() and not Event.objects.exists()
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 0


def test_an_unknown_code_or_another_owners_code_is_not_found(offer):
    coupon = CouponFactory(offer=offer)
    with pytest.raises(ApplicationError) as refused:
        services.coupon_validate(code="NOPE", order=order())
    assert refused.value.code == "not_found"
    with pytest.raises(ApplicationError) as refused:
        services.coupon_validate(
            owner=Owner(merchant_id=offer.merchant_id + 1), code=coupon.code, order=order()
        )
    assert refused.value.code == "not_found"


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"order_value": "-1"}, "order_value"),
        ({"order_value": "abc"}, "order_value"),
        ({"order_value": None}, "order_value"),
        ({"order_value": [1]}, "order_value"),
        ({"order_value": "1.234"}, "order_value"),
        ({"order_value": "NaN"}, "order_value"),
        ({"order_value": True}, "order_value"),
        ({"currency": "dollars"}, "currency"),
        ({"currency": 12}, "currency"),
        ({"products": "a"}, "products"),
        ({"products": [{"name": "x"}]}, "products"),
        ({"shipping_amount": "-2"}, "shipping_amount"),
    ],
)
def test_a_malformed_order_is_an_invalid_request_naming_the_field(fields, bad):
    with pytest.raises(ApplicationError) as refused:
        services.order_parse(**({"order_value": "10", "currency": "AUD"} | fields))
    assert refused.value.code == "invalid_request" and bad in refused.value.fields
