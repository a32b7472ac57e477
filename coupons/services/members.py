"""Members: ids shared by all owners, and each owner's own profile of what it told the platform about them."""

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from coupons.errors import ApplicationError, invalid, not_found
from coupons.models import Coupon, CouponStatus, Member, MemberProfile, Offer
from coupons.selectors import Owner, member_profiles_of
from coupons.sequences import sequence_move_past


def member_create(
    *,
    owner: Owner,
    id: int | None = None,
    member_no: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    attributes: dict | None = None,
) -> MemberProfile:
    """Record a member for this owner, with the integrator's own member number as id when given.

    An id another owner uses too is no conflict: each owner only ever sees its own profile of it.
    """
    if id is not None and (isinstance(id, bool) or not isinstance(id, int) or not 0 < id < 2**62):
        raise invalid("id is a positive whole number.", id="invalid")
    if attributes is not None and not isinstance(attributes, dict):
        raise invalid("attributes is an object.", attributes="invalid")
    mine = member_profiles_of(owner)
    with transaction.atomic():
        if id is not None and mine.filter(member_id=id).exists():
            raise _taken("id", "A member with this id exists.")
        if member_no and mine.filter(member_no=member_no).exists():
            raise _taken("member_no", "A member with this number exists.")
        member = _member_with_id(id) if id is not None else Member.objects.create()
        try:
            with transaction.atomic():
                return member_profile_create(
                    owner=owner, member=member, member_no=member_no or None, external_id=external_id,
                    email=email, attributes=attributes or {},
                )  # fmt: skip
        except IntegrityError:
            raise _taken("id", "A member with this id or number exists.") from None


def _member_with_id(id: int) -> Member:
    member, created = Member.objects.get_or_create(pk=id)
    if created:
        sequence_move_past(Member, id)  # a member made later without an id must not collide with it
    return member


def _taken(field: str, message: str) -> ApplicationError:
    return ApplicationError("invalid_request", message, fields={field: ["taken"]})


def member_profile_create(*, owner: Owner, member: Member, **fields) -> MemberProfile:
    """The owner's profile of a member; staff's go to nobody's."""
    return MemberProfile.objects.create(
        member=member, merchant_id=owner.merchant_id,
        distributor_id=owner.distributor_id if owner.merchant_id is None else None, **fields,
    )  # fmt: skip


def member_get(*, owner: Owner, member_id) -> MemberProfile:
    """The owner's profile of a member; a member the owner never told the platform about is not found."""
    try:
        return member_profiles_of(owner).select_related("member").get(member_id=int(member_id))
    except (MemberProfile.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Member") from None


def members_resolve(member_ids, *, offer: Offer) -> list[Member]:
    """Members of the offer's merchant by id, in the order given; unknown ids are one invalid_request naming them.

    Codes are the merchant's to make, so only members the merchant told the platform about are known here.
    """
    if not isinstance(member_ids, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in member_ids
    ):
        raise invalid("Members is a list of member ids.", Members="invalid")
    wanted = {i for i in member_ids if 0 < i < 2**63}
    profiles = MemberProfile.objects.filter(merchant_id=offer.merchant_id, member_id__in=wanted)
    found = {p.member_id: p.member for p in profiles.select_related("member")}
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
