"""Hot-path look-ups compiled once per process answer each call's own values, as the queryset would."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError

from coupons.models import Coupon, CouponStatus, Redemption
from coupons.prepared import PreparedInsert, PreparedLookup, PreparedRowUpdate
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


def test_a_prepared_insert_writes_the_row_save_would_and_sets_its_key(offer) -> None:
    coupon = factories.CouponFactory(offer=offer)
    insert = PreparedInsert(Redemption)
    written = []
    for order_id in ("A-1", "A-2"):
        redemption = Redemption(
            coupon=coupon, order_id=order_id, order_value=Decimal("12.50"), currency="AUD",
            discount_amount=Decimal("1.25"), merchant_id=offer.merchant_id,
        )  # fmt: skip
        assert insert.save(redemption) is redemption
        assert redemption.pk is not None and not redemption._state.adding
        written.append(redemption)
    assert written[0].pk != written[1].pk
    for redemption in written:
        stored = Redemption.objects.get(pk=redemption.pk)
        assert (stored.order_id, stored.order_value, stored.discount_amount, stored.redeemed_at) == (
            redemption.order_id, redemption.order_value, redemption.discount_amount, redemption.redeemed_at
        )  # fmt: skip


def test_a_prepared_row_update_counts_in_sql_and_sets_the_fields_of_that_row_only(offer) -> None:
    first, second = factories.CouponFactory(offer=offer), factories.CouponFactory(offer=offer)
    update = PreparedRowUpdate(Coupon, increment=("times_redeemed",), assign=("status",))
    Coupon.objects.filter(pk=first.pk).update(max_redemptions=10, times_redeemed=4)  # a count never read here
    assert update.run(first.pk, status=CouponStatus.REDEEMED) == 1
    assert update.run(first.pk, status=CouponStatus.REDEEMED) == 1
    status_before = second.status
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.times_redeemed, first.status) == (6, CouponStatus.REDEEMED)
    assert (second.times_redeemed, second.status) == (0, status_before)
    assert update.run(10**12, status=CouponStatus.REDEEMED) == 0


def test_a_database_that_cannot_return_the_new_key_gets_a_plain_save(offer, monkeypatch) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("only an SQLite before 3.35 lacks INSERT ... RETURNING (the SQLite pass runs this)")
    coupon = factories.CouponFactory(offer=offer)
    monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    redemption = PreparedInsert(Redemption).save(
        Redemption(coupon=coupon, order_id="old-sqlite", order_value=Decimal("5.00"), currency="AUD",
                   merchant_id=offer.merchant_id)
    )  # fmt: skip
    assert redemption.pk is not None
    assert Redemption.objects.get(pk=redemption.pk).order_id == "old-sqlite"
