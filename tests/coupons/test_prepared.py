"""Hot-path look-ups compiled once per process answer each call's own values, as the queryset would."""

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from coupons.models import Coupon
from coupons.prepared import PreparedLookup
from coupons.selectors import Owner, coupon_get_by_code
from tests import factories

pytestmark = pytest.mark.django_db

BY_CODE = PreparedLookup(
    lambda code: Coupon.objects.select_related("offer", "offer__site").filter(code=code).order_by()[:1],
    texts=("code",),
)


def test_each_call_runs_with_its_own_value_and_loads_the_related_rows(offer) -> None:
    first, second = factories.CouponFactory(offer=offer), factories.CouponFactory(offer=offer)
    for coupon in (first, second, first):
        found = BY_CODE.first(code=coupon.code)
        assert found == coupon and found.code == coupon.code
        assert Coupon.offer.is_cached(found) and found.offer == offer and found.offer.site == offer.site
    assert BY_CODE.first(code="no-such-code") is None


def test_the_locking_look_up_still_needs_a_transaction(offer) -> None:
    coupon = factories.CouponFactory(offer=offer)
    with transaction.atomic():
        assert coupon_get_by_code(owner=offer_owner(offer), code=coupon.code, for_update=True) == coupon
    if transaction.get_autocommit():
        with pytest.raises(TransactionManagementError):
            coupon_get_by_code(owner=offer_owner(offer), code=coupon.code, for_update=True)


def offer_owner(offer) -> Owner:
    return Owner(merchant_id=offer.merchant_id)
