"""Business actions on offers, coupons, members and redemptions; each one transaction."""

import random
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from coupons import events
from coupons.codes import MIN_ENTROPY_BITS, CodeFormat
from coupons.errors import ApplicationError, invalid, not_found
from coupons.models import (
    ApiKey,
    Coupon,
    CouponStatus,
    CouponType,
    ExpiryType,
    Job,
    Location,
    Member,
    Merchant,
    Offer,
    Redemption,
    Site,
)
from coupons.prepared import PreparedInsert, PreparedLookup, PreparedRowUpdate
from coupons.selectors import STAFF, Owner, coupon_get_by_code, merchant_default_site

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")
OFFER_FIELDS = {
    "external_id", "name", "site", "active_status", "start_date", "finish_date", "coupon_type", "discount_value",
    "currency", "applicable_on", "applicable_filters", "min_order_amount", "usage_limit_type",
    "max_redemptions_per_code", "max_redemptions_per_member", "expiry_type", "expiry_value", "expiry_unit",
    "mystery_discounts", "code_length", "code_alphabet", "code_prefix", "code_pattern", "vanity_code",
    "content_gate", "issue_from_pool",
}  # fmt: skip


# --- amounts -----------------------------------------------------------------------------------


def to_amount(value, field_name: str, *, required: bool = True) -> Decimal | None:
    """A non-negative amount with at most two decimals, or an invalid_request naming the field."""
    if value is None or value == "":
        if required:
            raise invalid("This field is required.", **{field_name: "required"})
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise invalid("A decimal amount is expected.", **{field_name: "invalid"})
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid("A decimal amount is expected.", **{field_name: "invalid"}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise invalid("The amount must be between 0 and 999999999999.99.", **{field_name: "out_of_range"})
    if amount != amount.quantize(CENT):
        raise invalid("The amount may have at most two decimals.", **{field_name: "too_precise"})
    return amount.quantize(CENT)


# --- offers ------------------------------------------------------------------------------------


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
    """Change an offer's fields; codes already made keep their code but follow the new use limit."""
    unknown = set(fields) - OFFER_FIELDS
    if unknown:
        raise invalid("Unknown offer fields.", **{name: "unknown" for name in unknown})
    with transaction.atomic():
        offer = Offer.objects.select_for_update().get(pk=offer.pk)
        for name, value in fields.items():
            setattr(offer, name, value)
        offer_check(offer)
        offer.save()
        _coupon_limits_follow_offer(offer)
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
    if code_format.entropy_bits < MIN_ENTROPY_BITS and not offer.vanity_code:
        raise invalid(
            f"Codes of this format carry {code_format.entropy_bits:.0f} bits of entropy; at least "
            f"{MIN_ENTROPY_BITS} are needed so they cannot be guessed. Lengthen the code or the alphabet.",
            code_length="too_guessable",
        )
    offer.currency = (offer.currency or "").upper()


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


def _coupon_limits_follow_offer(offer: Offer) -> None:
    limit = offer.code_limit_per_coupon
    coupons = Coupon.objects.filter(offer=offer).exclude(code=offer.vanity_code or "")
    if limit is None:
        coupons.update(max_redemptions=None)
    else:
        # A lowered limit never goes below the uses already made (the database forbids it).
        coupons.filter(times_redeemed__lte=limit).update(max_redemptions=limit)
        coupons.filter(times_redeemed__gt=limit).update(max_redemptions=F("times_redeemed"))


def _vanity_coupon_create(offer: Offer) -> None:
    if Coupon.objects.filter(code=offer.vanity_code).exclude(offer=offer).exists():
        raise invalid("This vanity code is already used by another offer.", vanity_code="taken")
    now = timezone.now()
    Coupon.objects.create(
        offer=offer,
        code=offer.vanity_code,
        max_redemptions=offer.max_redemptions_per_code,
        issued_at=now,
        expires_at=offer.finish_date,
    )


# --- code creation ----------------------------------------------------------------------------


def coupon_expiry(offer: Offer, issued_at: datetime | None) -> datetime | None:
    """When a code expires: the offer's finish date, or relative to its issue."""
    if offer.expiry_type == ExpiryType.RELATIVE and offer.expiry_value and offer.expiry_unit:
        if issued_at is None:
            return None
        unit = "hours" if offer.expiry_unit == "hour" else "days"
        return issued_at + timedelta(**{unit: offer.expiry_value})
    return offer.finish_date


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


def members_resolve(member_ids) -> list[Member]:
    """Members by id in the order given; unknown ids are one invalid_request naming them all."""
    if not isinstance(member_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in member_ids
    ):
        raise invalid("Members is a list of member ids.", Members="invalid")
    found = Member.objects.in_bulk(set(member_ids))
    unknown = sorted(set(member_ids) - set(found))
    if unknown:
        raise invalid(f"Unknown members: {', '.join(map(str, unknown[:20]))}.", Members="unknown")
    return [found[i] for i in member_ids]


def members_without_live_code(offer: Offer, members: list[Member]) -> list[Member]:
    """Members (each once) who hold no live code of the offer: Redcat's Multiple = false."""
    now = timezone.now()
    holding = set(
        Coupon.objects.filter(offer=offer, member__in=members, status=CouponStatus.ACTIVE)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .values_list("member_id", flat=True)
    )
    unique = {m.id: m for m in members}
    return [m for m in unique.values() if m.id not in holding]


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
            members = members_resolve(member_ids)
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
    members_by_id = {c.member_id: c.member for c in coupons if c.member_id}
    events.record_coupons_created(offer, coupons, members_by_id)
    for coupon in coupons:
        if coupon.member_id:
            events.record_coupon_event("coupon.issued", coupon)


# --- issue (create or retrieve) ---------------------------------------------------------------


@dataclass
class IssueRequest:
    identifier: str | None = None
    session_id: str | None = None
    member_id: int | None = None
    email: str | None = None
    attributes: dict = field(default_factory=dict)
    competition_entry_id: str | None = None


def coupon_issue(
    *,
    offer: Offer,
    identifier: str | None = None,
    session_id: str | None = None,
    member_id: int | None = None,
    email: str | None = None,
    attributes: dict | None = None,
    competition_entry_id: str | None = None,
) -> tuple[Coupon, bool]:
    """Create or retrieve the one code of an identifier (or browser session); True when created."""
    request = IssueRequest(
        identifier=identifier, session_id=session_id, member_id=member_id, email=email,
        attributes=attributes or {}, competition_entry_id=competition_entry_id,
    )  # fmt: skip
    _issue_check(request)
    key = {"identifier": identifier} if identifier is not None else {"session_id": session_id}
    existing = Coupon.objects.select_related("offer", "member").filter(offer=offer, **key).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            return _coupon_issue_new(offer, request, key), True
    except IntegrityError:
        # Another request issued for the same key at the same moment: theirs is the one.
        existing = Coupon.objects.select_related("offer", "member").filter(offer=offer, **key).first()
        if existing is None:
            raise
        return existing, False


def offer_issue_refusal(*, offer: Offer, now: datetime | None = None) -> ApplicationError | None:
    """Why the offer cannot issue a new code now (inactive, not started, ended, sold out), or None."""
    try:
        _offer_open_check(offer, now or timezone.now())
    except ApplicationError as error:
        return error
    pool = Coupon.objects.filter(offer=offer, issued_at__isnull=True, status=CouponStatus.ACTIVE)
    if offer.issue_from_pool and not pool.exists():
        return ApplicationError("sold_out")
    return None


def _issue_check(request: IssueRequest) -> None:
    if request.identifier is None and request.session_id is None:
        raise invalid("An identifier is required.", identifier="required")
    for name, longest in (("identifier", 200), ("session_id", 100), ("email", 254)):
        value = getattr(request, name)
        if value is not None and (
            not isinstance(value, str) or not value.strip() or len(value) > longest or "\x00" in value
        ):
            raise invalid(
                f"{name} must be a non-empty text of at most {longest} characters.", **{name: "invalid"}
            )
    if request.member_id is not None and (
        isinstance(request.member_id, bool) or not isinstance(request.member_id, int)
    ):
        raise invalid("member_id is a whole number.", member_id="invalid")
    if not isinstance(request.attributes, dict):
        raise invalid("attributes is an object.", attributes="invalid")


def _coupon_issue_new(offer: Offer, request: IssueRequest, key: dict) -> Coupon:
    offer = Offer.objects.select_related("site").get(pk=offer.pk)
    _offer_open_check(offer, timezone.now())
    member = _issue_member(request)
    now = timezone.now()
    coupon = _pool_coupon_take(offer) if offer.issue_from_pool else None
    if coupon is None:
        if offer.issue_from_pool:
            raise ApplicationError("sold_out")
        coupon = coupons_build(offer=offer, count=1, now=now)[0]
        for name, value in key.items():
            setattr(coupon, name, value)
        coupon.member = member
        coupon.competition_entry_id = request.competition_entry_id
        coupon.save()
    else:
        Coupon.objects.filter(pk=coupon.pk).update(
            member=member, issued_at=now, expires_at=coupon_expiry(offer, now), updated_at=now,
            competition_entry_id=request.competition_entry_id, **key,
        )  # fmt: skip
        coupon.refresh_from_db()
    coupon.offer = offer
    coupon.member = member
    events.record_coupon_event("coupon.issued", coupon, session_id=request.session_id)
    return coupon


def _pool_coupon_take(offer: Offer) -> Coupon | None:
    """An unissued pre-made code, locked so two issues never hand out the same one."""
    pool = Coupon.objects.filter(offer=offer, issued_at__isnull=True, status=CouponStatus.ACTIVE).order_by(
        "id"
    )
    return pool.select_for_update(skip_locked=True).first()


def _issue_member(request: IssueRequest) -> Member | None:
    if request.member_id is not None:
        member = Member.objects.select_for_update().filter(pk=request.member_id).first()
        if member is None:
            raise invalid("Unknown member.", member_id="unknown")
    elif request.email:
        member = Member.objects.select_for_update().filter(email__iexact=request.email).order_by("id").first()
        member = member or Member.objects.create(email=request.email)
    else:
        return None
    if request.attributes:
        member.attributes = {**(member.attributes or {}), **request.attributes}
        member.save(update_fields=["attributes"])
    return member


# --- validation and redemption ----------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """What the shopper is buying, as far as a discount needs to know."""

    value: Decimal
    currency: str
    products: tuple = ()
    collections: tuple = ()
    shipping_amount: Decimal | None = None


@dataclass(frozen=True)
class Discount:
    amount: Decimal
    free_shipping: bool


def order_parse(*, order_value, currency, products=None, collections=None, shipping_amount=None) -> Order:
    """An Order from loose input, or an invalid_request naming the bad fields."""
    value = to_amount(order_value, "order_value")
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
    ):
        raise invalid("currency is a three-letter ISO 4217 code.", currency="invalid")
    return Order(
        value=value,
        currency=currency.upper(),
        products=_order_items(products, "products"),
        collections=_order_items(collections, "collections"),
        shipping_amount=to_amount(shipping_amount, "shipping_amount", required=False),
    )


