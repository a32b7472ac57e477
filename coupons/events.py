"""Webhook events of coupons: the data snapshot every vendor format renders, recorded via the outbox."""

from collections.abc import Iterable, Sequence

from coupons.selectors import member_profiles_for_offer
from webhooks.outbox import event_record

CREATED_CHUNK = 500  # coupon.created carries at most this many codes a message


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def _amount(value) -> str | None:
    return None if value is None else f"{value:.2f}"


def offer_snapshot(offer) -> dict:
    return {
        "id": offer.id,
        "uuid": str(offer.uuid),
        "external_id": offer.external_id,
        "name": offer.name,
        "merchant_id": offer.merchant_id,
        "active_status": offer.active_status,
        "start_date": _iso(offer.start_date),
        "finish_date": _iso(offer.finish_date),
        "coupon_type": offer.coupon_type,
        "discount_value": _amount(offer.discount_value),
        "currency": offer.currency,
        "applicable_on": offer.applicable_on,
        "applicable_filters": [str(f) for f in offer.applicable_filters or []],
        "min_order_amount": _amount(offer.min_order_amount),
        "usage_limit_type": offer.usage_limit_type,
        "expiry_type": offer.expiry_type,
        "expiry_value": offer.expiry_value,
        "expiry_unit": offer.expiry_unit,
    }


def site_snapshot(site) -> dict:
    return {"uuid": str(site.uuid), "name": site.name, "timezone": site.timezone}


def member_snapshot(member, profile) -> dict | None:
    """The member as the offer's merchant knows it (`profile`, None when it told nothing): only its own data."""
    if member is None:
        return None
    return {
        "id": member.id,
        "member_no": profile.member_no if profile else None,
        "external_id": profile.external_id if profile else None,
        "uuid": str(profile.uuid) if profile else None,
        "email": profile.email if profile else None,
        "attributes": (profile.attributes or {}) if profile else {},
    }


def coupon_snapshot(coupon, profile=None) -> dict:
    discount = coupon.discount_value if coupon.discount_value is not None else coupon.offer.discount_value
    return {
        "id": coupon.id,
        "uuid": str(coupon.uuid),
        "code": coupon.code,
        "member_id": coupon.member_id,
        "member_no": profile.member_no if profile else None,
        "identifier": coupon.identifier,
        "session_id": coupon.session_id,
        "competition_entry_id": str(coupon.competition_entry_id) if coupon.competition_entry_id else None,
        "issued_at": _iso(coupon.issued_at),
        "expires_at": _iso(coupon.expires_at),
        "updated_at": _iso(coupon.updated_at),
        # A mystery offer's code carries the discount drawn for it: its type as well as its value.
        "coupon_type": coupon.discount_type or coupon.offer.coupon_type,
        "discount_value": _amount(discount),
    }


def redemption_snapshot(
    *,
    redemption_id,
    order_id,
    order_value,
    currency,
    discount_amount,
    redeemed_at,
    location,
    merchant_id,
    distributor_id,
) -> dict:
    return {
        "id": redemption_id,
        "order_id": order_id,
        "order_value": _amount(order_value),
        "currency": currency,
        "discount_amount": _amount(discount_amount),
        "redeemed_at": _iso(redeemed_at),
        "location": location.name if location else None,
        "merchant_id": merchant_id,
        "distributor_id": distributor_id,
    }


def _base(offer) -> dict:
    return {"site": site_snapshot(offer.site), "offer": offer_snapshot(offer)}


def event_base(offer) -> dict:
    """The site and offer part every coupon event carries (bulk writers build coupon.created on it)."""
    return _base(offer)


def coupon_event_data(coupon, *, profile=None, session_id=None, redemption=None, error=None) -> dict:
    """The snapshot of an event about one coupon, with `profile` the offer's merchant's profile of its member
    (webhook test events build theirs with it too)."""
    return _base(coupon.offer) | {
        "coupon": coupon_snapshot(coupon, profile),
        "member": member_snapshot(coupon.member, profile),
        "session_id": session_id or coupon.session_id,
        "redemption": redemption,
        "error": error,
    }


def record_coupon_event(event_type: str, coupon, *, session_id=None, redemption=None, error=None):
    """Record one event about one coupon (issued, viewed, redeemed, redemption_failed)."""
    profile = member_profiles_for_offer(coupon.offer, [coupon.member_id]).get(coupon.member_id)
    data = coupon_event_data(
        coupon, profile=profile, session_id=session_id, redemption=redemption, error=error
    )
    return event_record(event_type=event_type, offer=coupon.offer, data=data)


def record_coupons_created(offer, coupons: Sequence) -> None:
    """Record coupon.created in messages of at most CREATED_CHUNK codes."""
    profiles = member_profiles_for_offer(offer, {c.member_id for c in coupons})
    base = _base(offer)
    for chunk in _chunks(coupons, CREATED_CHUNK):
        data = base | {"coupons": [coupon_snapshot(c, profiles.get(c.member_id)) for c in chunk]}
        event_record(event_type="coupon.created", offer=offer, data=data)


def _chunks(items: Sequence, size: int) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
