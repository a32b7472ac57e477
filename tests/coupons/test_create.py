"""Creating codes: Redcat's Members and Multiple, counts, expiry and events."""

from datetime import timedelta

import pytest
from django.utils import timezone

from coupons import services
from coupons.errors import ApplicationError
from coupons.models import Coupon
from tests.factories import MemberFactory
from webhooks.models import Event


def test_each_listed_member_gets_a_code(offer):
    members = MemberFactory.create_batch(3, merchant=offer.merchant)
    coupons = services.coupons_create(offer=offer, member_ids=[m.id for m in members])
    assert sorted(c.member_id for c in coupons) == sorted(m.id for m in members)
    assert all(c.issued_at and c.max_redemptions == 1 for c in coupons)


def test_multiple_false_gives_a_member_with_a_live_code_no_second_one(offer, member):
    services.coupons_create(offer=offer, member_ids=[member.id])
    again = services.coupons_create(offer=offer, member_ids=[member.id, member.id], multiple=False)
    assert again == [] and Coupon.objects.filter(member=member).count() == 1


def test_multiple_false_still_gives_a_member_whose_code_expired_a_new_one(offer, member):
    old = services.coupons_create(offer=offer, member_ids=[member.id])[0]
    Coupon.objects.filter(pk=old.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert len(services.coupons_create(offer=offer, member_ids=[member.id], multiple=False)) == 1


def test_multiple_true_gives_a_second_code(offer, member):
    services.coupons_create(offer=offer, member_ids=[member.id])
    services.coupons_create(offer=offer, member_ids=[member.id], multiple=True)
    assert Coupon.objects.filter(member=member).count() == 2


def test_unknown_members_are_refused_all_together_and_nothing_is_created(offer, member):
    with pytest.raises(ApplicationError) as refused:
        services.coupons_create(offer=offer, member_ids=[member.id, 999_998, 999_999])
    assert refused.value.fields == {"Members": ["unknown"]} and "999998" in refused.value.message
    assert not Coupon.objects.exists() and not Event.objects.exists()


@pytest.mark.parametrize("count", [0, -3, "5", 2.5, True])
def test_a_count_that_is_not_a_positive_whole_number_is_refused(offer, count):
    with pytest.raises(ApplicationError):
        services.coupons_create(offer=offer, count=count)
    assert not Coupon.objects.exists()


def test_created_codes_are_announced_in_messages_of_at_most_500(offer):
    services.coupons_create(offer=offer, count=1200)
    chunks = [len(e.data["coupons"]) for e in Event.objects.filter(type="coupon.created").order_by("id")]
    assert chunks == [500, 500, 200]


def test_codes_for_members_are_also_announced_as_issued(offer):
    members = MemberFactory.create_batch(2, merchant=offer.merchant)
    services.coupons_create(offer=offer, member_ids=[m.id for m in members])
    assert Event.objects.filter(type="coupon.issued").count() == 2


def test_relative_expiry_counts_from_the_issue(offer):
    offer.expiry_type, offer.expiry_value, offer.expiry_unit = "relative", 48, "hour"
    offer.save()
    coupon = services.coupons_create(offer=offer, count=1)[0]
    assert coupon.expires_at - coupon.issued_at == timedelta(hours=48)


def test_date_expiry_is_the_offers_finish_date(offer):
    offer.expiry_type = "date"
    offer.save()
    assert services.coupons_create(offer=offer, count=1)[0].expires_at == offer.finish_date


def test_pool_codes_wait_unissued_until_handed_out(offer):
    offer.issue_from_pool = True
    offer.save()
    coupon = services.coupons_create(offer=offer, count=1)[0]
    assert coupon.issued_at is None


def test_mystery_codes_draw_their_discount_within_the_weights(merchant, site):
    offer = services.offer_create(
        merchant=merchant, name="Mystery", coupon_type="mystery",
        mystery_discounts=[{"coupon_type": "percentage", "discount_value": "5", "weight": 9},
                           {"coupon_type": "fixedAmount", "discount_value": "50", "weight": 1}],
    )  # fmt: skip
    coupons = services.coupons_create(offer=offer, count=2000)
    draws = [(c.discount_type, str(c.discount_value)) for c in coupons]
    assert set(draws) == {("percentage", "5.00"), ("fixedAmount", "50.00")}
    share = draws.count(("fixedAmount", "50.00")) / len(draws)
    assert 0.06 < share < 0.14  # 10 % expected; bounds are > 4 standard deviations wide
