"""Click-to-reveal pages: show an offer, issue one code per browser session, embed the button anywhere."""

import secrets
import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control, never_cache
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_GET, require_http_methods

from coupons import selectors, services
from coupons.errors import ApplicationError
from coupons.models import Coupon, Offer
from coupons.public import terms
from coupons.public.forms import GateForm
from coupons.public.throttle import throttle_hit

# The shopper's id for webhooks (the hub's user_session_id). Not the session key itself: that is a
# credential, and webhook receivers must never be able to take over a browser's session.
SESSION_KEY = "coupon_session_id"
GONE = {"expired", "offer_inactive", "sold_out"}  # no code can be had here any more


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def reveal_page(request: HttpRequest, token: str) -> HttpResponse:
    return _offer_page(request, token, embed=False)


@xframe_options_exempt  # the one page other sites may frame
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def embed_page(request: HttpRequest, token: str) -> HttpResponse:
    return _offer_page(request, token, embed=True)


@require_GET
@cache_control(public=True, max_age=300)
def embed_script(request: HttpRequest, token: str) -> HttpResponse:
    """A script that writes the embed page's iframe where the script tag stands."""
    offer = selectors.offer_get_public(token=token)
    if offer is None:
        return HttpResponse("/* Unknown offer. */\n", content_type="text/javascript", status=404)
    context = {
        "src": request.build_absolute_uri(reverse("public:embed", args=[token])),
        "title": offer.name,
        "token": token,
    }
    return render(request, "public/embed.js", context, content_type="text/javascript; charset=utf-8")


def _offer_page(request: HttpRequest, token: str, *, embed: bool) -> HttpResponse:
    wait = throttle_hit("page", request, settings.PUBLIC_PAGES_PER_MINUTE)
    if wait:
        return _too_many(request, wait, embed=embed)
    offer = selectors.offer_get_public(token=token)
    if offer is None:
        return _render(request, "public/not_found.html", {}, status=404, embed=embed)
    coupon = selectors.coupon_of_session(offer=offer, session_id=request.session.get(SESSION_KEY))
    if request.method == "POST" and coupon is None:
        return _reveal(request, offer, embed=embed)
    if request.method == "POST":
        return _see_other(request.path)  # revealed already (another tab): show it
    refusal = None if coupon else services.offer_issue_refusal(offer=offer)
    form = GateForm() if offer.content_gate else None
    status = 410 if refusal and refusal.code in GONE else 200
    return _render_offer(
        request, offer, coupon=coupon, refusal=refusal, form=form, status=status, embed=embed
    )


def _reveal(request: HttpRequest, offer: Offer, *, embed: bool) -> HttpResponse:
    """Issue this session's code (once) and record that the shopper saw it, then show it."""
    wait = throttle_hit("reveal", request, settings.PUBLIC_REVEALS_PER_MINUTE)
    if wait:
        return _too_many(request, wait, embed=embed)
    form = GateForm(request.POST) if offer.content_gate else None
    if form is not None and not form.is_valid():
        return _render_offer(request, offer, form=form, status=400, embed=embed)
    session_id = request.session.setdefault(SESSION_KEY, str(uuid.uuid4()))
    email = form.cleaned_data["email"] if form is not None else None
    try:
        services.coupon_reveal(offer=offer, session_id=session_id, email=email)
    except ApplicationError as error:
        status = 410 if error.code in GONE else 409
        return _render_offer(request, offer, refusal=error, form=form, status=status, embed=embed)
    # Post/redirect/get: a reload shows the code again instead of asking to resend the form.
    return _see_other(request.path)


def _render_offer(
    request: HttpRequest,
    offer: Offer,
    *,
    coupon: Coupon | None = None,
    refusal: ApplicationError | None = None,
    form: GateForm | None = None,
    status: int = 200,
    embed: bool,
) -> HttpResponse:
    context = {
        "offer": offer,
        "terms": terms.offer_terms(offer, coupon),
        "coupon": coupon,
        "coupon_note": terms.coupon_note(coupon) if coupon else None,
        "coupon_expiry": terms.local_date(offer, coupon.expires_at, True)
        if coupon and coupon.expires_at
        else None,
        "refusal": refusal,
        "refusal_message": terms.refusal_message(offer, refusal) if refusal else None,
        "form": form,
        "page_url": reverse("public:reveal", args=[offer.public_token]),
    }
    return _render(request, "public/offer.html", context, status=status, embed=embed)


def _too_many(request: HttpRequest, wait: int, *, embed: bool) -> HttpResponse:
    response = _render(request, "public/too_many.html", {"wait": wait}, status=429, embed=embed)
    response["Retry-After"] = str(wait)
    return response


def _render(request: HttpRequest, template: str, context: dict, *, status: int, embed: bool) -> HttpResponse:
    """Render with a per-response script nonce and a strict Content-Security-Policy."""
    nonce = secrets.token_urlsafe(16)
    context |= {"nonce": nonce, "embed": embed, "csrf_cookie_name": settings.CSRF_COOKIE_NAME}
    response = render(request, template, context, status=status)
    # The embed page may be framed by any site that shows the offer; every other page by none.
    ancestors = "*" if embed else "'none'"
    response["Content-Security-Policy"] = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; "
        f"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
    return response


def _see_other(path: str) -> HttpResponse:
    response = HttpResponseRedirect(path)
    response.status_code = 303
    return response
