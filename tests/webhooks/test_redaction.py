"""Credentials in subscription URLs and headers: kept and sent as configured, shown masked after creation."""

import pytest
from django.urls import reverse

from webhooks.models import Subscription
from webhooks.redaction import headers_redacted, url_redacted

from .factories import SubscriptionFactory
from .test_api import SUBSCRIPTIONS, client, create

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(merchant):
    return client(merchant=merchant)


URL = "http://hook-user:s3cret-pass@127.0.0.1:9/hook?x=1"
MASKED_URL = "http://hook-user:****@127.0.0.1:9/hook?x=1"
HEADERS = {"Authorization": "Bearer tok_live_1234567890abcd", "X-Short": "abc"}
MASKED_HEADERS = {"Authorization": "****abcd", "X-Short": "****"}


@pytest.mark.parametrize(
    "url, shown",
    [
        (URL, MASKED_URL),
        ("https://only-a-token@hooks.example.com/in", "https://****@hooks.example.com/in"),
        (
            "https://hooks.example.com/in?token=t0k3n&order=1",
            "https://hooks.example.com/in?token=****&order=1",
        ),
        ("https://hooks.example.com/in", "https://hooks.example.com/in"),
        ("not a url at all", "not a url at all"),
    ],
)
def test_a_url_shows_no_credentials(url, shown):
    assert url_redacted(url) == shown


def test_header_values_show_at_most_their_last_four_characters():
    assert headers_redacted(HEADERS) == MASKED_HEADERS
    assert headers_redacted({}) == {}


def test_the_api_shows_credentials_masked_after_creation_and_keeps_sending_them(api):
    created = create(api, url=URL, headers=HEADERS)
    assert created["url"] == URL and created["headers"] == HEADERS  # the creating answer echoes the request
    one = f"{SUBSCRIPTIONS}{created['id']}/"
    for shown in (api.get(one).json(), api.get(SUBSCRIPTIONS).json()["results"][0]):
        assert shown["url"] == MASKED_URL and shown["headers"] == MASKED_HEADERS
    changed = api.patch(one, {"name": "renamed"}, format="json").json()
    assert changed["url"] == MASKED_URL and changed["headers"] == MASKED_HEADERS
    stored = Subscription.objects.get()
    assert stored.url == URL and stored.headers == HEADERS


def test_sending_back_the_masked_values_changes_nothing_but_a_new_value_replaces(api):
    created = create(api, url=URL, headers=HEADERS)
    one = f"{SUBSCRIPTIONS}{created['id']}/"
    shown = api.get(one).json()
    round_trip = {"url": shown["url"], "headers": shown["headers"] | {"X-Short": "new"}}
    assert api.patch(one, round_trip, format="json").status_code == 200
    stored = Subscription.objects.get()
    assert stored.url == URL and stored.headers == {
        "Authorization": HEADERS["Authorization"],
        "X-Short": "new",
    }


def test_the_admin_list_and_form_show_credentials_masked_and_a_save_keeps_them(admin_client, merchant):
    subscription = SubscriptionFactory(url=URL, headers=HEADERS, merchant=merchant, name="")
    listing = admin_client.get(reverse("admin:webhooks_subscription_changelist")).content.decode()
    change_url = reverse("admin:webhooks_subscription_change", args=[subscription.pk])
    page = admin_client.get(change_url)
    html = page.content.decode()
    for text in (listing, html):
        assert "s3cret-pass" not in text and "tok_live_1234567890" not in text
    assert "hook-user:****@127.0.0.1" in listing
    form = page.context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data |= {"events": subscription.events, "active": "on", "params": "{}", "offers": []}
    data["headers"] = form["headers"].value()
    response = admin_client.post(change_url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    subscription.refresh_from_db()
    assert subscription.url == URL and subscription.headers == HEADERS
