"""Reads that span relations: what an owner may see, code look-ups, offer statistics."""

from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.db.models.query import get_related_populators
from django.db.transaction import TransactionManagementError

from coupons.errors import not_found
from coupons.models import Coupon, CouponStatus, Merchant, Offer, Redemption


@dataclass(frozen=True)
class Owner:
    """Who is acting: a merchant, a distributor, both, or neither (staff in the admin sees everything)."""

    merchant_id: int | None = None
    distributor_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.merchant_id is None and self.distributor_id is None


STAFF = Owner()


def offers_visible_to(owner: Owner) -> QuerySet[Offer]:
    """Offers an owner may touch: a merchant's own, or those a distributor is authorised for."""
    offers = Offer.objects.all()
    if owner.merchant_id is not None:
        offers = offers.filter(merchant_id=owner.merchant_id)
    if owner.distributor_id is not None:
        offers = offers.filter(distributors__id=owner.distributor_id)
    return offers


def offer_get(*, owner: Owner, offer_id) -> Offer:
    try:
        return offers_visible_to(owner).select_related("site", "merchant").get(pk=int(offer_id))
    except (Offer.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Offer") from None


def coupon_get_by_code(*, owner: Owner, code: str, for_update: bool = False) -> Coupon:
    """The coupon of a code within the owner's offers; anything else is not found.

    `for_update` locks the coupon's row (not its offer's) in the same query, inside the caller's transaction.
    """
    coupon = (
        _coupon_by_code(code, for_update)
        if isinstance(code, str) and 0 < len(code) <= 64 and "\x00" not in code  # PostgreSQL refuses NUL
        else None
    )
    if coupon is None or not _offer_visible(owner, coupon.offer):
        raise not_found("Code")
    return coupon


# The code look-up runs on every redemption, and compiling its four-table SELECT costs more than the rest
# of the request's queries together. Its SQL depends only on the database and on `for_update`, so each
# process compiles it once and then runs it with each code, turning rows into objects as QuerySet does.
_CODE_SENTINEL = "\x00code\x00"
_code_lookups: dict[tuple[str, str, bool], tuple] = {}


def _coupon_by_code(code: str, for_update: bool) -> Coupon | None:
    connection = connections[DEFAULT_DB_ALIAS]
    if for_update and connection.get_autocommit():
        raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
    key = (connection.alias, connection.vendor, for_update)
    compiled = _code_lookups.get(key)
    if compiled is None:
        compiled = _code_lookups[key] = _code_lookup_compile(connection, for_update)
    sql, params, code_index, compiler, init_list, start, end, populators = compiled
    params = list(params)
    params[code_index] = code
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    row = next(iter(compiler.results_iter([[row]])))
    coupon = Coupon.from_db(connection.alias, init_list, row[start:end])
    for populator in populators:
        populator.populate(row, coupon)
    return coupon


def _code_lookup_compile(connection, for_update: bool) -> tuple:
    coupons = Coupon.objects.using(connection.alias).select_related("offer", "offer__site", "member")
    if for_update:
        coupons = coupons.select_for_update(of=("self",))
    compiler = coupons.filter(code=_CODE_SENTINEL).order_by()[:1].query.get_compiler(connection=connection)
    sql, params = compiler.as_sql()
    (code_index,) = [i for i, value in enumerate(params) if value == _CODE_SENTINEL]
    klass_info, select = compiler.klass_info, compiler.select
    fields = klass_info["select_fields"]
    start, end = fields[0], fields[-1] + 1
    init_list = [column[0].target.attname for column in select[start:end]]
    populators = get_related_populators(klass_info, select, connection.alias)
    return sql, tuple(params), code_index, compiler, init_list, start, end, populators


def _offer_visible(owner: Owner, offer: Offer) -> bool:
    if owner.merchant_id is not None and offer.merchant_id != owner.merchant_id:
        return False
    if owner.distributor_id is not None:
        return offer.distributors.filter(id=owner.distributor_id).exists()
    return True


def offer_get_public(*, token: str) -> Offer | None:
    """The offer behind a public reveal link, or None."""
    return Offer.objects.select_related("site").filter(public_token=token).first()


def coupon_of_session(*, offer: Offer, session_id: str | None) -> Coupon | None:
    """The code a browser session revealed for this offer, if any."""
    if not session_id:
        return None
    return Coupon.objects.filter(offer=offer, session_id=session_id).first()


def redemptions_visible_to(owner: Owner) -> QuerySet[Redemption]:
    return Redemption.objects.filter(coupon__offer__in=offers_visible_to(owner))


def merchant_default_site(merchant: Merchant):
    return merchant.sites.order_by("id").first()


def offer_stats(offer: Offer) -> dict:
    """Funnel, redemption rate, discount given and redemptions per day, all in aggregate queries."""
    counts = Coupon.objects.filter(offer=offer).aggregate(
        total=Count("id"),
        issued=Count("id", filter=Q(issued_at__isnull=False)),
        viewed=Count("id", filter=Q(viewed_at__isnull=False)),
        redeemed=Count("id", filter=Q(times_redeemed__gt=0)),
        expired=Count("id", filter=Q(status=CouponStatus.EXPIRED)),
    )
    live = Redemption.objects.filter(coupon__offer=offer, rolled_back_at__isnull=True)
    totals = live.aggregate(
        redemptions=Count("id"), discount=Sum("discount_amount"), revenue=Sum("order_value")
    )
    per_day = (
        live.annotate(day=TruncDate("redeemed_at"))
        .values("day")
        .annotate(count=Count("id"), discount=Sum("discount_amount"))
        .order_by("day")
    )
    issued = counts["issued"]
    return {
        "codes": counts["total"],
        "issued": issued,
        "viewed": counts["viewed"],
        "redeemed": counts["redeemed"],
        "expired": counts["expired"],
        "redemptions": totals["redemptions"],
        "redemption_rate": round(counts["redeemed"] / issued, 4) if issued else 0.0,
        "discount_given": totals["discount"] or 0,
        "order_value": totals["revenue"] or 0,
        "redemptions_per_day": [
            {"date": row["day"].isoformat(), "count": row["count"], "discount": row["discount"]}
            for row in per_day
        ],
    }
