"""Amounts as the API and the admin take them: non-negative, at most two decimals."""

from decimal import Decimal, InvalidOperation

from coupons.errors import invalid

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")


def to_amount(value, field_name: str, *, required: bool = True) -> Decimal | None:
    """A non-negative amount with at most two decimals, or an invalid_request naming the field."""
    if value is None or value == "":
        if required:
            raise invalid("This field is required.", **{field_name: "required"})
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise invalid("A decimal amount is expected.", **{field_name: "invalid"})
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise invalid("A decimal amount is expected.", **{field_name: "invalid"}) from None
    if not amount.is_finite() or amount < 0 or amount > MAX_AMOUNT:
        raise invalid("The amount must be between 0 and 999999999999.99.", **{field_name: "out_of_range"})
    if amount != amount.quantize(CENT):
        raise invalid("The amount may have at most two decimals.", **{field_name: "too_precise"})
    return amount.quantize(CENT)
