"""The hub's legacy coupon events: issued, viewed, redemption success and error (seed 001)."""

from typing import Any

from .base import (
    COUPON_ISSUED,
    COUPON_REDEEMED,
    COUPON_REDEMPTION_FAILED,
    COUPON_VIEWED,
    EventMessage,
    WebhookFormat,
    utc_z,
)

HUB_EVENT_NAMES = {
    COUPON_ISSUED: "CouponIssued",
    COUPON_VIEWED: "CouponViewed",
    COUPON_REDEEMED: "CouponRedemptionSuccess",
    COUPON_REDEMPTION_FAILED: "CouponRedemptionError",
}
REDEMPTION_EVENTS = frozenset({COUPON_REDEEMED, COUPON_REDEMPTION_FAILED})

# Member attributes become top-level keys, so none may take the place of a field of the seed
# (even one left out of this message) nor revive the seed's "User attributes" placeholder.
RESERVED_KEYS = frozenset(
    {
        "id",
        "event",
        "timestamp",
        "site_id",
        "site_name",
        "offer_id",
        "coupon_id",
        "offer_name",
        "coupon_code",
        "competition_entry_id",
        "user_session_id",
        "user_profile_id",
        "User attributes",
        "coupon_location",
        "coupon_redemption_error",
    }
)


class HubEvents(WebhookFormat):
    name = "hub_events"
    label = "Hub events"
    events = frozenset(HUB_EVENT_NAMES)

    def payload(self, message: EventMessage) -> dict[str, Any]:
        data = message.data
        site, offer, coupon, member = data["site"], data["offer"], data["coupon"], data.get("member")
        # Fields the seed marks Required are always sent, null when unknown.
        body: dict[str, Any] = {
            "id": message.id,
            "event": HUB_EVENT_NAMES[message.type],
            "timestamp": utc_z(message.created_at),
            "site_id": site["uuid"],
            "site_name": site["name"],
            "offer_id": offer["uuid"],
            "coupon_id": coupon["uuid"],
            "offer_name": offer["name"],
            "user_session_id": data.get("session_id") or coupon.get("session_id"),
        }
        if message.type in REDEMPTION_EVENTS:
            body["coupon_location"] = (data.get("redemption") or {}).get("location")
        if message.type == COUPON_REDEMPTION_FAILED:
            body["coupon_redemption_error"] = (data.get("error") or {}).get("message")
        # Optional fields are left out when unknown.
        optional = {
            "coupon_code": coupon["code"],
            "competition_entry_id": coupon.get("competition_entry_id"),
            "user_profile_id": member["uuid"] if member else None,
        }
        body |= {key: value for key, value in optional.items() if value is not None}
        attributes = (member.get("attributes") or {}) if member else {}
        body |= {key: value for key, value in attributes.items() if key not in RESERVED_KEYS}
        return body
