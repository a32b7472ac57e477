"""Business actions on offers, coupons, members and redemptions, each one transaction.

Callers (API views, admin, tasks, commands) use `services.<action>`; each action lives in the module of its
subject, and this package names them all.
"""

from coupons.services.amounts import CENT, MAX_AMOUNT, to_amount
from coupons.services.api_keys import api_key_create, api_key_create_with, api_key_revoke, api_key_token
from coupons.services.codes import (
    codes_capacity_check,
    coupon_deactivate,
    coupon_expiry,
    coupons_build,
    coupons_create,
    coupons_expire,
    coupons_insert,
    coupons_record_created,
    mystery_draw,
    unique_codes,
)
from coupons.services.issue import IssueRequest, coupon_issue, coupon_reveal, coupon_view, offer_issue_refusal
from coupons.services.members import member_create, member_get, members_resolve, members_without_live_code
from coupons.services.offers import (
    OFFER_FIELDS,
    coupon_limits_follow_offer,
    offer_check,
    offer_create,
    offer_open_check,
    offer_update,
)
from coupons.services.redemption import (
    Discount,
    Order,
    ValidationResult,
    coupon_redeem,
    coupon_refusal,
    coupon_validate,
    discount_for,
    order_parse,
    redemption_rollback,
)

__all__ = [
    "to_amount",
    "CENT",
    "MAX_AMOUNT",
    "offer_create",
    "offer_update",
    "coupon_limits_follow_offer",
    "offer_check",
    "offer_open_check",
    "OFFER_FIELDS",
    "coupon_expiry",
    "mystery_draw",
    "codes_capacity_check",
    "unique_codes",
    "coupons_build",
    "coupons_insert",
    "coupons_create",
    "coupons_record_created",
    "coupon_deactivate",
    "coupons_expire",
    "IssueRequest",
    "coupon_issue",
    "offer_issue_refusal",
    "coupon_view",
    "coupon_reveal",
    "Order",
    "Discount",
    "order_parse",
    "coupon_refusal",
    "discount_for",
    "ValidationResult",
    "coupon_validate",
    "coupon_redeem",
    "redemption_rollback",
    "member_create",
    "member_get",
    "members_resolve",
    "members_without_live_code",
    "api_key_token",
    "api_key_create",
    "api_key_create_with",
    "api_key_revoke",
]
