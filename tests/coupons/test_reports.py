"""Admin reports: an offer's funnel, chart and refusal reasons, the overview page and webhook health."""

import re
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from coupons import reports, services
from coupons.errors import ApplicationError
from coupons.models import Coupon
from coupons.roles import ACCOUNT_MANAGER, CAMPAIGN_MANAGER, SUPPORT
from tests import factories
from webhooks.models import Attempt, Delivery, Event, Subscription

BAR = re.compile(r'<rect class="bar"[^>]*data-count="(\d+)"')


def staff(role: str | None) -> User:
    user = User.objects.create_user(username=f"user-{role}", password="x", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def redeem(code: str, order_id: str, value: str = "100.00"):
    order = services.order_parse(order_value=value, currency="AUD")
    return services.coupon_redeem(code=code, order_id=order_id, order=order)


@pytest.fixture
def busy_offer(offer):
    """4 issued codes, 2 viewed, 1 redeemed twice over (two days), and three refused redemptions."""
    offer.usage_limit_type = "multiple"
    offer.max_redemptions_per_code = 2
    offer.min_order_amount = Decimal("20.00")
    offer.save()
    coupons = services.coupons_create(offer=offer, count=4)
    for coupon in coupons[:2]:
        services.coupon_view(coupon=coupon)
    first, _ = redeem(coupons[0].code, "order-1")
    first.redeemed_at = timezone.now() - timedelta(days=2)
    first.save()
    redeem(coupons[0].code, "order-2")
    for order_id, value in (("order-3", "100.00"), ("order-4", "100.00"), ("order-5", "5.00")):
        code = coupons[0].code if value != "5.00" else coupons[1].code
        with pytest.raises(ApplicationError):
            redeem(code, order_id, value)
    return offer


def test_the_offer_report_has_the_funnel_rate_discount_and_refusal_reasons(busy_offer):
    report = reports.offer_report(busy_offer)

    assert [(s["stage"], s["count"], s["percent"]) for s in report["funnel"]] == [
        ("Issued", 4, 100.0), ("Viewed", 2, 50.0), ("Redeemed", 1, 25.0),
    ]  # fmt: skip
    assert report["redemption_rate_percent"] == 25.0
    assert report["stats"]["discount_given"] == Decimal("20.00")
    assert [(r["code"], r["count"]) for r in report["failures"]] == [
        ("usage_limit_reached", 2), ("min_order_not_met", 1),
    ]  # fmt: skip
    assert report["failures"][1]["message"] == "The order does not reach the offer's minimum amount."


def test_the_chart_has_a_bar_per_day_with_empty_days_in_between(busy_offer):
    chart = reports.offer_report(busy_offer)["chart"]

    today = timezone.localdate()
    assert [(bar.day, bar.count) for bar in chart.bars] == [
        (today - timedelta(days=2), 1), (today - timedelta(days=1), 0), (today, 1),
    ]  # fmt: skip
    assert chart.bars[1].height == 0
    assert chart.bars[0].height == chart.bars[2].height > 0


def test_refusals_of_other_offers_are_not_counted(busy_offer, site):
    other = factories.OfferFactory(site=site, finish_date=timezone.now() + timedelta(seconds=1))
    (coupon,) = services.coupons_create(offer=other, count=1)
    other.finish_date = timezone.now() - timedelta(seconds=1)
    other.save()
    with pytest.raises(ApplicationError):
        redeem(coupon.code, "too-late")

    assert [r["code"] for r in reports.failure_reasons(offer=busy_offer)] == [
        "usage_limit_reached", "min_order_not_met",
    ]  # fmt: skip
    assert {r["code"] for r in reports.failure_reasons()} == {
        "usage_limit_reached",
        "min_order_not_met",
        "expired",
    }


def test_a_report_costs_the_same_queries_whatever_the_number_of_codes(offer, site):
    small = factories.OfferFactory(site=site)
    services.coupons_create(offer=small, count=3)
    services.coupons_create(offer=offer, count=400)
    with CaptureQueriesContext(connection) as few:
        reports.offer_report(small)
    with CaptureQueriesContext(connection) as many:
        reports.offer_report(offer)

    assert len(many) == len(few) <= 6


def test_bar_heights_scale_to_a_round_top_line():
    today = date(2026, 3, 10)
    chart = reports.bar_chart({date(2026, 3, 8): 7, date(2026, 3, 9): 3}, today=today)

    assert chart.top == 10
    assert [bar.count for bar in chart.bars] == [7, 3, 0]
    assert chart.bars[0].height == pytest.approx((chart.height - chart.top_y) * 0.7, abs=0.01)
    assert all(bar.y + bar.height == pytest.approx(chart.height) for bar in chart.bars)
    assert reports.bar_chart({}, today=today) is None


def test_the_chart_shows_at_most_the_last_90_days_and_an_old_offer_ends_on_its_last_day():
    today = date(2026, 6, 30)
    long_running = reports.bar_chart({today - timedelta(days=n): 1 for n in range(200)}, today=today)
    finished = reports.bar_chart({date(2025, 1, 1): 2, date(2025, 1, 5): 4}, today=today)

    assert len(long_running.bars) == reports.CHART_DAYS and long_running.last == today
    assert (finished.first, finished.last, len(finished.bars)) == (date(2025, 1, 1), date(2025, 1, 5), 5)


# --- admin pages ------------------------------------------------------------------------------


def test_the_offer_page_shows_the_report_chart_and_embed_snippets_to_a_campaign_manager(client, busy_offer):
    client.force_login(staff(CAMPAIGN_MANAGER))

    response = client.get(f"/admin/coupons/offer/{busy_offer.pk}/change/")

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="offer-report"' in html
    assert [int(n) for n in BAR.findall(html)] == [1, 0, 1]
    assert "usage_limit_reached" in html
    token = busy_offer.public_token
    assert f"http://testserver/c/{token}/" in html
    assert f"&lt;script src=&quot;http://testserver/c/{token}/embed.js&quot; async&gt;&lt;/script&gt;" in html
    assert f"&lt;iframe src=&quot;http://testserver/c/{token}/embed/&quot;" in html


def test_the_offer_page_hides_the_report_from_those_without_the_report_permission(client, busy_offer):
    client.force_login(staff(ACCOUNT_MANAGER))

    response = client.get(f"/admin/coupons/offer/{busy_offer.pk}/change/")

    assert response.status_code == 200
    assert 'id="offer-report"' not in response.content.decode()
    assert 'id="offer-embed"' in response.content.decode()


def test_the_overview_lists_offers_chart_and_refusals_for_campaign_managers(client, busy_offer):
    client.force_login(staff(CAMPAIGN_MANAGER))

    response = client.get("/admin/reports/")

    assert response.status_code == 200
    html = response.content.decode()
    assert busy_offer.name in html and 'id="report-offers"' in html
    assert sum(int(n) for n in BAR.findall(html)) == 2
    assert 'id="report-failures"' in html and "usage_limit_reached" in html
    assert 'id="report-webhooks"' not in html
    assert "/admin/reports/" in client.get("/admin/").content.decode()


def test_the_overview_shows_account_managers_webhook_health_only(client, busy_offer):
    client.force_login(staff(ACCOUNT_MANAGER))

    html = client.get("/admin/reports/").content.decode()

    assert 'id="report-webhooks"' in html
    assert 'id="report-offers"' not in html and busy_offer.name not in html


def test_the_overview_refuses_staff_without_either_permission(client, db):
    client.force_login(staff(None))

    assert client.get("/admin/reports/").status_code == 403
    assert "/admin/reports/" not in client.get("/admin/").content.decode()


def test_the_overview_asks_anonymous_visitors_to_log_in(client, db):
    response = client.get("/admin/reports/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_overview_pages_through_offers(client, site):
    for _ in range(30):
        factories.OfferFactory(site=site)
    client.force_login(staff(SUPPORT))

    first = client.get("/admin/reports/").content.decode()
    second = client.get("/admin/reports/?page=2").content.decode()
    bad = client.get("/admin/reports/?page=abc")

    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert bad.status_code == 200


# --- webhook health ---------------------------------------------------------------------------


def _delivery(subscription, status, *, attempts=(), age=timedelta(0)):
    event = Event.objects.create(type="coupon.issued", data={})
    delivery = Delivery.objects.create(
        event=event, subscription=subscription, message_id=f"msg_{event.uuid.hex}", status=status,
        attempts=len(attempts), created_at=timezone.now() - age,
    )  # fmt: skip
    for n, (status_code, error) in enumerate(attempts):
        Attempt.objects.create(
            delivery=delivery, subscription=subscription, status_code=status_code, error=error, duration_ms=100,
            started_at=timezone.now() - age + timedelta(milliseconds=n),
        )  # fmt: skip
    return delivery


def test_webhook_health_counts_recent_deliveries_and_names_the_last_error(db):
    healthy = Subscription.objects.create(url="https://a.example.com/", events=["coupon.issued"])
    flaky = Subscription.objects.create(url="https://b.example.com/", events=["coupon.issued"])
    for _ in range(3):
        _delivery(flaky, "succeeded", attempts=[(200, "")])
    _delivery(flaky, "failed", attempts=[(500, ""), (None, "Connection refused")], age=timedelta(minutes=5))
    _delivery(flaky, "pending", attempts=[(503, "")])
    _delivery(flaky, "failed", attempts=[(None, "Old timeout")], age=timedelta(days=30))
    _delivery(healthy, "succeeded", attempts=[(204, "")])

    rows = {row["subscription"].pk: row for row in reports.webhook_health()}

    flaky_row = rows[flaky.pk]
    assert (flaky_row["succeeded"], flaky_row["failed"], flaky_row["pending"], flaky_row["retrying"]) == (
        3,
        1,
        1,
        1,
    )
    assert flaky_row["success_percent"] == 50.0  # 3 of its 6 recent attempts
    assert flaky_row["health"].last_error == "HTTP 503"
    assert rows[healthy.pk]["success_percent"] == 100.0 and rows[healthy.pk]["health"].last_error == ""


def test_webhook_health_appears_on_the_overview(client, db):
    subscription = Subscription.objects.create(url="https://hooks.example.com/in", events=["coupon.issued"])
    _delivery(subscription, "failed", attempts=[(None, "Name or service not known")])
    client.force_login(staff(ACCOUNT_MANAGER))

    html = client.get("/admin/reports/").content.decode()

    assert "https://hooks.example.com/in" in html
    assert "Name or service not known" in html
    assert "0.0 %" in html and "100 ms" in html


def test_the_report_works_without_any_coupons(client, offer):
    client.force_login(staff(CAMPAIGN_MANAGER))

    response = client.get(f"/admin/coupons/offer/{offer.pk}/change/")

    assert response.status_code == 200
    assert "No redemptions yet." in response.content.decode()
    assert not Coupon.objects.exists()
