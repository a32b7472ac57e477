"""The move of members' data into per-owner profiles keeps everything each merchant knew, and nothing more."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("coupons", "0006_coupon_code_unique_constraint")]
AFTER = [("coupons", "0007_member_profiles")]


def migrated(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_each_merchant_whose_offers_hold_a_member_gets_a_copy_and_no_other_merchant_does():
    apps = migrated(BEFORE)
    try:
        Merchant, Site, Offer = (apps.get_model("coupons", n) for n in ("Merchant", "Site", "Offer"))
        Member, Coupon, Redemption = (
            apps.get_model("coupons", n) for n in ("Member", "Coupon", "Redemption")
        )
        a, b, c = (Merchant.objects.create(name=n) for n in "ABC")
        offers = {}
        for merchant in (a, b):
            site = Site.objects.create(name="s", merchant=merchant)
            offers[merchant.name] = Offer.objects.create(
                name="o", merchant=merchant, site=site, coupon_type="freeShipping"
            )
        shared = Member.objects.create(
            id=1300, member_no="GATA1300", email="jo@example.com", attributes={"t": 1}
        )
        only_b = Member.objects.create(id=1301, member_no="GATA1301", external_id="cust-1301")
        orphan = Member.objects.create(id=1302, email="nobody@example.com")
        Coupon.objects.create(offer=offers["A"], code="A1", member=shared)
        coupon = Coupon.objects.create(offer=offers["B"], code="B1", times_redeemed=1)
        Redemption.objects.create(
            coupon=coupon, order_id="1", order_value=1, currency="AUD", merchant=b, member=shared
        )
        Coupon.objects.create(offer=offers["B"], code="B2", member=only_b)
        uuid_of_shared = shared.uuid

        apps = migrated(AFTER)
        Profile = apps.get_model("coupons", "MemberProfile")
        owners = {(p.member_id, p.merchant_id) for p in Profile.objects.all()}
        assert owners == {(1300, a.id), (1300, b.id), (1301, b.id), (1302, None)}
        first = Profile.objects.get(member_id=1300, merchant_id=a.id)
        second = Profile.objects.get(member_id=1300, merchant_id=b.id)
        assert first.uuid == uuid_of_shared and second.uuid != uuid_of_shared
        for profile in (first, second):
            assert (profile.member_no, profile.email, profile.attributes) == (
                "GATA1300",
                "jo@example.com",
                {"t": 1},
            )
        assert Profile.objects.get(member_id=1301).external_id == "cust-1301"
        assert not Profile.objects.filter(merchant_id=c.id).exists()
        assert Profile.objects.get(member_id=orphan.id).email == "nobody@example.com"
    finally:
        call_command("migrate", verbosity=0)
