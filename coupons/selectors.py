"""Reads that span relations: what an owner may see, code look-ups, offer statistics."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from coupons.errors import ApplicationError, not_found
from coupons.models import ApiKey, Coupon, CouponStatus, MemberProfile, Merchant, Offer, Redemption
from coupons.prepared import PreparedLookup


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


def offer_get_to_change(*, owner: Owner, offer_id) -> Offer:
    """An offer the owner may change or make codes for: only its merchant may; a distributor only uses it."""
    offer = offer_get(owner=owner, offer_id=offer_id)
    if owner.merchant_id is None and not owner.is_staff:
        raise ApplicationError("forbidden", "Only the offer's merchant may change it or create its codes.")
    return offer


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


# The code look-up runs on every redemption; compiling its four-table SELECT once per process saves the
# web worker more CPU than any other part of the request.
def _coupons_by_code(code: str, for_update: bool) -> QuerySet[Coupon]:
    coupons = Coupon.objects.select_related("offer", "offer__site", "member")
    if for_update:
        coupons = coupons.select_for_update(of=("self",))
    return coupons.filter(code=code).order_by()[:1]  # codes are unique


_CODE_LOOKUPS = {
    for_update: PreparedLookup(
        lambda code, for_update=for_update: _coupons_by_code(code, for_update), texts=("code",)
    )
    for for_update in (False, True)
}


def _coupon_by_code(code: str, for_update: bool) -> Coupon | None:
    return _CODE_LOOKUPS[for_update].first(code=code)


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
    """A merchant's key sees every redemption of its offers; a distributor's only those it made itself."""
    redemptions = Redemption.objects.filter(coupon__offer__in=offers_visible_to(owner))
    if owner.merchant_id is None and owner.distributor_id is not None:
        redemptions = redemptions.filter(distributor_id=owner.distributor_id)
    return redemptions


def redemptions_find(
    *,
    owner: Owner,
    order_id: str | None = None,
    code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[Redemption]:
    """The owner's redemptions of an order, of a code and/or redeemed in [since, until), for reconciliation."""
    redemptions = redemptions_visible_to(owner)
    if order_id is not None:
        redemptions = redemptions.filter(order_id=order_id)
    if code is not None:
        redemptions = redemptions.filter(coupon__code=code)
    if since is not None:
        redemptions = redemptions.filter(redeemed_at__gte=since)
    if until is not None:
        redemptions = redemptions.filter(redeemed_at__lt=until)
    return redemptions


def api_keys_of(owner: Owner) -> QuerySet[ApiKey]:
    """The keys of exactly this owner: a merchant's keys are not its distributors' nor theirs its."""
    return ApiKey.objects.filter(merchant_id=owner.merchant_id, distributor_id=owner.distributor_id)


def api_key_get(*, owner: Owner, key_id) -> ApiKey:
    key = api_keys_of(owner).filter(pk=key_id).first()
    if key is None:
        raise not_found("API key")
    return key


def member_profiles_of(owner: Owner) -> QuerySet[MemberProfile]:
    """What this owner told the platform about members: its merchant's profiles, or else its distributor's.

    Staff see every profile. No key ever reads, or learns of, another owner's.
    """
    if owner.merchant_id is not None:
        return MemberProfile.objects.filter(merchant_id=owner.merchant_id)
    if owner.distributor_id is not None:
        return MemberProfile.objects.filter(distributor_id=owner.distributor_id)
    return MemberProfile.objects.all()


def member_owner(owner: Owner, offer: Offer) -> Owner:
    """Whose member profiles an action on the offer reads and writes: the key's, or for staff and shoppers
    (the public pages) the offer's merchant's."""
    return Owner(merchant_id=offer.merchant_id) if owner.is_staff else owner


def member_profiles_for_offer(offer: Offer, member_ids) -> dict[int, MemberProfile]:
    """What the offer's merchant knows of these members, by member id: all a webhook of its offer may carry."""
    wanted = {i for i in member_ids if i is not None}
    if not wanted:
        return {}
    profiles = MemberProfile.objects.filter(merchant_id=offer.merchant_id, member_id__in=wanted)
    return {p.member_id: p for p in profiles}


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
