"""Redcat Polygon Central "Coupon Creation" and "Coupon Redemption" webhooks (seed 000)."""

from datetime import UTC
from typing import Any

from .base import (
    COUPON_CREATED,
    COUPON_REDEEMED,
    EventMessage,
    WebhookFormat,
    iso_micro,
    local_naive,
    site_zone,
)


class Redcat(WebhookFormat):
    name = "redcat"
    label = "Redcat"
    events = frozenset({COUPON_CREATED, COUPON_REDEEMED})

    def payload(self, message: EventMessage) -> dict[str, Any]:
        if message.type == COUPON_CREATED:
            return self._creation(message)
        return self._redemption(message)

    def _creation(self, message: EventMessage) -> dict[str, Any]:
        data, zone = message.data, site_zone(message.data)
        offer = data["offer"]
        return {
            "CreatedCoupons": [
                {
                    "MemberID": coupon["member_id"],
                    "Hash": coupon["code"],
                    "CouponExpiryDate": local_naive(coupon["expires_at"], zone),
                }
                for coupon in data["coupons"]
            ],
            "Coupon": {
                "FinishDate": local_naive(offer["finish_date"], zone),
                "CouponName": offer["name"],
                "ActiveStatus": offer["active_status"],
                "CouponID": offer["id"],
                "StartDate": local_naive(offer["start_date"], zone),
            },
            "MsgCreatedUTC": iso_micro(message.created_at, UTC),
        }

    def _redemption(self, message: EventMessage) -> dict[str, Any]:
        data, zone = message.data, site_zone(message.data)
        offer, coupon, redemption = data["offer"], data["coupon"], data["redemption"]
        return {
            "HashExpiry": local_naive(coupon["expires_at"], zone),
            "MemberID": coupon["member_id"],
            "LastUpdateDate": local_naive(coupon["updated_at"], zone),
            "CouponID": offer["id"],
            "CouponName": offer["name"],
            "MemberNo": coupon["member_no"],
            "MsgCreatedUTC": iso_micro(message.created_at, UTC),
            "Hash": coupon["code"],
            "LastRedemptionDate": iso_micro(redemption["redeemed_at"], zone),
            "ActiveStatus": offer["active_status"],
        }
