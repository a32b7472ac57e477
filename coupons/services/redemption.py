"""Orders, validation, redemption and rollback: the point-of-sale hot path."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone

from config import metrics
from coupons import events
from coupons.errors import ApplicationError, invalid
from coupons.models import (
    Coupon,
    CouponStatus,
    CouponType,
    Location,
    Member,
    Offer,
    Redemption,
)
from coupons.prepared import PreparedInsert, PreparedLookup, PreparedRowUpdate
from coupons.selectors import STAFF, Owner, coupon_get_by_code, member_owner, member_profiles_of
from coupons.services.amounts import CENT, to_amount
from coupons.services.offers import offer_open_check


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


def coupon_refusal(coupon: Coupon, order: Order, now: datetime, *, member_id: int | None = None) -> Discount:
    """The discount the code gives this order, or the ApplicationError that refuses it."""
    offer = coupon.offer
    offer_open_check(offer, now)
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
    if member_id is not None:
        _member_named(owner, coupon, member_id)
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
        metrics.refusal_count(refusal.code)
        raise refusal
    if result[1]:
        metrics.redemption_count()
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
    member = _redeem_member(coupon, member_id, owner)
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


def _redeem_member(coupon: Coupon, member_id: int | None, owner: Owner) -> Member | None:
    """The member redeeming, locked so a per-member limit holds under concurrency.

    A member named in the request must be one the key's owner told the platform about.
    """
    if member_id is not None:
        return _member_named(owner, coupon, member_id, lock=True)
    if coupon.member_id is None:
        return None
    return Member.objects.select_for_update().filter(pk=coupon.member_id).first()


def _member_named(owner: Owner, coupon: Coupon, member_id, *, lock: bool = False) -> Member:
    """A member named in a request: one the key's owner told the platform about, or unknown."""
    if isinstance(member_id, bool) or not isinstance(member_id, int):
        raise invalid("member_id is a whole number.", member_id="invalid")
    profiles = member_profiles_of(member_owner(owner, coupon.offer))
    members = Member.objects.filter(Exists(profiles.filter(member=OuterRef("pk"))))
    member = (members.select_for_update() if lock else members).filter(pk=member_id).first()
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
