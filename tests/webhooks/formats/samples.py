"""Event messages whose snapshots reproduce each vendor seed's example, and the JSON check the tests share."""

import json
from datetime import UTC, datetime
from typing import Any

from webhooks.formats.base import (
    COUPON_CREATED,
    COUPON_ISSUED,
    COUPON_REDEEMED,
    COUPON_REDEMPTION_FAILED,
    EventMessage,
)

MESSAGE_ID = "3f1c9f4e-8d5a-4c1e-9b59-2a4f0d6c7e81"
CREATED_AT = datetime(2025, 3, 4, 1, 2, 3, 456789, tzinfo=UTC)


def site(**changes: Any) -> dict[str, Any]:
    return {
        "uuid": "2d5776b8-158a-4216-aaa1-edbc249e005b",
        "name": "My site",
        "timezone": "Australia/Sydney",
    } | changes


def offer(**changes: Any) -> dict[str, Any]:
    return {
        "id": 42,
        "uuid": "c0a8e7a2-51a4-4d0c-8f5e-0b4c1f3e9d27",
        "external_id": "CAMPAIGN-42",
        "name": "10% off your next coffee",
        "merchant_id": 56,
        "active_status": 1,
        "start_date": "2025-01-01T00:00:00+11:00",
        "finish_date": "2025-12-31T23:59:59+11:00",
        "coupon_type": "percentage",
        "discount_value": "10.00",
        "currency": "AUD",
        "applicable_on": "order",
        "applicable_filters": [],
        "min_order_amount": None,
        "usage_limit_type": "once",
        "expiry_type": None,
        "expiry_value": None,
        "expiry_unit": None,
    } | changes


def coupon(**changes: Any) -> dict[str, Any]:
    return {
        "id": 9001,
        "uuid": "6b0e2c52-7d8f-4a3b-9e1d-5c4f8a2b7e60",
        "code": "X7K2M9QP",
        "member_id": 1005,
        "member_no": "GATA0006417",
        "identifier": None,
        "session_id": None,
        "competition_entry_id": None,
        "issued_at": "2025-03-04T12:00:00+11:00",
        "expires_at": None,
        "updated_at": "2025-03-04T12:00:00+11:00",
        "coupon_type": "percentage",
        "discount_value": "10.00",
    } | changes


def member(**changes: Any) -> dict[str, Any]:
    return {
        "id": 1005,
        "member_no": "GATA0006417",
        "external_id": "customer-id",
        "uuid": "0fdbb943-511c-4220-9266-31465374f43b",
        "email": "shopper@example.com",
        "attributes": {},
    } | changes


def redemption(**changes: Any) -> dict[str, Any]:
    return {
        "id": 126478,
        "order_id": "ABC123456",
        "order_value": "219.99",
        "currency": "USD",
        "discount_amount": "10.00",
        "redeemed_at": "2025-03-04T12:30:00.250000+11:00",
        "location": "Shop 123",
        "merchant_id": 56,
        "distributor_id": None,
    } | changes


def event(
    type_: str, *, id: str = MESSAGE_ID, created_at: datetime = CREATED_AT, **data: Any
) -> EventMessage:
    """A message of `type_` whose snapshot has every key the event carries; `data` replaces keys."""
    snapshot: dict[str, Any] = {"site": site(), "offer": offer()}
    if type_ == COUPON_CREATED:
        snapshot["coupons"] = [coupon()]
    else:
        snapshot |= {
            "coupon": coupon(),
            "member": member(),
            "session_id": None,
            "redemption": None,
            "error": None,
        }
    return EventMessage(id=id, type=type_, created_at=created_at, data=snapshot | data)


# Seed 000, Redcat: offer 213 "WH Test 4" in Sydney summer time (+11:00). Dates are given in
# either offset, as the snapshot may hold them, so the renderer has to convert.
REDCAT_OFFER = offer(
    id=213,
    name="WH Test 4",
    active_status=1,
    start_date="2023-10-11T21:07:00+00:00",
    finish_date="2023-10-13T08:08:00+11:00",
)


def redcat_coupon_creation() -> EventMessage:
    return event(
        COUPON_CREATED,
        created_at=datetime(2023, 10, 11, 22, 10, 26, 564180, tzinfo=UTC),
        offer=REDCAT_OFFER,
        coupons=[coupon(member_id=1330, code="149925de617e", expires_at="2023-10-12T21:08:00+00:00")],
    )