def _order_items(items, name: str) -> tuple:
    """Items as (id, amount or None): plain ids, or objects {"id", "amount"}."""
    if items is None:
        return ()
    if not isinstance(items, list) or len(items) > 1000:
        raise invalid(f"{name} is a list of ids or of {{id, amount}} objects.", **{name: "invalid"})
    parsed = []
    for item in items:
        if isinstance(item, str | int) and not isinstance(item, bool):
            parsed.append((str(item), None))
        elif (
            isinstance(item, dict)
            and isinstance(item.get("id"), str | int)
            and not isinstance(item.get("id"), bool)
        ):
            parsed.append((str(item["id"]), to_amount(item.get("amount"), name, required=False)))
        else:
            raise invalid(f"{name} is a list of ids or of {{id, amount}} objects.", **{name: "invalid"})
    return tuple(parsed)


def _offer_open_check(offer: Offer, now: datetime) -> None:
    if offer.active_status != 1:
        raise ApplicationError("offer_inactive")
    if offer.start_date and offer.start_date > now:
        raise ApplicationError("not_started")
    if offer.finish_date and offer.finish_date <= now:
        raise ApplicationError("expired", "This offer has ended.")


def coupon_refusal(coupon: Coupon, order: Order, now: datetime, *, member_id: int | None = None) -> Discount:
    """The discount the code gives this order, or the ApplicationError that refuses it."""
    offer = coupon.offer
    _offer_open_check(offer, now)
    status = coupon.effective_status(now)
    if status == CouponStatus.INACTIVE:
        raise ApplicationError("offer_inactive", "This code is not active.")
    if status == CouponStatus.EXPIRED:
        raise ApplicationError("expired")
    if coupon.max_redemptions is not None and coupon.times_redeemed >= coupon.max_redemptions:
        raise ApplicationError("already_redeemed" if coupon.max_redemptions == 1 else "usage_limit_reached")
    if order.currency != offer.currency:
        raise ApplicationError("currency_mismatch", f"This offer is in {offer.currency}.")
    if offer.min_order_amount is not None and order.value < offer.min_order_amount:
        raise ApplicationError(
            "min_order_not_met", f"The order must reach {offer.min_order_amount} {offer.currency}."
        )
    if member_id is not None and offer.max_redemptions_per_member is not None:
        used = Redemption.objects.filter(
            coupon__offer=offer, member_id=member_id, rolled_back_at__isnull=True
        ).count()
        if used >= offer.max_redemptions_per_member:
            raise ApplicationError("member_limit_reached")
    return discount_for(coupon, order)


