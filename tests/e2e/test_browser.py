"""Journeys in a real browser: a shopper reveals a code; the roles use the admin."""

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from coupons import services
from coupons.demo import DEMO_ROLE_PASSWORD, demo_load
from coupons.models import Coupon, Offer
from tests import factories
from webhooks.transport import deliveries_send_due

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


def test_without_javascript_the_reveal_form_posts_and_the_page_shows_the_code(browser, live_server):
    offer = factories.OfferFactory()
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    page.goto(f"/c/{offer.public_token}/")

    page.get_by_role("button", name="Reveal my code").click()

    page.locator("#coupon-code").wait_for()
    assert page.locator("#coupon-code").inner_text() == Coupon.objects.get(offer=offer).code
    assert page.get_by_role("button", name="Copy code").is_hidden()  # it needs JavaScript
    context.close()


def test_a_publishers_page_embeds_the_button_and_reveals_on_the_offers_own_page(
    page, live_server, httpserver_ipv4, screenshot
):
    offer = factories.OfferFactory(name="Free coffee with any cake")
    # The publisher is another site (127.0.0.1 against the platform's localhost).
    httpserver_ipv4.expect_request("/article").respond_with_data(
        "<!doctype html><title>A publisher</title><h1>Today's deals</h1>"
        f'<script src="{live_server.url}/c/{offer.public_token}/embed.js" async></script><p>More news</p>',
        content_type="text/html",
    )
    page.goto(httpserver_ipv4.url_for("/article"))

    frame_element = page.locator("iframe")
    frame_element.wait_for()
    frame = page.frame_locator("iframe")
    frame.get_by_role("heading", name="Free coffee with any cake").wait_for()
    page.wait_for_function("document.querySelector('iframe').height !== '300'")
    screenshot("publisher-page-with-embedded-button")
    # Another site's frame keeps no cookies, so the reveal happens on the offer's own page.
    with page.context.expect_page() as opened:
        frame.get_by_role("button", name="Reveal my code").click()
    offer_page = opened.value
    offer_page.wait_for_load_state()
    assert offer_page.url.endswith(f"/c/{offer.public_token}/")
    offer_page.get_by_role("button", name="Reveal my code").click()
    assert offer_page.locator("#coupon-code").inner_text() == Coupon.objects.get(offer=offer).code


def test_an_account_manager_adds_a_subscription_and_sends_it_a_test_event(page, httpserver, screenshot):
    demo_load()
    httpserver.expect_request("/hooks/coupons", method="POST").respond_with_data("thanks")
    log_in(page, "account.manager", DEMO_ROLE_PASSWORD)

    page.goto("/admin/webhooks/subscription/add/")
    page.fill("#id_name", "Marketing platform")
    page.fill("#id_url", httpserver.url_for("/hooks/coupons"))
    page.select_option("#id_format", "standard")
    page.get_by_label("Coupon issued").check()
    page.get_by_label("Coupon redeemed").check()
    page.click("input[name=_save]")
    secret = page.locator("code.signing-secret").inner_text()
    assert secret.startswith("whsec_")

    page.goto("/admin/webhooks/subscription/")
    page.get_by_role("row", name="Marketing platform").get_by_role("checkbox").check()
    page.select_option("select[name=action]", "send_test_event")
    page.get_by_role("button", name="Go").click()
    page.get_by_text("Test event queued for 1 subscription").wait_for()
    assert deliveries_send_due() == 1  # what the task cluster does when the test event rings its doorbell

    (request, response), *_ = httpserver.log
    assert response.status_code == 200
    body = Webhook(secret).verify(request.get_data(), dict(request.headers))
    assert body["type"] == "coupon.issued" and body["data"]["test"] is True
    page.goto("/admin/webhooks/delivery/")
    assert page.get_by_role("row", name="Marketing platform").get_by_text("Succeeded").is_visible()
    screenshot("account-manager-test-event-delivered")


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
