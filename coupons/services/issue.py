"""Create-or-retrieve of one code (Talon.One's and Uniqodo's issue), and the shopper's reveal and view."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from coupons import events
from coupons.errors import ApplicationError, invalid
from coupons.models import (
    Coupon,
    CouponStatus,
    Member,
    Offer,
)
from coupons.selectors import STAFF, Owner, member_owner, member_profiles_of
from coupons.services.codes import coupon_expiry, coupons_build
from coupons.services.members import member_profile_create
from coupons.services.offers import offer_open_check


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
    owner: Owner = STAFF,
    identifier: str | None = None,
    session_id: str | None = None,
    member_id: int | None = None,
    email: str | None = None,
    attributes: dict | None = None,
    competition_entry_id: str | None = None,
) -> tuple[Coupon, bool]:
    """Create or retrieve the one code of an identifier (or browser session); True when created.

    `member_id`, `email` and `attributes` are read and written in the owner's own member profiles only.
    """
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
            return _coupon_issue_new(offer, owner, request, key), True
    except IntegrityError:
        # Another request issued for the same key at the same moment: theirs is the one.
        existing = Coupon.objects.select_related("offer", "member").filter(offer=offer, **key).first()
        if existing is None:
            raise
        return existing, False


def offer_issue_refusal(*, offer: Offer, now: datetime | None = None) -> ApplicationError | None:
    """Why the offer cannot issue a new code now (inactive, not started, ended, sold out), or None."""
    try:
        offer_open_check(offer, now or timezone.now())
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


def _coupon_issue_new(offer: Offer, owner: Owner, request: IssueRequest, key: dict) -> Coupon:
    offer = Offer.objects.select_related("site").get(pk=offer.pk)
    offer_open_check(offer, timezone.now())
    member = _issue_member(request, member_owner(owner, offer))
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


def _issue_member(request: IssueRequest, owner: Owner) -> Member | None:
    """The member the code goes to, found or made among the owner's own; attributes given with no member
    or e-mail are kept on a member made for this code alone."""
    profiles = member_profiles_of(owner).select_for_update()
    if request.member_id is not None:
        profile = profiles.select_related("member").filter(member_id=request.member_id).first()
        if profile is None:
            raise invalid("Unknown member.", member_id="unknown")
    elif request.email:
        profile = profiles.select_related("member").filter(email__iexact=request.email).order_by("id").first()
        profile = profile or member_profile_create(
            owner=owner, member=Member.objects.create(), email=request.email
        )
    elif request.attributes:
        profile = member_profile_create(owner=owner, member=Member.objects.create())
    else:
        return None
    if request.attributes:
        profile.attributes = {**(profile.attributes or {}), **request.attributes}
        profile.save(update_fields=["attributes"])
    return profile.member


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

    A content gate's e-mail is kept as an attribute of a member made for this session's code alone, so the
    webhooks of the code carry it. Anyone can type any address, so it never finds or claims a member.
    """
    with transaction.atomic():
        attributes = {"email": email} if email else None
        coupon, _ = coupon_issue(offer=offer, session_id=session_id, attributes=attributes)
        return coupon_view(coupon=coupon, session_id=session_id)