def discount_for(coupon: Coupon, order: Order) -> Discount:
    """The discount of each coupon type on the part of the order it applies to."""
    offer = coupon.offer
    coupon_type = coupon.discount_type or offer.coupon_type
    value = coupon.discount_value if coupon.discount_value is not None else offer.discount_value
    eligible = _eligible_amount(offer, order)
    if coupon_type == CouponType.FREE_SHIPPING:
        return Discount(amount=order.shipping_amount or Decimal("0.00"), free_shipping=True)
    if coupon_type == CouponType.PERCENTAGE:
        amount = (eligible * value / 100).quantize(CENT, rounding=ROUND_HALF_UP)
    else:
        amount = min(value, eligible)
    return Discount(amount=amount.quantize(CENT), free_shipping=False)


def _eligible_amount(offer: Offer, order: Order) -> Decimal:
    if offer.applicable_on == "order":
        return order.value
    items = order.products if offer.applicable_on == "product" else order.collections
    wanted = {str(f) for f in offer.applicable_filters}
    matching = [amount for item_id, amount in items if item_id in wanted]
    if not matching:
        raise ApplicationError("not_applicable")
    if any(amount is None for amount in matching):
        return order.value  # ids without prices: the discount applies to the order
    return min(sum(matching, Decimal("0")), order.value)


