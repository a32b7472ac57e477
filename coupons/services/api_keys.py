"""API keys: made in the admin, shown once, stored hashed."""

import secrets

from django.db import IntegrityError, transaction

from coupons.errors import ApplicationError, invalid
from coupons.models import (
    ApiKey,
    Merchant,
)


def api_key_token() -> str:
    # A recognisable prefix lets secret scanners spot a leaked key; 256 random bits follow.
    return "ck_" + secrets.token_urlsafe(32)


def api_key_create(
    *, scopes: list[str], merchant: Merchant | None = None, distributor=None, name: str = ""
) -> tuple[ApiKey, str]:
    """A new key for a merchant and/or a distributor; the token is returned once and only its hash kept."""
    from coupons.api.auth import KEY_PREFIX_LENGTH, api_key_hash

    if merchant is None and distributor is None:
        raise invalid("An API key belongs to a merchant or a distributor.", merchant="required")
    unknown = sorted(set(scopes) - set(ApiKey.SCOPES))
    if unknown or not scopes:
        raise invalid(f"Scopes are some of {', '.join(ApiKey.SCOPES)}.", scopes="invalid")
    for _ in range(5):
        token = api_key_token()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name, prefix=token[:KEY_PREFIX_LENGTH], hashed_key=api_key_hash(token),
                    scopes=[s for s in ApiKey.SCOPES if s in scopes], merchant=merchant, distributor=distributor,
                )  # fmt: skip
            return key, token
        except IntegrityError:  # the prefix is unique; a clash is astronomically rare but costs nothing
            continue
    raise ApplicationError("invalid_request", "Could not draw a unique key; try again.")
