"""Journeys in a real browser: a shopper reveals a code; the roles use the admin."""

import pytest
from django.utils import timezone

from coupons import services
from coupons.demo import DEMO_ROLE_PASSWORD, demo_load
from coupons.models import Coupon, Offer
from tests import factories

pytestmark = pytest.mark.browser


def log_in(page, username: str, password: str) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")


def test_a_shopper_reveals_a_code_in_place_copies_it_and_sees_it_again_after_a_reload(page, screenshot):
    offer = factories.OfferFactory(name="10% off your next coffee", coupon_type="percentage")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"/c/{offer.public_token}/")
    assert page.get_by_role("heading", name="10% off your next coffee").is_visible()
    page.evaluate("window.stillTheSamePage = true")

    page.get_by_role("button", name="Reveal my code").click()

    code = page.locator("#coupon-code")
    code.wait_for()
    coupon = Coupon.objects.get(offer=offer)
    assert code.inner_text() == coupon.code
    assert page.evaluate("window.stillTheSamePage") is True  # revealed in place, no page load
    assert coupon.viewed_at is not None and coupon.session_id
    page.get_by_role("button", name="Copy code").click()
    page.get_by_role("button", name="Copied!").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == coupon.code
    screenshot("shopper-revealed-code")

    page.reload()

    assert page.locator("#coupon-code").inner_text() == coupon.code
    assert page.get_by_role("button", name="Reveal my code").count() == 0
    assert Coupon.objects.filter(offer=offer).count() == 1


def test_a_campaign_manager_reads_an_offers_report_with_its_chart(page, screenshot):
    demo_load()
    offer = Offer.objects.get(external_id="DEMO-FIXED")
    order = services.order_parse(order_value="80.00", currency="AUD")
    codes = list(Coupon.objects.filter(offer=offer, member__isnull=True).values_list("code", flat=True)[:3])
    for day, code in enumerate(codes):
        redemption, _ = services.coupon_redeem(code=code, order_id=f"order-{day}", order=order)
        redemption.redeemed_at = timezone.now() - timezone.timedelta(days=2 * day)
        redemption.save()
    log_in(page, "campaign.manager", DEMO_ROLE_PASSWORD)

    page.goto("/admin/reports/")
    page.get_by_role("link", name=offer.name).click()

    report = page.locator("#offer-report")
    report.wait_for()
    bars = report.locator("svg.bar-chart rect.bar")
    assert bars.count() == 5  # five days, from the oldest redemption to today
    drawn = [bar for bar in bars.all() if float(bar.get_attribute("height")) > 0]
    assert len(drawn) == 3 and all(bar.bounding_box()["height"] > 0 for bar in drawn)
    assert report.get_by_text("Redemption rate").is_visible()
    assert page.locator("#snippet-script").input_value().startswith("<script src=")
    screenshot("campaign-manager-offer-report")
