"""Members: the platform's customers, shared by all owners."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from coupons.errors import ApplicationError, invalid, not_found
from coupons.models import Coupon, CouponStatus, Member, Offer
from coupons.sequences import sequence_move_past


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
        if id is not None:
            sequence_move_past(Member, id)
    return member


def member_get(*, member_id) -> Member:
    try:
        return Member.objects.get(pk=int(member_id))
    except (Member.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Member") from None


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
