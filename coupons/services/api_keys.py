"""API keys: made in the admin, a command or over the API, shown once, stored hashed, revoked or expired."""

import secrets
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from coupons.calendar import EARLIEST, LATEST, in_calendar
from coupons.errors import ApplicationError, invalid
from coupons.models import (
    ApiKey,
    Merchant,
)

MANAGE_SCOPE = "keys"


def api_key_token() -> str:
    # A recognisable prefix lets secret scanners spot a leaked key; 256 random bits follow.
    return "ck_" + secrets.token_urlsafe(32)


def api_key_create(
    *,
    scopes: list[str],
    merchant: Merchant | None = None,
    distributor=None,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """A new key for a merchant and/or a distributor; the token is returned once and only its hash kept."""
    from coupons.api.auth import KEY_PREFIX_LENGTH, api_key_hash

    if merchant is None and distributor is None:
        raise invalid("An API key belongs to a merchant or a distributor.", merchant="required")
    unknown = sorted(set(scopes) - set(ApiKey.SCOPES))
    if unknown or not scopes:
        raise invalid(f"Scopes are some of {', '.join(ApiKey.SCOPES)}.", scopes="invalid")
    if expires_at is not None:
        if not in_calendar(expires_at):
            raise invalid(f"Dates are between {EARLIEST.year} and {LATEST.year}.", expires_at="out_of_range")
        if expires_at <= timezone.now():
            raise invalid("A key's expiry is in the future.", expires_at="in_the_past")
    for _ in range(5):
        token = api_key_token()
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    name=name, prefix=token[:KEY_PREFIX_LENGTH], hashed_key=api_key_hash(token),
                    scopes=[s for s in ApiKey.SCOPES if s in scopes], merchant=merchant, distributor=distributor,
                    expires_at=expires_at,
                )  # fmt: skip
            return key, token
        except IntegrityError:  # the prefix is unique; a clash is astronomically rare but costs nothing
            continue
    raise ApplicationError("invalid_request", "Could not draw a unique key; try again.")


def api_key_create_with(
    *, acting: ApiKey, scopes: list[str], name: str = "", expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A key made with another key: for the same owner, with no scope and no lifetime beyond the acting key's.

    Without an expiry the new key ends when the acting key does, so a temporary key cannot mint a lasting one.
    """
    _require_manager(acting)
    beyond = [scope for scope in ApiKey.SCOPES if scope in scopes and scope not in acting.scopes]
    if beyond:
        raise ApplicationError(
            "forbidden",
            f"A key gives only scopes it holds itself; this one lacks {', '.join(beyond)}.",
            fields={"scopes": beyond},
        )
    if acting.expires_at is not None:
        if expires_at is None:
            expires_at = acting.expires_at
        elif expires_at > acting.expires_at:
            raise ApplicationError(
                "forbidden",
                "A key cannot outlive the key that makes it.",
                fields={"expires_at": ["after_acting_key"]},
            )
    return api_key_create(
        scopes=scopes,
        merchant=acting.merchant,
        distributor=acting.distributor,
        name=name,
        expires_at=expires_at,
    )


def api_key_revoke(*, key: ApiKey, acting: ApiKey | None = None, now: datetime | None = None) -> bool:
    """Revoke a key (at once in this process, elsewhere within API_KEY_CACHE_SECONDS); False if it already was.

    With `acting` (over the API) only a key holding no scope beyond the acting key's may be revoked by it.
    """
    from coupons.api.auth import api_key_forget

    if acting is not None:
        _require_manager(acting)
        beyond = [scope for scope in key.scopes if scope not in acting.scopes]
        if beyond:
            raise ApplicationError(
                "forbidden",
                f"A key revokes only keys within its own scopes; this one lacks {', '.join(beyond)}.",
            )
    now = now or timezone.now()
    revoked = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.refresh_from_db(fields=["revoked_at"])
    api_key_forget(key.pk)
    return bool(revoked)


def _require_manager(acting: ApiKey) -> None:
    # The views check the scope too; the service holds the rule so no other caller can skip it.
    if MANAGE_SCOPE not in acting.scopes:
        raise ApplicationError("forbidden", "This API key lacks the scope this endpoint needs.")
