"""The Redcat format renders seed 000's Coupon Creation and Coupon Redemption bodies."""

import json

import pytest

from webhooks.formats import get_format
from webhooks.formats.base import COUPON_ISSUED, COUPON_REDEEMED
from webhooks.formats.redcat import Redcat

from .samples import (
    assert_json_body,
    coupon,
    event,
    redcat_coupon_creation,
    redcat_coupon_redemption,
    redemption,
)

URL = "https://redcat.example.com/hooks/coupons"

SEED_COUPON_CREATION = json.loads(
    """
{
  "CreatedCoupons": [
    {
      "MemberID": 1330,
      "Hash": "149925de617e",
      "CouponExpiryDate": "2023-10-13T08:08:00"
    }
  ],
  "Coupon": {
    "FinishDate": "2023-10-13T08:08:00",
    "CouponName": "WH Test 4",
    "ActiveStatus": 1,
    "CouponID": 213,
    "StartDate": "2023-10-12T08:07:00"
  },
  "MsgCreatedUTC": "2023-10-11T22:10:26.564180+00:00"
}
"""
)

SEED_COUPON_REDEMPTION = json.loads(
    """
{
  "HashExpiry": null,
  "MemberID": 1005,
  "LastUpdateDate": "2023-10-12T09:23:20",
  "CouponID": 213,
  "CouponName": "WH Test 4",
  "MemberNo": "GATA0006417",
  "MsgCreatedUTC": "2023-10-11T22:24:22.318439+00:00",
  "Hash": "2cc2f53103e9",
  "LastRedemptionDate": "2023-10-12T09:24:22.131006+11:00",
  "ActiveStatus": 1
}
"""
)


def test_it_is_registered_as_redcat():
    assert isinstance(get_format("redcat"), Redcat)


def test_it_renders_the_seed_coupon_creation_message():
    rendered = Redcat().render(redcat_coupon_creation(), url=URL)

    assert_json_body(rendered.body, SEED_COUPON_CREATION)


def test_it_renders_the_seed_coupon_redemption_message():
    rendered = Redcat().render(redcat_coupon_redemption(), url=URL)

    assert_json_body(rendered.body, SEED_COUPON_REDEMPTION)


def test_it_posts_compact_utf8_json_to_the_subscription_url():
    rendered = Redcat().render(redcat_coupon_redemption(), url=URL)

    assert (rendered.method, rendered.url) == ("POST", URL)
    assert rendered.headers == {"Content-Type": "application/json"}
    assert b'"HashExpiry":null,"MemberID":1005' in rendered.body


def test_it_lists_every_created_coupon_with_a_null_member_id_for_codes_without_member():
    message = redcat_coupon_creation()
    message.data["coupons"] = [
        coupon(member_id=1330, code="149925de617e", expires_at="2023-10-12T21:08:00+00:00"),
        coupon(member_id=None, member_no=None, code="7a0c9e55d2b1", expires_at=None),
    ]

    body = json.loads(Redcat().render(message, url=URL).body)

    assert body["CreatedCoupons"] == [
        {"MemberID": 1330, "Hash": "149925de617e", "CouponExpiryDate": "2023-10-13T08:08:00"},
        {"MemberID": None, "Hash": "7a0c9e55d2b1", "CouponExpiryDate": None},
    ]


def test_it_gives_the_hash_expiry_in_the_sites_zone_without_offset():
    message = redcat_coupon_redemption()
    message.data["coupon"]["expires_at"] = "2023-10-31T12:59:59.999999+00:00"

    body = json.loads(Redcat().render(message, url=URL).body)

    assert body["HashExpiry"] == "2023-10-31T23:59:59"


def test_it_gives_the_redemption_date_with_the_sites_winter_offset():
    message = event(COUPON_REDEEMED, redemption=redemption(redeemed_at="2023-07-01T02:00:00+00:00"))

    body = json.loads(Redcat().render(message, url=URL).body)

    assert body["LastRedemptionDate"] == "2023-07-01T12:00:00.000000+10:00"


def test_it_refuses_an_event_that_has_no_redcat_message():
    with pytest.raises(ValueError, match="cannot send coupon.issued"):
        Redcat().render(event(COUPON_ISSUED), url=URL)


def test_it_refuses_a_subscription_by_get_or_with_params():
    with pytest.raises(ValueError, match="POST"):
        Redcat().validate_subscription([COUPON_REDEEMED], "GET", None)
    with pytest.raises(ValueError, match="no parameters"):
        Redcat().validate_subscription([COUPON_REDEEMED], "POST", {"code": "code"})
