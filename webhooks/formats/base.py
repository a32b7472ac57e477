"""The message a format renders, the request it produces, and the conversions every format shares."""

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

COUPON_CREATED = "coupon.created"
COUPON_ISSUED = "coupon.issued"
COUPON_VIEWED = "coupon.viewed"
COUPON_REDEEMED = "coupon.redeemed"
COUPON_REDEMPTION_FAILED = "coupon.redemption_failed"

# A mapping works directly as a Django field's `choices`.
EVENT_TYPES: dict[str, str] = {
    COUPON_CREATED: "Coupons created",
    COUPON_ISSUED: "Coupon issued",
    COUPON_VIEWED: "Coupon viewed",
    COUPON_REDEEMED: "Coupon redeemed",
    COUPON_REDEMPTION_FAILED: "Coupon redemption failed",
}

JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True)
class EventMessage:
    id: str
    type: str
    created_at: datetime
    data: dict[str, Any]

    def __post_init__(self) -> None:
        # A naive time would silently be read in the server's zone and shift every vendor date.
        if self.created_at.tzinfo is None:
            raise ValueError("EventMessage.created_at must be timezone-aware.")


@dataclass(frozen=True)
class Rendered:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes


class WebhookFormat:
    name: ClassVar[str]
    label: ClassVar[str]
    events: ClassVar[frozenset[str]]
    http_methods: ClassVar[frozenset[str]] = frozenset({"POST"})

    def render(
        self,
        message: EventMessage,
        *,
        url: str,
        http_method: str = "POST",
        params: Mapping[str, str] | None = None,
    ) -> Rendered:
        self.validate_subscription([message.type], http_method, params)
        return Rendered(
            method="POST",
            url=url,
            headers={"Content-Type": JSON_CONTENT_TYPE},
            body=json_body(self.payload(message)),
        )

    def payload(self, message: EventMessage) -> dict[str, Any]:
        raise NotImplementedError

    def validate_subscription(
        self,
        events: Iterable[str],
        http_method: str = "POST",
        params: Mapping[str, str] | None = None,
    ) -> None:
        unsupported = sorted(set(events) - self.events)
        if unsupported:
            raise ValueError(
                f"The {self.label} format cannot send {', '.join(unsupported)}; "
                f"it sends only {', '.join(sorted(self.events))}."
            )
        if http_method.upper() not in self.http_methods:
            raise ValueError(
                f"The {self.label} format is sent with {' or '.join(sorted(self.http_methods))}, "
                f"not {http_method}."
            )
        self.validate_params(params or {})

    def validate_params(self, params: Mapping[str, str]) -> None:
        if params:
            raise ValueError(f"The {self.label} format takes no parameters.")


def json_body(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def site_zone(data: Mapping[str, Any]) -> ZoneInfo:
    return ZoneInfo(data["site"]["timezone"])


def _aware(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset.")
    return moment


def local_naive(value: str | datetime | None, zone: tzinfo) -> str | None:
    """`2023-10-13T08:08:00`: wall-clock time in `zone`, seconds, no offset."""
    if value is None:
        return None
    return _aware(value).astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def iso_micro(value: str | datetime | None, zone: tzinfo) -> str | None:
    """`2023-10-12T09:24:22.131006+11:00`: time in `zone` with microseconds and its offset."""
    if value is None:
        return None
    return _aware(value).astimezone(zone).isoformat(timespec="microseconds")


def utc_z(value: str | datetime | None, timespec: str = "milliseconds") -> str | None:
    """`2000-01-01T00:00:00.000Z`: UTC with a `Z` instead of `+00:00`."""
    if value is None:
        return None
    return _aware(value).astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def utc_compact_offset(value: str | datetime | None) -> str | None:
    """`2015-05-29T10:39:17+0000`: UTC, seconds, offset without a colon."""
    if value is None:
        return None
    return _aware(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S%z")


def decimal_number(value: str | None) -> int | float | None:
    """A decimal string as a JSON number: `"100.00"` → `100`, `"12.50"` → `12.5`."""
    if value is None:
        return None
    amount = Decimal(value)
    return int(amount) if amount == amount.to_integral_value() else float(amount)