@dataclass(frozen=True)
class ValidationResult:
    valid: bool
    coupon: Coupon
    discount_amount: Decimal
    free_shipping: bool
    error: ApplicationError | None = None


def coupon_validate(
    *, owner: Owner = STAFF, code: str, order: Order, member_id: int | None = None
) -> ValidationResult:
    """Would this code apply to this order? Writes nothing."""
    coupon = coupon_get_by_code(owner=owner, code=code)
    try:
        discount = coupon_refusal(coupon, order, timezone.now(), member_id=member_id)
    except ApplicationError as error:
        return ValidationResult(False, coupon, Decimal("0.00"), False, error)
    return ValidationResult(True, coupon, discount.amount, discount.free_shipping)


def coupon_redeem(
    *,
    owner: Owner = STAFF,
    code: str,
    order_id: str,
    order: Order,
    location: str | None = None,
    member_id: int | None = None,
) -> tuple[Redemption, bool]:
    """Use a code once for an order; the same (code, order_id) again returns the first use (False)."""
    if not isinstance(order_id, str | int) or isinstance(order_id, bool) or not str(order_id).strip():
        raise invalid("order_id is required.", order_id="required")
    order_id = str(order_id)
    if len(order_id) > 200 or "\x00" in order_id:
        raise invalid("order_id is at most 200 characters.", order_id="invalid")
    refusal = None
    with transaction.atomic():
        # Found and locked in one query: the hot path reads the coupon row once.
        coupon = coupon_get_by_code(owner=owner, code=code, for_update=True)
        result = _redeem_locked(coupon, owner, order_id, order, location, member_id)
        if isinstance(result, ApplicationError):
            refusal = result
    if refusal:
        raise refusal
    return result


