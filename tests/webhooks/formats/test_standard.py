"""The standard format sends every event with its snapshot as is; the registry finds every format."""

import json
from datetime import UTC, datetime

import pytest

from webhooks.formats import EVENT_TYPES, FORMAT_CHOICES, FORMATS, get_format
from webhooks.formats.base import COUPON_CREATED, COUPON_REDEEMED
from webhooks.formats.standard import Standard

from .samples import assert_json_body, event, hub_message, redcat_coupon_creation

URL = "https://receiver.example.com/webhooks"


def test_it_is_registered_as_standard():
    assert isinstance(get_format("standard"), Standard)


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_it_renders_every_event_with_its_snapshot_as_is(event_type):
    message = event(event_type)

    rendered = Standard().render(message, url=URL)

    expected = {
        "id": message.id,
        "type": event_type,
        "timestamp": "2025-03-04T01:02:03.456789Z",
        "data": message.data,
    }
    assert_json_body(rendered.body, expected)


def test_it_renders_the_seed_snapshots_unchanged():
    for message in (redcat_coupon_creation(), hub_message(COUPON_REDEEMED)):
        assert json.loads(Standard().render(message, url=URL).body)["data"] == message.data


def test_it_posts_compact_json_keeping_non_ascii_text():
    message = event(COUPON_CREATED, created_at=datetime(2025, 1, 1, tzinfo=UTC))
    message.data["offer"]["name"] = "Café crème ☕"

    rendered = Standard().render(message, url=URL)

    assert (rendered.method, rendered.url, rendered.headers) == (
        "POST",
        URL,
        {"Content-Type": "application/json"},
    )
    assert '"name":"Café crème ☕"' in rendered.body.decode()
    assert b'"timestamp":"2025-01-01T00:00:00.000000Z"' in rendered.body


def test_it_accepts_a_subscription_to_every_event():
    Standard().validate_subscription(list(EVENT_TYPES), "POST", {})


def test_it_refuses_a_subscription_by_get():
    with pytest.raises(ValueError, match="sent with POST, not GET"):
        Standard().validate_subscription([COUPON_REDEEMED], "GET", None)


def test_the_registry_offers_every_format_as_a_choice():
    assert [name for name, _label in FORMAT_CHOICES] == list(FORMATS)
    assert set(FORMATS) == {"redcat", "hub_events", "uniqodo_callback", "growlytics", "standard"}


def test_the_registry_refuses_an_unknown_format():
    with pytest.raises(ValueError, match="Unknown webhook format 'zapier'"):
        get_format("zapier")


def test_a_message_refuses_a_naive_creation_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        event(COUPON_CREATED, created_at=datetime(2025, 1, 1))
