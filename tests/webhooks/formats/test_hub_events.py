"""The hub events format renders seed 001's four coupon events."""

import json
from datetime import UTC, datetime

import pytest

from webhooks.formats import get_format
from webhooks.formats.base import (
    COUPON_CREATED,
    COUPON_ISSUED,
    COUPON_REDEEMED,
    COUPON_REDEMPTION_FAILED,
    COUPON_VIEWED,
)
from webhooks.formats.hub_events import HubEvents

from .samples import assert_json_body, coupon, event, hub_message, member

URL = "https://hub.example.com/webhooks"

# The seed's examples without their comments and the "User attributes" placeholder, which the
# seed's table says stands for the attributes themselves, each as its own key.
SEED_COMMON = {
    "id": "54e635de-92f5-4419-a498-5f69323db34c",
    "timestamp": "2000-01-01T00:00:00.000Z",
    "site_id": "2d5776b8-158a-4216-aaa1-edbc249e005b",
    "site_name": "My site",
    "offer_id": "9620376e-1ed9-4333-81c6-68b2188fda5a",
    "coupon_id": "a713a50d-e095-4446-b9e7-c473f514291f",
    "offer_name": "10% off your next coffee",
    "coupon_code": "12345",
    "competition_entry_id": "05f267de-0347-4266-970d-cb6a58fecc36",
    "user_session_id": "d40cc0e7-7243-4060-a75f-b2062c94462a",
    "user_profile_id": "0fdbb943-511c-4220-9266-31465374f43b",
}


def render(message):
    return HubEvents().render(message, url=URL)


def body_of(message):
    return json.loads(render(message).body)


def test_it_is_registered_as_hub_events():
    assert isinstance(get_format("hub_events"), HubEvents)


def test_it_renders_the_seed_coupon_issued_message():
    assert_json_body(render(hub_message(COUPON_ISSUED)).body, SEED_COMMON | {"event": "CouponIssued"})


def test_it_renders_the_seed_coupon_viewed_message():
    assert_json_body(render(hub_message(COUPON_VIEWED)).body, SEED_COMMON | {"event": "CouponViewed"})


def test_it_renders_the_seed_redemption_success_message():
    expected = SEED_COMMON | {"event": "CouponRedemptionSuccess", "coupon_location": "Shop 123"}

    assert_json_body(render(hub_message(COUPON_REDEEMED)).body, expected)


def test_it_renders_the_seed_redemption_error_message():
    expected = SEED_COMMON | {
        "event": "CouponRedemptionError",
        "coupon_location": "Shop 123",
        "coupon_redemption_error": "Already redeemed",
    }

    assert_json_body(render(hub_message(COUPON_REDEMPTION_FAILED)).body, expected)


def test_it_posts_json():
    rendered = render(hub_message(COUPON_ISSUED))

    assert (rendered.method, rendered.url, rendered.headers) == (
        "POST",
        URL,
        {"Content-Type": "application/json"},
    )


def test_it_adds_each_member_attribute_as_its_own_key_without_replacing_a_seed_field():
    attributes = {
        "favourite_drink": "flat white",
        "newsletter": True,
        "visits": 3,
        "site_name": "not the site",
        "coupon_location": "not a location",
        "User attributes": "",
    }
    message = hub_message(COUPON_ISSUED, member=member(attributes=attributes))

    expected = SEED_COMMON | {
        "event": "CouponIssued",
        "favourite_drink": "flat white",
        "newsletter": True,
        "visits": 3,
    }
    assert_json_body(render(message).body, expected)


def test_it_leaves_out_optional_fields_that_are_unknown_and_sends_required_ones_as_null():
    anonymous = coupon(uuid="a713a50d-e095-4446-b9e7-c473f514291f", code="12345")
    message = hub_message(COUPON_REDEEMED, coupon=anonymous, member=None, session_id=None, redemption=None)

    body = body_of(message)

    assert "competition_entry_id" not in body
    assert "user_profile_id" not in body
    assert body["user_session_id"] is None
    assert body["coupon_location"] is None


def test_it_sends_the_coupons_own_session_when_the_event_has_none():
    message = hub_message(
        COUPON_VIEWED, session_id=None, coupon=coupon(session_id="b7c1a9f0-3e2d-4c6b-8a5f-9d0e1f2a3b4c")
    )

    assert body_of(message)["user_session_id"] == "b7c1a9f0-3e2d-4c6b-8a5f-9d0e1f2a3b4c"


def test_it_gives_the_timestamp_in_utc_with_milliseconds_and_z():
    created_at = datetime(2023, 10, 11, 22, 10, 26, 564180, tzinfo=UTC)

    assert body_of(event(COUPON_VIEWED, created_at=created_at))["timestamp"] == "2023-10-11T22:10:26.564Z"


def test_it_sends_only_the_error_event_a_redemption_error():
    assert "coupon_redemption_error" not in body_of(hub_message(COUPON_REDEEMED))
    assert "coupon_location" not in body_of(hub_message(COUPON_ISSUED))


def test_it_refuses_coupon_creation_which_the_hub_has_no_event_for():
    with pytest.raises(ValueError, match="cannot send coupon.created"):
        HubEvents().validate_subscription([COUPON_ISSUED, COUPON_CREATED], "POST", {})
