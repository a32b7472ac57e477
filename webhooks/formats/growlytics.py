"""Growlytics coupon webhook: a code issued to a customer, with its discount rules (seed 003)."""

from typing import Any

from .base import COUPON_ISSUED, EventMessage, WebhookFormat, decimal_number


class Growlytics(WebhookFormat):
    name = "growlytics"
    label = "Growlytics"
    events = frozenset({COUPON_ISSUED})

    def payload(self, message: EventMessage) -> dict[str, Any]:
        data = message.data
        offer, coupon, member = data["offer"], data["coupon"], data.get("member")
        # A mystery offer's code carries the type drawn for it; Growlytics knows only the drawn one.
        coupon_type = coupon.get("coupon_type") or offer["coupon_type"]
        return {
            "id": coupon["uuid"],
            "customerId": member.get("external_id") if member else None,
            "code": coupon["code"],
            "name": offer["name"],
            "couponType": coupon_type,
            # The coupon's value is its drawn mystery discount or else the offer's.
            "discountValue": (
                None if coupon_type == "freeShipping" else decimal_number(coupon["discount_value"])
            ),
            "applicableOn": offer["applicable_on"],
            # The seed sends null, not an empty list, for an order-wide discount.
            "applicableFilters": (
                None if offer["applicable_on"] == "order" else list(offer["applicable_filters"])
            ),
            "minOrderAmount": decimal_number(offer["min_order_amount"]),
            "usageLimitType": offer["usage_limit_type"],
            "expiryType": offer["expiry_type"],
            "expiryValue": offer["expiry_value"],
            "expiryUnit": offer["expiry_unit"],
        }
