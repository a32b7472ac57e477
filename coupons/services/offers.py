"""Offers: create, update and the checks that keep their codes, limits and mystery discounts consistent."""

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from coupons.calendar import EARLIEST, LATEST, RELATIVE_EXPIRY_MAX, in_calendar
from coupons.codes import CODE_MAX_LENGTH, MIN_ENTROPY_BITS, CodeFormat
from coupons.errors import ApplicationError, invalid
from coupons.models import (
    Coupon,
    CouponType,
    ExpiryType,
    Merchant,
    Offer,
    Site,
)
from coupons.selectors import merchant_default_site
from coupons.services.amounts import to_amount
from coupons.services.codes import relative_expiry

OFFER_FIELDS = {
    "external_id", "name", "site", "active_status", "start_date", "finish_date", "coupon_type", "discount_value",
    "currency", "applicable_on", "applicable_filters", "min_order_amount", "usage_limit_type",
    "max_redemptions_per_code", "max_redemptions_per_member", "expiry_type", "expiry_value", "expiry_unit",
    "mystery_discounts", "code_length", "code_alphabet", "code_prefix", "code_pattern", "vanity_code",
    "content_gate", "issue_from_pool",
}  # fmt: skip


def offer_create(*, merchant: Merchant, site: Site | None = None, **fields) -> Offer:
    """Create an offer; site defaults to the merchant's first site (made if it has none)."""
    unknown = set(fields) - OFFER_FIELDS
    if unknown:
        raise invalid("Unknown offer fields.", **{name: "unknown" for name in unknown})
    with transaction.atomic():
        site = (
            site
            or merchant_default_site(merchant)
            or Site.objects.create(name=merchant.name, merchant=merchant)
        )
        offer = Offer(merchant=merchant, site=site, **fields)
        offer_check(offer)
        offer.save()
        if offer.vanity_code:
            _vanity_coupon_create(offer)
    return offer


def offer_update(*, offer: Offer, **fields) -> Offer:
    """Change an offer's fields; codes already made keep their code but follow a new use limit.

    No code is touched in here: an offer may hold millions. Only a change of the use limit reaches them,
    through a job (Job.Kind.LIMITS) that rewrites them range by range, each range its own short transaction.
    """
    from coupons import jobs  # jobs call the services: imported when an offer changes, not before

    unknown = set(fields) - OFFER_FIELDS
    if unknown:
        raise invalid("Unknown offer fields.", **{name: "unknown" for name in unknown})
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=offer.pk)
        limit_before = offer.code_limit_per_coupon
        for name, value in fields.items():
            setattr(offer, name, value)
        offer_check(offer)
        offer.save()
        if offer.code_limit_per_coupon != limit_before:
            jobs.job_limits_start(offer=offer)
        if offer.vanity_code and not offer.coupons.filter(code=offer.vanity_code).exists():
            _vanity_coupon_create(offer)
    return offer


def offer_check(offer: Offer) -> None:
    """Rules across fields that a single field validator cannot see."""
    from django.core.exceptions import ValidationError

    try:
        offer.full_clean(exclude=["merchant", "site"], validate_unique=False, validate_constraints=False)
    except ValidationError as error:
        raise invalid(
            "The offer is not valid.", **{k: "; ".join(v) for k, v in error.message_dict.items()}
        ) from None
    if offer.coupon_type in (CouponType.FIXED_AMOUNT, CouponType.PERCENTAGE) and offer.discount_value is None:
        raise invalid("A discount value is required for this coupon type.", discount_value="required")
    if offer.coupon_type == CouponType.PERCENTAGE and offer.discount_value > 100:
        raise invalid("A percentage is between 0 and 100.", discount_value="out_of_range")
    if offer.coupon_type == CouponType.MYSTERY:
        _mystery_check(offer.mystery_discounts)
    if offer.start_date and offer.finish_date and offer.finish_date <= offer.start_date:
        raise invalid("The finish date must be after the start date.", finish_date="before_start")
    if offer.expiry_type == ExpiryType.RELATIVE and not (offer.expiry_value and offer.expiry_unit):
        raise invalid("Relative expiry needs a value and a unit.", expiry_value="required")
    if (
        offer.expiry_type == ExpiryType.RELATIVE
        and (relative_expiry(offer) or timedelta.max) > RELATIVE_EXPIRY_MAX
    ):
        raise invalid("A relative expiry is at most 100 years.", expiry_value="out_of_range")
    for name in ("start_date", "finish_date"):
        moment = getattr(offer, name)
        if moment is not None and not in_calendar(moment):
            raise invalid(f"Dates are between {EARLIEST.year} and {LATEST.year}.", **{name: "out_of_range"})
    if offer.expiry_type == ExpiryType.DATE and not offer.finish_date:
        raise invalid("Expiry on a date needs the offer's finish date.", finish_date="required")
    if not isinstance(offer.applicable_filters, list) or not all(
        isinstance(f, str | int) for f in offer.applicable_filters
    ):
        raise invalid(
            "Applicable filters are a list of product or collection ids.", applicable_filters="invalid"
        )
    if offer.applicable_on != "order" and not offer.applicable_filters:
        raise invalid("Name the products or collections the offer applies to.", applicable_filters="required")
    code_format = CodeFormat.for_offer(offer)
    if code_format.code_length > CODE_MAX_LENGTH:
        raise invalid(
            f"Codes of this format have {code_format.code_length} characters (prefix included); "
            f"at most {CODE_MAX_LENGTH} fit.",
            code_length="too_long",
        )
    if code_format.entropy_bits < MIN_ENTROPY_BITS and not offer.vanity_code:
        raise invalid(
            f"Codes of this format carry {code_format.entropy_bits:.0f} bits of entropy; at least "
            f"{MIN_ENTROPY_BITS} are needed so they cannot be guessed. Lengthen the code or the alphabet.",
            code_length="too_guessable",
        )
    offer.currency = (offer.currency or "").upper()
    _vanity_code_check(offer)