# At most one live use per (coupon, order_id) (a unique constraint); compiled once per process.
_LIVE_USE_OF_ORDER = PreparedLookup(
    lambda coupon_id, order_id: Redemption.objects.filter(
        coupon_id=coupon_id, order_id=order_id, rolled_back_at__isnull=True
    ).order_by()[:1],
    numbers=("coupon_id",),
    texts=("order_id",),
)


# A use is counted with F() semantics (times_redeemed + 1 in SQL) under the row lock; both statements run on
# every redemption, so their SQL is built once per process.
_COUNT_USE = PreparedRowUpdate(Coupon, increment=("times_redeemed",), assign=("updated_at", "status"))
_INSERT_REDEMPTION = PreparedInsert(Redemption)


def _redeem_locked(coupon: Coupon, owner: Owner, order_id: str, order: Order, location_name, member_id):
    """Inside the transaction, the code locked: lock the member, check, count, record."""
    previous = _LIVE_USE_OF_ORDER.first(coupon_id=coupon.pk, order_id=order_id)
    if previous:
        return previous, False
    member = _redeem_member(coupon, member_id)
    location = _location_for(coupon.offer, location_name)
    now = timezone.now()
    try:
        discount = coupon_refusal(coupon, order, now, member_id=member.id if member else None)
    except ApplicationError as error:
        _record_redemption_failed(coupon, order_id, order, location, owner, error, now)
        return error
    # The row is locked and was read under the lock (as coupon_refusal's limit check was): whether this
    # use is its last is known here, so the UPDATE needs no CASE.
    if coupon.max_redemptions is not None and coupon.max_redemptions <= coupon.times_redeemed + 1:
        coupon.status = CouponStatus.REDEEMED
    _COUNT_USE.run(coupon.pk, updated_at=now, status=coupon.status)
    redemption = _INSERT_REDEMPTION.save(Redemption(
        coupon=coupon, order_id=order_id, order_value=order.value, currency=order.currency,
        discount_amount=discount.amount, free_shipping=discount.free_shipping, merchant_id=coupon.offer.merchant_id,
        distributor_id=owner.distributor_id, location=location, member=member, redeemed_at=now,
    ))  # fmt: skip
    coupon.times_redeemed += 1
    coupon.updated_at = now
    events.record_coupon_event("coupon.redeemed", coupon, redemption=_redemption_data(redemption, location))
    return redemption, True


def _redeem_member(coupon: Coupon, member_id: int | None) -> Member | None:
    """The member redeeming, locked so a per-member limit holds under concurrency."""
    member_id = member_id if member_id is not None else coupon.member_id
    if member_id is None:
        return None
    if isinstance(member_id, bool) or not isinstance(member_id, int):
        raise invalid("member_id is a whole number.", member_id="invalid")
    member = Member.objects.select_for_update().filter(pk=member_id).first()
    if member is None:
        raise invalid("Unknown member.", member_id="unknown")
    return member


def _location_for(offer: Offer, name) -> Location | None:
    if name in (None, ""):
        return None
    if not isinstance(name, str) or len(name) > 200 or "\x00" in name:
        raise invalid("location is the name of a shop.", location="invalid")
    location, _ = Location.objects.get_or_create(site=offer.site, name=name.strip())
    return location


def _redemption_data(redemption: Redemption, location) -> dict:
    return events.redemption_snapshot(
        redemption_id=redemption.id, order_id=redemption.order_id, order_value=redemption.order_value,
        currency=redemption.currency, discount_amount=redemption.discount_amount, redeemed_at=redemption.redeemed_at,
        location=location, merchant_id=redemption.merchant_id, distributor_id=redemption.distributor_id,
    )  # fmt: skip


def _record_redemption_failed(coupon, order_id, order: Order, location, owner: Owner, error, now) -> None:
    attempted = events.redemption_snapshot(
        redemption_id=None, order_id=order_id, order_value=order.value, currency=order.currency,
        discount_amount=Decimal("0"), redeemed_at=now, location=location, merchant_id=coupon.offer.merchant_id,
        distributor_id=owner.distributor_id,
    )  # fmt: skip
    events.record_coupon_event(
        "coupon.redemption_failed",
        coupon,
        redemption=attempted,
        error={"code": error.code, "message": error.message},
    )


