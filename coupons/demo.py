"""Demo data for a first look at the platform; loading it twice changes nothing."""

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from coupons import services
from coupons.api.auth import KEY_PREFIX_LENGTH, api_key_hash
from coupons.models import ApiKey, Coupon, Distributor, Member, MemberProfile, Merchant, Offer, Site
from coupons.roles import ACCOUNT_MANAGER, CAMPAIGN_MANAGER, SUPPORT, roles_ensure

DEMO_ADMIN = ("admin", "admin")
# One staff user per role, to see the admin as each of them sees it.
DEMO_ROLE_USERS = {
    "account.manager": ACCOUNT_MANAGER,
    "campaign.manager": CAMPAIGN_MANAGER,
    "support": SUPPORT,
}
DEMO_ROLE_PASSWORD = "demo-password"  # noqa: S105
DEMO_OFFERS = [
    {"name": "$10 off orders over $50", "coupon_type": "fixedAmount", "discount_value": Decimal("10.00"),
     "min_order_amount": Decimal("50.00"), "external_id": "DEMO-FIXED"},
    {"name": "10% off your next coffee", "coupon_type": "percentage", "discount_value": Decimal("10.00"),
     "external_id": "DEMO-PERCENT", "usage_limit_type": "multiple", "max_redemptions_per_code": 5},
    {"name": "Free delivery", "coupon_type": "freeShipping", "external_id": "DEMO-SHIPPING",
     "expiry_type": "relative", "expiry_value": 15, "expiry_unit": "day", "content_gate": True},
    {"name": "Mystery treat", "coupon_type": "mystery", "external_id": "DEMO-MYSTERY", "mystery_discounts": [
        {"coupon_type": "percentage", "discount_value": "5", "weight": 6},
        {"coupon_type": "percentage", "discount_value": "20", "weight": 3},
        {"coupon_type": "freeShipping", "weight": 1}]},
]  # fmt: skip


def demo_api_token() -> str:
    """A stable demo key derived from SECRET_KEY, so every `make run` can print it again."""
    digest = hmac.new(settings.SECRET_KEY.encode(), b"demo-api-key", hashlib.sha256).hexdigest()
    return f"demo_{digest[:40]}"


@transaction.atomic
def demo_load() -> dict:
    """Create (once) the demo site, merchant, distributor, members, offers, codes, admin and API key."""
    merchant, _ = Merchant.objects.get_or_create(name="Demo Coffee Co")
    distributor, _ = Distributor.objects.get_or_create(name="Demo Publisher")
    site, _ = Site.objects.get_or_create(
        name="My site", merchant=merchant, defaults={"timezone": "Australia/Sydney"}
    )
    for number, member_no in ((1300, "GATA0001300"), (1301, "GATA0001301"), (1302, "GATA0001302")):
        member, _ = Member.objects.get_or_create(id=number)
        MemberProfile.objects.get_or_create(
            member=member, merchant=merchant,
            defaults={"member_no": member_no, "email": f"member{number}@example.com",
                      "external_id": f"cust-{number}", "attributes": {"favourite": "flat white"}},
        )  # fmt: skip
    now = timezone.now()
    for fields in DEMO_OFFERS:
        if Offer.objects.filter(merchant=merchant, external_id=fields["external_id"]).exists():
            continue
        offer = services.offer_create(
            merchant=merchant, site=site, start_date=now - timedelta(days=1), finish_date=now + timedelta(days=90),
            **fields,
        )  # fmt: skip
        offer.distributors.add(distributor)
        services.coupons_create(offer=offer, member_ids=[1300, 1301, 1302], multiple=False)
        services.coupons_create(offer=offer, count=5)
    roles_ensure()
    first = Offer.objects.filter(merchant=merchant, external_id=DEMO_OFFERS[0]["external_id"]).first()
    return {
        "admin": _demo_user(*DEMO_ADMIN, superuser=True),
        "role_users": [
            (*_demo_user(username, DEMO_ROLE_PASSWORD, group=role), role)
            for username, role in DEMO_ROLE_USERS.items()
        ],
        "api_key": _demo_api_key(merchant),
        "coupons": Coupon.objects.count(),
        "reveal_path": f"/c/{first.public_token}/",
    }


def _demo_user(username: str, password: str, *, superuser: bool = False, group: str = "") -> tuple[str, str]:
    """A staff user (in its role's group); the password is shown only while it is still the demo one."""
    user, created = get_user_model().objects.get_or_create(
        username=username,
        defaults={"is_staff": True, "is_superuser": superuser, "email": f"{username}@example.com"},
    )
    if created:
        user.set_password(password)
        user.save()
    if group:
        user.groups.add(Group.objects.get(name=group))
    return username, password if created or user.check_password(password) else "(changed since the demo load)"


def _demo_api_key(merchant: Merchant) -> str:
    token = demo_api_token()
    ApiKey.objects.get_or_create(
        prefix=token[:KEY_PREFIX_LENGTH],
        defaults={
            "name": "Demo key",
            "hashed_key": api_key_hash(token),
            "scopes": ApiKey.SCOPES,
            "merchant": merchant,
        },
    )
    return token
