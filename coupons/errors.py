"""The one business error type, with the stable codes of the API's error body."""

ERROR_STATUS = {
    "invalid_request": 400,
    "unauthenticated": 401,
    "forbidden": 403,
    "not_found": 404,
    "payload_too_large": 413,
    "idempotency_conflict": 422,
    "rate_limited": 429,
}
# Every refusal of a code answers 409 on redeem and valid=false on validate.
CODE_REFUSALS = {
    "not_started": "This offer has not started yet.",
    "expired": "This code has expired.",
    "offer_inactive": "This offer is not active.",
    "already_redeemed": "This code has already been redeemed.",
    "usage_limit_reached": "This code has no redemptions left.",
    "member_limit_reached": "This member has used this offer as often as allowed.",
    "min_order_not_met": "The order does not reach the offer's minimum amount.",
    "not_applicable": "The code does not apply to anything in this order.",
    "currency_mismatch": "The order's currency is not the offer's currency.",
    "sold_out": "There are no codes left for this offer.",
}


class ApplicationError(Exception):
    """A business failure with a stable code, a human message and optionally the fields at fault."""

    def __init__(
        self, code: str, message: str | None = None, *, fields: dict | None = None, status: int | None = None
    ):
        self.code = code
        self.message = message or CODE_REFUSALS.get(code, code.replace("_", " ").capitalize() + ".")
        self.fields = fields or {}
        self.status = status or ERROR_STATUS.get(code, 409)
        super().__init__(self.message)

    def as_body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


def invalid(message: str, **fields: str) -> ApplicationError:
    """An invalid_request naming the fields at fault."""
    return ApplicationError("invalid_request", message, fields={k: [v] for k, v in fields.items()})


def not_found(what: str = "Object") -> ApplicationError:
    return ApplicationError("not_found", f"{what} not found.")
