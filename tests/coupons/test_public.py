"""The public reveal page, its content gate, embed page and script, through Django's test client."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from coupons.models import Coupon, Member
from coupons.public.views import SESSION_KEY
from tests import factories
from webhooks.formats import EventMessage, get_format
from webhooks.models import Event

CODE = re.compile(r'<p class="code" id="coupon-code"[^>]*>([^<]+)</p>')


@pytest.fixture(autouse=True)
def fresh_throttle_counters(db):
    cache.clear()


def page(offer, suffix: str = "") -> str:
    return f"/c/{offer.public_token}/{suffix}"


def shown_code(response) -> str | None:
    match = CODE.search(response.content.decode())
    return match.group(1) if match else None


def reveal(client: Client, offer, **data):
    return client.post(page(offer), data)


def test_the_page_shows_the_offer_its_terms_and_a_reveal_button(client, offer):
    offer.min_order_amount = Decimal("50.00")
    offer.save()

    response = client.get(page(offer))

    assert response.status_code == 200
    html = response.content.decode()
    assert offer.name in html
    assert "AUD 10.00 off your order" in html
    assert "On orders of AUD 50.00 or more" in html
    assert "Offer ends " in html
    assert "Reveal my code" in html
    assert 'name="csrfmiddlewaretoken"' in html
    assert shown_code(response) is None
    assert not Coupon.objects.filter(offer=offer).exists()


def test_revealing_issues_one_code_to_the_session_and_a_reload_shows_the_same_code(client, offer):
    response = reveal(client, offer)

    assert response.status_code == 303
    assert response["Location"] == page(offer)
    coupon = Coupon.objects.get(offer=offer)
    assert coupon.session_id == client.session[SESSION_KEY]
    assert coupon.issued_at is not None and coupon.viewed_at is not None
    first = client.get(page(offer))
    assert shown_code(first) == coupon.code
    assert "Copy code" in first.content.decode()
    assert shown_code(client.get(page(offer))) == coupon.code
    assert reveal(client, offer).status_code == 303  # a second click (another tab) changes nothing
    assert Coupon.objects.filter(offer=offer).count() == 1


def test_each_browser_session_gets_its_own_code(offer):
    first, second = Client(), Client()
    reveal(first, offer)
    reveal(second, offer)

    codes = {shown_code(first.get(page(offer))), shown_code(second.get(page(offer)))}

    assert len(codes) == 2
    assert codes == set(Coupon.objects.filter(offer=offer).values_list("code", flat=True))


def test_issued_and_viewed_events_carry_the_session_as_the_hubs_user_session_id(client, offer):
    reveal(client, offer)
    session_id = client.session[SESSION_KEY]

    events = {event.type: event for event in Event.objects.filter(offer=offer)}

    assert set(events) == {"coupon.issued", "coupon.viewed"}
    assert all(event.data["session_id"] == session_id for event in events.values())
    viewed = events["coupon.viewed"]
    message = EventMessage(
        id=str(viewed.uuid), type=viewed.type, created_at=viewed.created_at, data=viewed.data
    )
    body = json.loads(get_format("hub_events").render(message, url="https://hub.example.com/").body)
    assert body["event"] == "CouponViewed"
    assert body["user_session_id"] == session_id
    assert body["coupon_code"] == Coupon.objects.get(offer=offer).code


def test_the_session_id_sent_to_webhooks_is_not_the_session_key(client, offer):
    reveal(client, offer)

    assert client.session[SESSION_KEY] != client.session.session_key
    assert Coupon.objects.get(offer=offer).session_id != client.session.session_key


def test_a_mystery_offer_tells_the_drawn_discount_once_revealed(client, site):
    offer = factories.OfferFactory(
        site=site, coupon_type="mystery", discount_value=None,
        mystery_discounts=[{"coupon_type": "percentage", "discount_value": "15", "weight": 1}],
    )  # fmt: skip
    assert "reveal your code to find out" in client.get(page(offer)).content.decode()

    reveal(client, offer)

    assert "15% off your order" in client.get(page(offer)).content.decode()


# --- content gate -----------------------------------------------------------------------------


@pytest.fixture
def gated(offer):
    offer.content_gate = True
    offer.save()
    return offer


def test_a_gated_offer_asks_for_an_email_first(client, gated):
    html = client.get(page(gated)).content.decode()

    assert 'type="email"' in html and 'name="email"' in html


@pytest.mark.parametrize("email", ["", "not-an-email", "a@b", "x" * 190 + "@example.com"])
def test_a_gated_offer_refuses_a_missing_or_invalid_email_with_the_form_again(client, gated, email):
    response = reveal(client, gated, email=email)

    assert response.status_code == 400
    html = response.content.decode()
    assert 'class="errorlist"' in html and 'aria-invalid="true"' in html
    assert "Reveal my code" in html
    assert not Coupon.objects.filter(offer=gated).exists()


def test_the_email_becomes_a_member_whose_attributes_the_webhooks_carry(client, gated):
    response = reveal(client, gated, email="  shopper@example.com ")

    assert response.status_code == 303
    coupon = Coupon.objects.select_related("member").get(offer=gated)
    profile = coupon.member.profiles.get(merchant=gated.merchant)
    assert profile.attributes == {"email": "shopper@example.com"}
    issued = Event.objects.get(offer=gated, type="coupon.issued")
    message = EventMessage(
        id=str(issued.uuid), type=issued.type, created_at=issued.created_at, data=issued.data
    )
    body = json.loads(get_format("hub_events").render(message, url="https://hub.example.com/").body)
    assert body["email"] == "shopper@example.com"
    assert body["user_profile_id"] == str(profile.uuid)
    assert shown_code(client.get(page(gated))) == coupon.code


def test_a_gate_email_never_claims_the_member_who_owns_that_address(client, gated, member):
    # Anyone can type anyone's address: the victim's limits and member number must stay out of reach.
    victim = member.profiles.get()
    reveal(client, gated, email=victim.email.upper())

    coupon = Coupon.objects.select_related("member").get(offer=gated)
    assert coupon.member != member and Member.objects.count() == 2
    issued = Event.objects.get(offer=gated, type="coupon.issued")
    assert issued.data["member"]["member_no"] is None and issued.data["coupon"]["member_no"] is None
    victim.refresh_from_db()
    assert victim.attributes == {}


# --- offers that cannot hand out a code -----------------------------------------------------


def test_a_pool_offer_with_no_codes_left_is_sold_out(client, offer):
    offer.issue_from_pool = True
    offer.save()
    factories.CouponFactory(offer=offer, issued_at=None)  # the last code of the pool
    first = Client()
    reveal(first, offer)
    assert shown_code(first.get(page(offer))) is not None

    response = client.get(page(offer))

    assert response.status_code == 410
    assert "All the codes of this offer have been claimed" in response.content.decode()
    assert "Reveal my code" not in response.content.decode()


def test_a_reveal_that_finds_the_pool_emptied_meanwhile_says_sold_out(client, offer):
    offer.issue_from_pool = True
    offer.save()
    factories.CouponFactory(offer=offer, issued_at=None)
    assert "Reveal my code" in client.get(page(offer)).content.decode()
    reveal(Client(), offer)  # someone else takes the last code

    response = reveal(client, offer)

    assert response.status_code == 410
    assert "All the codes of this offer have been claimed" in response.content.decode()


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"finish_date": timezone.now() - timedelta(hours=1)}, 410, "This offer has ended"),
        ({"active_status": 0}, 410, "This offer is not available at the moment"),
        ({"start_date": timezone.now() + timedelta(days=2)}, 200, "This offer starts on"),
    ],
    ids=["expired", "inactive", "not-started"],
)
def test_an_offer_that_is_not_open_says_why_and_offers_no_reveal(client, offer, change, status, message):
    for name, value in change.items():
        setattr(offer, name, value)
    offer.save()

    response = client.get(page(offer))

    assert response.status_code == status
    assert message in response.content.decode()
    assert "Reveal my code" not in response.content.decode()
    refused = reveal(client, offer)
    assert refused.status_code == (409 if status == 200 else status)
    assert message in refused.content.decode()
    assert not Coupon.objects.filter(offer=offer).exists()


def test_a_code_revealed_before_the_offer_ended_is_still_shown_marked_expired(client, offer):
    reveal(client, offer)
    Coupon.objects.filter(offer=offer).update(expires_at=timezone.now() - timedelta(minutes=1))
    offer.finish_date = timezone.now() - timedelta(minutes=1)
    offer.save()

    response = client.get(page(offer))

    assert response.status_code == 200
    assert shown_code(response) == Coupon.objects.get(offer=offer).code
    assert "This code has expired." in response.content.decode()


def test_an_unknown_token_is_a_friendly_404(client, db):
    for path in ("/c/no-such-offer/", "/c/no-such-offer/embed/", "/c/no-such-offer/embed.js"):
        assert client.get(path).status_code == 404
    assert "Offer not found" in client.get("/c/no-such-offer/").content.decode()
    assert client.get("/c/not a token/").status_code == 404


def test_other_methods_are_refused(client, offer):
    assert client.put(page(offer)).status_code == 405
    assert client.post(page(offer, "embed.js")).status_code == 405


# --- CSRF and throttling ---------------------------------------------------------------------


def test_a_reveal_without_the_csrf_token_is_refused(offer):
    browser = Client(enforce_csrf_checks=True)

    assert browser.post(page(offer)).status_code == 403
    assert not Coupon.objects.filter(offer=offer).exists()

    browser.get(page(offer))
    token = browser.cookies["csrftoken"].value
    assert browser.post(page(offer), {"csrfmiddlewaretoken": token}).status_code == 303
    assert Coupon.objects.filter(offer=offer).count() == 1


def test_reveals_are_limited_per_client_address(offer, settings):
    settings.PUBLIC_REVEALS_PER_MINUTE = 2
    for _ in range(2):
        assert reveal(Client(REMOTE_ADDR="203.0.113.7"), offer).status_code == 303

    # A forged X-Forwarded-For does not make a new client: no proxy is trusted by default.
    limited = Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1").post(page(offer))

    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    assert "Please wait a moment" in limited.content.decode()
    assert Coupon.objects.filter(offer=offer).count() == 2
    assert reveal(Client(REMOTE_ADDR="203.0.113.8"), offer).status_code == 303


def test_page_loads_are_limited_per_client_address(offer, settings):
    settings.PUBLIC_PAGES_PER_MINUTE = 3
    browser = Client(REMOTE_ADDR="203.0.113.9")
    assert [browser.get(page(offer)).status_code for _ in range(3)] == [200, 200, 200]

    assert browser.get(page(offer)).status_code == 429
    assert browser.get("/c/unknown-token/").status_code == 429  # guessing tokens counts too


# --- embed ------------------------------------------------------------------------------------


def test_only_the_embed_page_may_be_framed(client, offer):
    full = client.get(page(offer))
    embed = client.get(page(offer, "embed/"))

    assert full["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in full["Content-Security-Policy"]
    assert embed.status_code == 200
    assert "X-Frame-Options" not in embed
    assert "frame-ancestors *" in embed["Content-Security-Policy"]
    assert 'class="embed"' in embed.content.decode()


def test_the_embed_page_reveals_in_place_and_links_the_full_page(client, offer):
    response = client.post(page(offer, "embed/"))

    assert response.status_code == 303
    assert response["Location"] == page(offer, "embed/")
    shown = client.get(page(offer, "embed/"))
    assert shown_code(shown) == Coupon.objects.get(offer=offer).code
    assert f'href="{page(offer)}" target="_blank"' in shown.content.decode()
    assert shown_code(client.get(page(offer))) == shown_code(shown)  # same session, same code


def test_the_embed_script_writes_an_iframe_of_the_embed_page(client, offer):
    response = client.get(page(offer, "embed.js"))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert "max-age=300" in response["Cache-Control"]
    script = response.content.decode()
    src = json.loads('"' + re.search(r'var src = "([^"]+)";', script).group(1) + '"')
    assert src == f"http://testserver/c/{offer.public_token}/embed/"
    assert 'createElement("iframe")' in script


def test_the_embed_script_keeps_the_offer_name_inside_its_string(client, offer):
    offer.name = 'Tricky */ "</script><script>alert(1)</script>'
    offer.save()

    script = client.get(page(offer, "embed.js")).content.decode()

    assert "</script>" not in script and "Tricky" not in script.splitlines()[0]  # nor in the comment
    title = re.search(r'frame.title = "([^"]+)";', script).group(1)
    assert json.loads(f'"{title}"') == offer.name
