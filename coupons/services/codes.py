"""Codes: drawn unique within the offer's format, built, inserted, deactivated and expired."""

import random
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from coupons import events
from coupons.calendar import moment_after
from coupons.codes import CodeFormat
from coupons.errors import ApplicationError, invalid
from coupons.models import (
    Coupon,
    CouponStatus,
    CouponType,
    ExpiryType,
    Job,
    Member,
    Offer,
)
from coupons.services.amounts import CENT
from coupons.services.members import members_resolve, members_without_live_code


def coupon_expiry(offer: Offer, issued_at: datetime | None) -> datetime | None:
    """When a code expires: the offer's finish date, or relative to its issue."""
    if offer.expiry_type == ExpiryType.RELATIVE and offer.expiry_value and offer.expiry_unit:
        if issued_at is None:
            return None
        # An offer saved before expiry bounds were checked may reach past the calendar: that code never expires.
        lasts = relative_expiry(offer)
        return moment_after(issued_at, lasts) if lasts is not None else None
    return offer.finish_date


def relative_expiry(offer: Offer) -> timedelta | None:
    """How long a code of a relative-expiry offer lasts from its issue; None if longer than any calendar."""
    unit = "hours" if offer.expiry_unit == "hour" else "days"
    try:
        return timedelta(**{unit: offer.expiry_value or 0})
    except OverflowError:
        return None


def mystery_draw(offer: Offer) -> tuple[str | None, Decimal | None]:
    """Draw a mystery offer's discount by weight, with the CSPRNG; other offers draw nothing."""
    if offer.coupon_type != CouponType.MYSTERY:
        return None, None
    choices = offer.mystery_discounts
    weights = [int(c.get("weight", 1)) for c in choices]
    picked = random.SystemRandom().choices(choices, weights=weights, k=1)[0]
    value = picked.get("discount_value")
    return picked["coupon_type"], (Decimal(str(value)).quantize(CENT) if value is not None else None)


def codes_capacity_check(offer: Offer, adding: int) -> CodeFormat:
    """Refuse to make codes past 1 % of the offer's code space."""
    code_format = CodeFormat.for_offer(offer)
    existing = Coupon.objects.filter(offer=offer).count()
    if existing + adding > code_format.capacity:
        raise invalid(
            f"This offer's code format allows {code_format.capacity} codes (1 % of its {code_format.space} "
            f"possible codes) and it has {existing}. Lengthen the code or widen the alphabet.",
            count="exceeds_code_space",
        )
    return code_format


def unique_codes(code_format: CodeFormat, count: int) -> list[str]:
    """`count` distinct codes that no coupon holds yet."""
    codes: set[str] = set()
    for _ in range(50):
        candidates = set(code_format.generate(count - len(codes))) - codes
        taken = (
            set(Coupon.objects.filter(code__in=candidates).values_list("code", flat=True))
            if candidates
            else set()
        )
        codes |= candidates - taken
        if len(codes) >= count:
            return list(codes)[:count]
    raise ApplicationError("invalid_request", "Could not draw enough unique codes; widen the code format.")


def coupons_build(
    *,
    offer: Offer,
    count: int,
    members: list[Member | None] | None = None,
    job: Job | None = None,
    issued: bool = True,
    now: datetime | None = None,
) -> list[Coupon]:
    """Unsaved coupons with fresh codes, one per member given (or `count` without members)."""
    now = now or timezone.now()
    members = members if members is not None else [None] * count
    code_format = codes_capacity_check(offer, len(members))
    codes = unique_codes(code_format, len(members))
    limit = offer.code_limit_per_coupon
    issued_at = now if issued else None
    coupons = []
    for code, member in zip(codes, members, strict=True):
        discount_type, discount_value = mystery_draw(offer)
        coupons.append(
            Coupon(
                offer=offer,
                code=code,
                member=member,
                job=job,
                max_redemptions=limit,
                issued_at=issued_at,
                expires_at=coupon_expiry(offer, issued_at),
                discount_type=discount_type,
                discount_value=discount_value,
                created_at=now,
                updated_at=now,
            )  # fmt: skip
        )
    return coupons


def coupons_insert(coupons: list[Coupon]) -> list[Coupon]:
    """Insert built coupons; a code taken meanwhile by another writer is replaced and the batch retried."""
    for _ in range(5):
        try:
            with transaction.atomic():
                Coupon.objects.bulk_create(coupons, batch_size=1000)
            return coupons
        except IntegrityError:
            offer = coupons[0].offer
            fresh = iter(unique_codes(CodeFormat.for_offer(offer), len(coupons)))
            for coupon in coupons:
                coupon.pk = None
                coupon.code = next(fresh)
    raise ApplicationError("invalid_request", "Could not store unique codes; try again.")


def coupons_create(
    *,
    offer: Offer,
    member_ids: list[int] | None = None,
    multiple: bool = True,
    count: int | None = None,
    job: Job | None = None,
) -> list[Coupon]:
    """Create codes for members (Redcat's Members/Multiple) or `count` codes with no member."""
    if (member_ids is None) == (count is None):
        raise invalid("Give either Members or count.", Members="required", count="required")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise invalid("count is a whole number of at least 1.", count="invalid")
    with transaction.atomic():
        offer = Offer.objects.select_for_update().select_related("site").get(pk=offer.pk)
        if member_ids is not None:
            members = members_resolve(member_ids, offer=offer)
            if not multiple:
                members = members_without_live_code(offer, members)
            coupons = coupons_build(offer=offer, count=len(members), members=members, job=job)
        else:
            coupons = coupons_build(offer=offer, count=count, job=job, issued=not offer.issue_from_pool)
        if not coupons:
            return []
        coupons_insert(coupons)
        coupons_record_created(offer, coupons)
    return coupons


def coupons_record_created(offer: Offer, coupons: list[Coupon]) -> None:
    """coupon.created in chunks, and coupon.issued for each code handed to a member."""
    events.record_coupons_created(offer, coupons)
    for coupon in coupons:
        if coupon.member_id:
            events.record_coupon_event("coupon.issued", coupon)


def coupon_deactivate(*, coupon: Coupon) -> Coupon:
    Coupon.objects.filter(pk=coupon.pk).update(status=CouponStatus.INACTIVE, updated_at=timezone.now())
    coupon.refresh_from_db()
    return coupon


def coupons_expire(*, now: datetime | None = None, batch: int = 10000) -> int:
    """Mark active codes past their expiry as expired, in batches; returns how many."""
    now = now or timezone.now()
    total = 0
    while True:
        ids = list(
            Coupon.objects.filter(status=CouponStatus.ACTIVE, expires_at__lte=now).values_list(
                "id", flat=True
            )[:batch]
        )
        if not ids:
            return total
        total += Coupon.objects.filter(id__in=ids, status=CouponStatus.ACTIVE).update(
            status=CouponStatus.EXPIRED, updated_at=now
        )
