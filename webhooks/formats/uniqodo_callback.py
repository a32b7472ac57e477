"""Uniqodo's code redemption callback: chosen data items under chosen names, form POST or GET (seed 002)."""

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .base import COUPON_REDEEMED, EventMessage, Rendered, WebhookFormat, utc_compact_offset

DATA_ITEMS = (
    "id",
    "offerId",
    "merchantId",
    "distributorId",
    "code",
    "orderValue",
    "orderId",
    "currency",
    "redeemedAt",
)


class UniqodoCallback(WebhookFormat):
    name = "uniqodo_callback"
    label = "Uniqodo redemption callback"
    events = frozenset({COUPON_REDEEMED})
    http_methods = frozenset({"GET", "POST"})

    def render(
        self,
        message: EventMessage,
        *,
        url: str,
        http_method: str = "POST",
        params: Mapping[str, str] | None = None,
    ) -> Rendered:
        self.validate_subscription([message.type], http_method, params)
        items = self.data_items(message)
        # Only the items the subscriber asked for, under its names and in its order.
        query = urlencode([(name, items[item]) for name, item in (params or {}).items()])
        if http_method.upper() == "GET":
            return Rendered(method="GET", url=_with_query(url, query), headers={}, body=b"")
        return Rendered(
            method="POST",
            url=url,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=query.encode(),
        )

    def data_items(self, message: EventMessage) -> dict[str, str]:
        data = message.data
        offer, coupon, redemption = data["offer"], data["coupon"], data["redemption"]
        # A redemption made with a distributor's key names no merchant; the code's merchant is the offer's.
        merchant_id = redemption.get("merchant_id") or offer["merchant_id"]
        values: dict[str, Any] = {
            "id": redemption["id"],
            "offerId": offer["id"],
            "merchantId": merchant_id,
            "distributorId": redemption.get("distributor_id"),
            "code": coupon["code"],
            "orderValue": redemption["order_value"],
            "orderId": redemption["order_id"],
            "currency": redemption["currency"],
            "redeemedAt": utc_compact_offset(redemption["redeemed_at"]),
        }
        return {item: "" if value is None else str(value) for item, value in values.items()}

    def validate_params(self, params: Mapping[str, str]) -> None:
        example = '{"code": "code", "orderId": "orderId"}'
        if not isinstance(params, Mapping) or not params:
            raise ValueError(
                f"The {self.label} needs params mapping each parameter name to a data item, e.g. {example}."
            )
        for name, item in params.items():
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"The {self.label} parameter names must be non-empty strings.")
            if item not in DATA_ITEMS:
                raise ValueError(
                    f"The {self.label} parameter {name!r} asks for {item!r}, which is not a data item; "
                    f"choose from {', '.join(DATA_ITEMS)}."
                )


def _with_query(url: str, query: str) -> str:
    parts = urlsplit(url)
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit(parts._replace(query=joined))
