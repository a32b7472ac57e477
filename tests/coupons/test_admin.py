"""The admin as an account or campaign manager uses it: lists, search, the offer form and actions."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django_q.conf import Conf

from coupons import services
from coupons.models import Coupon, Offer, Redemption
from tests.factories import CouponFactory, MemberFactory, RedemptionFactory


@pytest.mark.parametrize(
    "model",
    [
        "merchant",
        "distributor",
        "site",
        "location",
        "member",
        "offer",
        "coupon",
        "redemption",
        "job",
        "apikey",
    ],
)
def test_every_list_page_opens_and_searches(admin_client, offer, model):
    CouponFactory(offer=offer, member=MemberFactory(merchant=offer.merchant))
    url = reverse(f"admin:coupons_{model}_changelist")
    assert admin_client.get(url).status_code == 200
    assert admin_client.get(url, {"q": "GATA0000001"}).status_code == 200


def offer_form(offer_site, **overrides):
    data = {
        "name": "Winter sale", "merchant": offer_site.merchant_id, "site": offer_site.id, "active_status": 1,
        "coupon_type": "percentage", "discount_value": "15", "currency": "aud", "applicable_on": "order",
        "applicable_filters": "[]", "usage_limit_type": "once", "mystery_discounts": "[]", "code_length": 10,
        "code_alphabet": "ABCDEFGHJKMNPQRSTUVWXYZ23456789", "code_prefix": "", "code_pattern": "",
    }  # fmt: skip
    return data | overrides


def test_an_offer_added_in_the_admin_goes_through_the_service(admin_client, site):
    response = admin_client.post(reverse("admin:coupons_offer_add"), offer_form(site, vanity_code="WINTER15"))
    assert response.status_code == 302, response.content
    offer = Offer.objects.get(name="Winter sale")
    assert offer.currency == "AUD" and offer.discount_value == Decimal("15.00")
    assert Coupon.objects.filter(offer=offer, code="WINTER15").exists()


def test_the_offer_form_shows_the_services_refusal_and_saves_nothing(admin_client, site):
    response = admin_client.post(reverse("admin:coupons_offer_add"), offer_form(site, discount_value="150"))
    assert response.status_code == 200
    assert "A percentage is between 0 and 100." in response.content.decode()
    assert not Offer.objects.exists()


def test_a_guessable_code_format_is_refused_on_the_form(admin_client, site):
    response = admin_client.post(reverse("admin:coupons_offer_add"), offer_form(site, code_length=4))
    assert "bits of entropy" in response.content.decode() and not Offer.objects.exists()


def test_editing_an_offer_keeps_its_codes_limits_in_step(
    admin_client, offer, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(Conf, "SYNC", True)  # the limits job runs inline, as the bulk cluster would
    coupon = services.coupons_create(offer=offer, count=1)[0]
    data = offer_form(offer.site, name=offer.name, coupon_type="fixedAmount", discount_value="10",
                      usage_limit_type="multiple", max_redemptions_per_code=4)  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:coupons_offer_change", args=[offer.pk]), data)
    assert response.status_code == 302
    assert Coupon.objects.get(pk=coupon.pk).max_redemptions == 4


def test_the_rollback_action_gives_the_use_back_and_reports_a_second_rollback(admin_client, offer):
    redemption = RedemptionFactory(coupon=CouponFactory(offer=offer, times_redeemed=1, max_redemptions=1))
    url = reverse("admin:coupons_redemption_changelist")
    admin_client.post(url, {"action": "rollback", "_selected_action": [redemption.pk], "confirm": "yes"})
    assert Redemption.objects.get(pk=redemption.pk).rolled_back_at is not None
    assert Coupon.objects.get(pk=redemption.coupon_id).times_redeemed == 0
    response = admin_client.post(
        url, {"action": "rollback", "_selected_action": [redemption.pk], "confirm": "yes"}, follow=True
    )
    assert "already rolled back" in " ".join(str(m) for m in get_messages(response.wsgi_request))
