"""An offer's terms and a page's messages in the shopper's words, with dates in the site's time zone."""

import zoneinfo
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.formats import date_format

from coupons.errors import ApplicationError
from coupons.models import ApplicableOn, Coupon, CouponStatus, CouponType, ExpiryType, Offer, UsageLimitType

REFUSALS = {
    "expired": "This offer has ended. Thank you for your interest!",
    "offer_inactive": "This offer is not available at the moment.",
    "sold_out": "All the codes of this offer have been claimed. Sorry, you just missed it!",
}
COUPON_NOTES = {
    CouponStatus.EXPIRED: "This code has expired.",
    CouponStatus.REDEEMED: "This code has already been used.",
    CouponStatus.INACTIVE: "This code is no longer active.",
}


def _number(value: Decimal) -> str:
    """10.00 -> "10", 12.50 -> "12.5": a percentage reads best without trailing zeros."""
    return f"{value.normalize():f}"


def money(value: Decimal, currency: str) -> str:
    return f"{currency} {value:,.2f}"


def local_date(offer: Offer, value: datetime, with_time: bool = False) -> str:
    local = timezone.localtime(value, zoneinfo.ZoneInfo(offer.site.timezone))
    return date_format(local, "j F Y, H:i T" if with_time else "j F Y")


def discount_text(offer: Offer, coupon: Coupon | None = None) -> str:
    """What the code gives; a mystery offer's discount is told only once its code is drawn."""
    kind = (coupon.discount_type if coupon else None) or offer.coupon_type
    value = coupon.discount_value if coupon and coupon.discount_value is not None else offer.discount_value
    target = "your order" if offer.applicable_on == ApplicableOn.ORDER else f"selected {offer.applicable_on}s"
    if kind == CouponType.MYSTERY:
        return "A mystery discount: reveal your code to find out what you get"
    if kind == CouponType.FREE_SHIPPING:
        return "Free shipping"
    if kind == CouponType.PERCENTAGE:
        return f"{_number(value)}% off {target}"
    return f"{money(value, offer.currency)} off {target}"


def offer_terms(offer: Offer, coupon: Coupon | None = None) -> list[str]:
    terms = [discount_text(offer, coupon)]
    if offer.min_order_amount:
        terms.append(f"On orders of {money(offer.min_order_amount, offer.currency)} or more")
    limit = offer.code_limit_per_coupon
    if offer.usage_limit_type == UsageLimitType.MULTIPLE:
        terms.append(f"Use it up to {limit} times" if limit else "Use it as often as you like")
    if offer.expiry_type == ExpiryType.RELATIVE and offer.expiry_value:
        unit = offer.expiry_unit + ("s" if offer.expiry_value != 1 else "")
        terms.append(f"Valid for {offer.expiry_value} {unit} once revealed")
    if offer.finish_date:
        terms.append(f"Offer ends {local_date(offer, offer.finish_date)}")
    return terms


def refusal_message(offer: Offer, error: ApplicationError) -> str:
    if error.code == "not_started" and offer.start_date:
        start = local_date(offer, offer.start_date, with_time=True)
        return f"This offer starts on {start}. Come back then to reveal your code."
    return REFUSALS.get(error.code, error.message)


def coupon_note(coupon: Coupon) -> str | None:
    """A warning when the revealed code can no longer be used."""
    return COUPON_NOTES.get(coupon.effective_status())
