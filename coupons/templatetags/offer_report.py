"""Template tags of the offer's admin page: its report and the snippets that embed its reveal button."""

from django import template
from django.urls import reverse
from django.utils.html import format_html

from coupons import reports
from coupons.models import Offer

register = template.Library()


@register.inclusion_tag("admin/coupons/offer/report.html", takes_context=True)
def offer_report(context, offer: Offer) -> dict:
    request = context["request"]
    if not request.user.has_perm("coupons.view_report"):
        return {"allowed": False}
    return {"allowed": True, "offer": offer, "report": reports.offer_report(offer)}


@register.inclusion_tag("admin/coupons/offer/embed_snippet.html", takes_context=True)
def offer_embed_snippet(context, offer: Offer) -> dict:
    """The public page's address and the two snippets, as the exact text to paste into a site."""
    request = context["request"]
    token = offer.public_token
    embed_url = request.build_absolute_uri(reverse("public:embed", args=[token]))
    script_url = request.build_absolute_uri(reverse("public:embed_script", args=[token]))
    return {
        "page_url": request.build_absolute_uri(reverse("public:reveal", args=[token])),
        "script_snippet": format_html('<script src="{}" async></script>', script_url),
        "iframe_snippet": format_html(
            '<iframe src="{}" title="{}" width="100%" height="300" loading="lazy" '
            'style="border:0;max-width:460px"></iframe>',
            embed_url,
            offer.name,
        ),
    }
