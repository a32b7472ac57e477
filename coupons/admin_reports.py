"""The admin's report overview: every offer's funnel, redemptions per day, refusals and webhook health."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest
from django.template.response import TemplateResponse

from coupons import reports
from coupons.models import Offer

OFFERS_PER_PAGE = 25


def reports_overview(request: HttpRequest) -> TemplateResponse:
    """Offer figures need the report permission, webhook health the right to see subscriptions."""
    can_offers = request.user.has_perm("coupons.view_report")
    can_webhooks = request.user.has_perm("webhooks.view_subscription")
    if not (can_offers or can_webhooks):
        raise PermissionDenied
    context = {**admin.site.each_context(request), "title": "Reports"}
    if can_offers:
        page = Paginator(Offer.objects.select_related("merchant").order_by("-id"), OFFERS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        context |= {
            "page": page,
            "offers": reports.offers_overview(page.object_list),
            "chart": reports.redemptions_chart(days=30),
            "failures": reports.failure_reasons(),
        }
    if can_webhooks:
        context["webhooks"] = reports.webhook_health()
        context["health_hours"] = reports.HEALTH_HOURS
    return TemplateResponse(request, "admin/reports/overview.html", context)