def _vanity_code_check(offer: Offer) -> None:
    """A vanity code no other offer holds. Whoever holds it, the refusal is the same; one another merchant's
    offer holds counts against the unknown-code limit (`others_codes`), as a guessed code would."""
    if not offer.vanity_code:
        return
    holders = set(
        Coupon.objects.filter(code=offer.vanity_code)
        .exclude(offer_id=offer.pk)
        .values_list("offer__merchant_id", flat=True)
    ) | set(
        Offer.objects.filter(vanity_code=offer.vanity_code)
        .exclude(pk=offer.pk)
        .values_list("merchant_id", flat=True)
    )
    if holders:
        error = invalid("This vanity code cannot be used; choose another.", vanity_code="unavailable")
        error.others_codes = int(bool(holders - {offer.merchant_id}))
        raise error


def _mystery_check(choices) -> None:
    if not isinstance(choices, list) or not choices:
        raise invalid("A mystery offer lists its possible discounts.", mystery_discounts="required")
    for choice in choices:
        if not isinstance(choice, dict) or choice.get("coupon_type") not in (
            CouponType.FIXED_AMOUNT, CouponType.PERCENTAGE, CouponType.FREE_SHIPPING,
        ):  # fmt: skip
            raise invalid("Each mystery discount names a coupon type.", mystery_discounts="invalid")
        weight = choice.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight <= 0:
            raise invalid("Each mystery weight is a positive whole number.", mystery_discounts="invalid")
        if choice["coupon_type"] != CouponType.FREE_SHIPPING:
            value = to_amount(choice.get("discount_value"), "mystery_discounts")
            if choice["coupon_type"] == CouponType.PERCENTAGE and value > 100:
                raise invalid("A percentage is between 0 and 100.", mystery_discounts="out_of_range")


def coupon_limits_follow_offer(*, offer: Offer, first_id: int, last_id: int | None) -> None:
    """Give the offer's codes with ids in [first_id, last_id) (no end: None) the offer's use limit now."""
    limit = offer.code_limit_per_coupon
    coupons = Coupon.objects.filter(offer=offer, id__gte=first_id).exclude(code=offer.vanity_code or "")
    if last_id is not None:
        coupons = coupons.filter(id__lt=last_id)
    if limit is None:
        coupons.update(max_redemptions=None)
    else:
        # A lowered limit never goes below the uses already made (the database forbids it).
        coupons.filter(times_redeemed__lte=limit).update(max_redemptions=limit)
        coupons.filter(times_redeemed__gt=limit).update(max_redemptions=F("times_redeemed"))


def _vanity_coupon_create(offer: Offer) -> None:
    now = timezone.now()
    Coupon.objects.create(
        offer=offer,
        code=offer.vanity_code,
        max_redemptions=offer.max_redemptions_per_code,
        issued_at=now,
        expires_at=offer.finish_date,
    )


def offer_open_check(offer: Offer, now: datetime) -> None:
    """Refuse codes of an offer that is inactive, not started or ended."""
    if offer.active_status != 1:
        raise ApplicationError("offer_inactive")
    if offer.start_date and offer.start_date > now:
        raise ApplicationError("not_started")
    if offer.finish_date and offer.finish_date <= now:
        raise ApplicationError("expired", "This offer has ended.")
