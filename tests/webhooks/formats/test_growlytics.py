"""The Growlytics format renders seed 003's three coupon webhook examples."""

import json

import pytest

from webhooks.formats import get_format
from webhooks.formats.base import COUPON_ISSUED, COUPON_REDEEMED
from webhooks.formats.growlytics import Growlytics

from .samples import (
    GROWLYTICS_EXAMPLE_1,
    GROWLYTICS_EXAMPLE_2,
    GROWLYTICS_EXAMPLE_3,
    assert_json_body,
    coupon,
    event,
    growlytics_issue,
    member,
    offer,
)

URL = "https://growlytics.example.com/coupons"

SEED_GENERAL = {"id": "coupon-id", "customerId": "customer-id", "name": "coupon-name", "code": "coupon-code"}


def body_of(message):
    return json.loads(Growlytics().render(message, url=URL).body)


def test_it_is_registered_as_growlytics():
    assert isinstance(get_format("growlytics"), Growlytics)


def test_it_renders_the_seed_fixed_amount_order_example():
    expected = SEED_GENERAL | {
        "couponType": "fixedAmount",
        "discountValue": 100,
        "applicableOn": "order",
        "applicableFilters": None,
        "usageLimitType": "once",
        "minOrderAmount": 1500,
        "expiryType": "relative",
        "expiryValue": 15,
        "expiryUnit": "day",
    }

    assert_json_body(Growlytics().render(growlytics_issue(GROWLYTICS_EXAMPLE_1), url=URL).body, expected)


def test_it_renders_the_seed_percentage_product_example():
    # The seed spells the value "prdouct"; the values it lists are "product" and "collection".
    expected = SEED_GENERAL | {
        "couponType": "percentage",
        "discountValue": 10,
        "applicableOn": "product",
        "applicableFilters": ["a", "b"],
        "usageLimitType": "once",
        "minOrderAmount": 10000,
        "expiryType": "relative",
        "expiryValue": 48,
        "expiryUnit": "hour",
    }

    assert_json_body(Growlytics().render(growlytics_issue(GROWLYTICS_EXAMPLE_2), url=URL).body, expected)


def test_it_renders_the_seed_free_shipping_example_with_a_null_discount_value():
    expected = SEED_GENERAL | {
        "couponType": "freeShipping",
        "discountValue": None,
        "applicableOn": "order",
        "applicableFilters": None,
        "usageLimitType": "once",
        "minOrderAmount": 500,
        "expiryType": "relative",
        "expiryValue": 48,
        "expiryUnit": "hour",
    }

    assert_json_body(Growlytics().render(growlytics_issue(GROWLYTICS_EXAMPLE_3), url=URL).body, expected)


def test_it_posts_json():
    rendered = Growlytics().render(growlytics_issue(GROWLYTICS_EXAMPLE_1), url=URL)

    assert (rendered.method, rendered.url, rendered.headers) == (
        "POST",
        URL,
        {"Content-Type": "application/json"},
    )


def test_it_sends_a_null_customer_id_when_the_customer_is_not_identified():
    assert body_of(growlytics_issue(GROWLYTICS_EXAMPLE_1, member=None))["customerId"] is None
    assert (
        body_of(growlytics_issue(GROWLYTICS_EXAMPLE_1, member=member(external_id=None)))["customerId"] is None
    )


def test_it_sends_fractional_amounts_as_floats_and_no_expiry_as_nulls():
    message = event(
        COUPON_ISSUED,
        offer=offer(discount_value="12.50", min_order_amount=None),
        coupon=coupon(discount_value="12.50"),
    )

    body = body_of(message)

    assert (body["discountValue"], body["minOrderAmount"]) == (12.5, None)
    assert (body["expiryType"], body["expiryValue"], body["expiryUnit"]) == (None, None, None)


def test_it_sends_the_discount_drawn_for_a_mystery_coupon():
    message = event(
        COUPON_ISSUED,
        offer=offer(coupon_type="mystery", discount_value=None),
        coupon=coupon(coupon_type="fixedAmount", discount_value="15.00"),
    )

    body = body_of(message)

    assert (body["couponType"], body["discountValue"]) == ("fixedAmount", 15)


def test_it_sends_a_mystery_coupon_that_drew_free_shipping_as_free_shipping_with_no_value():
    message = event(
        COUPON_ISSUED,
        offer=offer(coupon_type="mystery", discount_value=None),
        coupon=coupon(coupon_type="freeShipping", discount_value=None),
    )

    body = body_of(message)

    assert (body["couponType"], body["discountValue"]) == ("freeShipping", None)


def test_it_falls_back_to_the_offer_type_for_a_snapshot_without_the_coupon_type():
    message = event(COUPON_ISSUED, offer=offer(coupon_type="percentage"), coupon=coupon(coupon_type=None))

    assert body_of(message)["couponType"] == "percentage"


def test_it_sends_the_collections_of_a_collection_offer():
    message = event(COUPON_ISSUED, offer=offer(applicable_on="collection", applicable_filters=["summer"]))

    assert body_of(message)["applicableFilters"] == ["summer"]


def test_it_refuses_events_other_than_issue():
    with pytest.raises(ValueError, match="cannot send coupon.redeemed"):
        Growlytics().validate_subscription([COUPON_REDEEMED], "POST", None)