def redcat_coupon_redemption() -> EventMessage:
    return event(
        COUPON_REDEEMED,
        created_at=datetime(2023, 10, 11, 22, 24, 22, 318439, tzinfo=UTC),
        offer=REDCAT_OFFER,
        coupon=coupon(
            member_id=1005,
            member_no="GATA0006417",
            code="2cc2f53103e9",
            expires_at=None,
            updated_at="2023-10-11T22:23:20.482113+00:00",
        ),
        member=member(id=1005, member_no="GATA0006417"),
        redemption=redemption(redeemed_at="2023-10-11T22:24:22.131006+00:00"),
    )


# Seed 001, hub events: the same site, offer, coupon, session and profile in all four examples.
HUB_MESSAGE_ID = "54e635de-92f5-4419-a498-5f69323db34c"


def hub_message(type_: str, **data: Any) -> EventMessage:
    seed: dict[str, Any] = {
        "offer": offer(uuid="9620376e-1ed9-4333-81c6-68b2188fda5a", name="10% off your next coffee"),
        "coupon": coupon(
            uuid="a713a50d-e095-4446-b9e7-c473f514291f",
            code="12345",
            competition_entry_id="05f267de-0347-4266-970d-cb6a58fecc36",
        ),
        "member": member(uuid="0fdbb943-511c-4220-9266-31465374f43b"),
        "session_id": "d40cc0e7-7243-4060-a75f-b2062c94462a",
    }
    if type_ == COUPON_REDEEMED:
        seed["redemption"] = redemption(location="Shop 123")
    if type_ == COUPON_REDEMPTION_FAILED:
        seed["redemption"] = redemption(id=None, location="Shop 123")
        seed["error"] = {"code": "already_redeemed", "message": "Already redeemed"}
    return event(type_, id=HUB_MESSAGE_ID, created_at=datetime(2000, 1, 1, tzinfo=UTC), **(seed | data))


# Seed 002, Uniqodo: the "Available Redemption Data" table; the redemption happened at
# 20:39:17 in Sydney (+10:00 in May), which is the table's 10:39:17 UTC.
def uniqodo_redemption(
    *, code: str = "XY23T4DF", order_id: str = "ABC123456", distributor_id: int | None = 23
) -> EventMessage:
    return event(
        COUPON_REDEEMED,
        offer=offer(id=1256, merchant_id=56),
        coupon=coupon(code=code),
        redemption=redemption(
            id=126478,
            order_id=order_id,
            order_value="219.99",
            currency="USD",
            redeemed_at="2015-05-29T20:39:17+10:00",
            merchant_id=56,
            distributor_id=distributor_id,
        ),
    )


# Seed 003, Growlytics: the three examples' discount rules, with the seed's placeholder ids.
GROWLYTICS_EXAMPLE_1 = {  # $100 off the order above $1500, expires in 15 days
    "coupon_type": "fixedAmount",
    "discount_value": "100.00",
    "applicable_on": "order",
    "applicable_filters": [],
    "usage_limit_type": "once",
    "min_order_amount": "1500.00",
    "expiry_type": "relative",
    "expiry_value": 15,
    "expiry_unit": "day",
}
GROWLYTICS_EXAMPLE_2 = {  # 10% off products a and b above 10k, expires in 48 hours
    "coupon_type": "percentage",
    "discount_value": "10.00",
    "applicable_on": "product",
    "applicable_filters": ["a", "b"],
    "usage_limit_type": "once",
    "min_order_amount": "10000.00",
    "expiry_type": "relative",
    "expiry_value": 48,
    "expiry_unit": "hour",
}
GROWLYTICS_EXAMPLE_3 = {  # free shipping above 500, expires in 48 hours
    "coupon_type": "freeShipping",
    "discount_value": None,
    "applicable_on": "order",
    "applicable_filters": [],
    "usage_limit_type": "once",
    "min_order_amount": "500.00",
    "expiry_type": "relative",
    "expiry_value": 48,
    "expiry_unit": "hour",
}


def growlytics_issue(rules: dict[str, Any], **data: Any) -> EventMessage:
    seed = {
        "offer": offer(name="coupon-name", **rules),
        "coupon": coupon(
            uuid="coupon-id",
            code="coupon-code",
            coupon_type=rules["coupon_type"],
            discount_value=rules["discount_value"],
        ),
        "member": member(external_id="customer-id"),
    }
    return event(COUPON_ISSUED, **(seed | data))


def assert_json_body(body: bytes, expected: dict[str, Any]) -> None:
    actual = json.loads(body)
    assert actual == expected
    # `==` takes 1 for True and 100 for 100.0; their JSON does not, so compare that too.
    assert json.dumps(actual, sort_keys=True) == json.dumps(expected, sort_keys=True)