def redemption_rollback(*, redemption: Redemption) -> Redemption:
    """Undo a redemption (order cancelled): the use is given back to the code."""
    with transaction.atomic():
        redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
        if redemption.rolled_back_at:
            raise ApplicationError("already_rolled_back", "This redemption was already rolled back.")
        Coupon.objects.select_for_update().filter(pk=redemption.coupon_id).update(
            times_redeemed=F("times_redeemed") - 1,
            status=Case(
                When(status=CouponStatus.REDEEMED, then=Value(CouponStatus.ACTIVE)), default=F("status")
            ),
            updated_at=timezone.now(),
        )
        redemption.rolled_back_at = timezone.now()
        redemption.save(update_fields=["rolled_back_at"])
    return redemption


def coupon_view(*, coupon: Coupon, session_id: str | None = None) -> Coupon:
    """Record that the shopper saw the code; coupon.viewed is sent on the first view."""
    with transaction.atomic():
        now = timezone.now()
        first_view = Coupon.objects.filter(pk=coupon.pk, viewed_at__isnull=True).update(
            viewed_at=now, updated_at=now
        )
        coupon.refresh_from_db()
        if first_view:
            events.record_coupon_event("coupon.viewed", coupon, session_id=session_id)
    return coupon


def coupon_reveal(*, offer: Offer, session_id: str, email: str | None = None) -> Coupon:
    """Click to reveal: the browser session's one code of the offer, issued on the first click and seen.

    A content gate's e-mail finds or makes the member and is kept as its attribute, so the
    webhooks of the code carry it.
    """
    with transaction.atomic():
        attributes = {"email": email} if email else None
        coupon, _ = coupon_issue(offer=offer, session_id=session_id, email=email, attributes=attributes)
        return coupon_view(coupon=coupon, session_id=session_id)


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


# --- members ---------------------------------------------------------------------------------


def member_create(
    *,
    id: int | None = None,
    member_no: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    attributes: dict | None = None,
) -> Member:
    """Create a member, with the integrator's own member number as id when given."""
    if id is not None and (isinstance(id, bool) or not isinstance(id, int) or not 0 < id < 2**62):
        raise invalid("id is a positive whole number.", id="invalid")
    if attributes is not None and not isinstance(attributes, dict):
        raise invalid("attributes is an object.", attributes="invalid")
    with transaction.atomic():
        if id is not None and Member.objects.filter(pk=id).exists():
            raise ApplicationError(
                "invalid_request", "A member with this id exists.", fields={"id": ["taken"]}
            )
        if member_no and Member.objects.filter(member_no=member_no).exists():
            raise ApplicationError(
                "invalid_request", "A member with this number exists.", fields={"member_no": ["taken"]}
            )
        member = Member(id=id, member_no=member_no or None, external_id=external_id, email=email,
                        attributes=attributes or {})  # fmt: skip
        member.save(force_insert=True)
    return member


def member_get(*, member_id) -> Member:
    try:
        return Member.objects.get(pk=int(member_id))
    except (Member.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Member") from None


def api_key_token() -> str:
    # A recognisable prefix lets secret scanners spot a leaked key; 256 random bits follow.
    return "ck_" + secrets.token_urlsafe(32)


def api_key_create(
    *, scopes: list[str], merchant: Merchant | None = None, distributor=None, name: str = ""
) -> tuple[ApiKey, str]:
    """A new key for a merchant and/or a distributor; the token is returned once and only its hash kept."""
    from coupons.api.auth import KEY_PREFIX_LENGTH, api_key_hash

    if merchant is None and distributor is None:
        raise invalid("An API key belongs to a merchant or a distributor.", merchant="required")
    unknown = sorted(set(scopes) - set(ApiKey.SCOPES))
    if unknown or not scopes:
        raise invalid(f"Scopes are some of {', '.join(ApiKey.SCOPES)}.", scopes="invalid")
    for _ in range(5):
        token = api_key_token()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name, prefix=token[:KEY_PREFIX_LENGTH], hashed_key=api_key_hash(token),
                    scopes=[s for s in ApiKey.SCOPES if s in scopes], merchant=merchant, distributor=distributor,
                )  # fmt: skip
            return key, token
        except IntegrityError:  # the prefix is unique; a clash is astronomically rare but costs nothing
            continue
    raise ApplicationError("invalid_request", "Could not draw a unique key; try again.")
