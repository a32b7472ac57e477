"""Anti-enumeration: look-ups of unknown codes are counted per key and per client address each minute.

Only misses count and only misses are refused: a request with a real code never touches the
counters, so shoppers with real codes are never slowed by someone else's guessing.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from rest_framework.throttling import BaseThrottle

from coupons.counters import counter_hit, counters_read
from coupons.errors import ApplicationError

WINDOW_SECONDS = 60
_CLIENT = BaseThrottle()  # only for get_ident: the client address, honouring NUM_PROXIES


@contextmanager
def unknown_code_guard(request) -> Iterator[None]:
    """Count a not_found raised inside as an unknown code; past the limit it becomes rate_limited."""
    try:
        yield
    except ApplicationError as error:
        if error.code != "not_found":
            raise
        retry_after = unknown_code_count(request)
        if retry_after:
            raise rate_limited(retry_after) from None
        raise


@contextmanager
def others_codes_guard(request) -> Iterator[None]:
    """Count codes of other owners' offers that a write refused (an import's rows, a vanity code) as unknown
    codes, taken or not: a collision is a found code. Past the limit every such write is refused up front,
    collision or not, so neither the answer nor its status tells anything."""
    retry_after = unknown_codes_count(request, misses=0)
    if retry_after:
        raise rate_limited(retry_after)
    try:
        yield
    except ApplicationError as error:
        misses = getattr(error, "others_codes", 0)
        retry_after = unknown_codes_count(request, misses=misses) if misses else 0
        if retry_after:
            raise rate_limited(retry_after) from None
        raise


def others_codes_count_once(request, *, counted_as: str, misses: int) -> None:
    """Count `misses` found in the background (a job's refused rows) once, when they are first about to be
    shown; rate_limited when that takes the key or the address past the limit."""
    if misses and cache.add(f"others-codes-counted:{counted_as}", 1, timeout=None):
        retry_after = unknown_codes_count(request, misses=misses)
        if retry_after:
            raise rate_limited(retry_after)


def unknown_codes_count(request, *, misses: int, now: float | None = None) -> int:
    """Count `misses` at once, even when refused (probing in bulk costs what probing one by one does);
    returns the seconds to wait when the key or the address is, or now goes, past the limit, else 0."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    keys = _counter_keys(request, window)
    counts = counters_read(keys)
    most = max((counts.get(key, 0) for key in keys), default=0)
    limit = settings.UNKNOWN_CODE_LIMIT_PER_MINUTE
    if misses:
        window_ends = (window + 1) * WINDOW_SECONDS
        after_transaction(request, lambda: [counter_hit(k, window_ends=window_ends, by=misses) for k in keys])
    return WINDOW_SECONDS - int(now % WINDOW_SECONDS) if most >= limit or most + misses > limit else 0


def rate_limited(retry_after: int) -> ApplicationError:
    error = ApplicationError("rate_limited", "Too many unknown codes; slow down and try again later.")
    error.retry_after = retry_after
    return error


def unknown_code_count(request, *, now: float | None = None) -> int:
    """Count one miss; returns the seconds to wait when the key or the address is past the limit, else 0."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    keys = _counter_keys(request, window)
    counts = counters_read(keys)
    if any(count >= settings.UNKNOWN_CODE_LIMIT_PER_MINUTE for count in counts.values()):
        return WINDOW_SECONDS - int(now % WINDOW_SECONDS)
    window_ends = (window + 1) * WINDOW_SECONDS
    after_transaction(request, lambda: [counter_hit(key, window_ends=window_ends) for key in keys])
    return 0


def _counter_keys(request, window: int) -> list[str]:
    keys = [f"unknown-codes:{window}:ip:{_CLIENT.get_ident(request)}"]
    if getattr(request, "auth", None) is not None:
        keys.append(f"unknown-codes:{window}:key:{request.auth.pk}")
    return keys


def after_transaction(request, callback) -> None:
    """Run `callback` once the request's write transaction has ended, committed or rolled back.

    The counters table is written through the request's own connection: inside a dry run's rolled-back
    transaction a count would vanish, and X-DRY-RUN would become a free pass for guessing.
    """
    pending = getattr(request._request, "after_transaction", None)
    if pending is not None and transaction.get_connection().in_atomic_block:
        pending.append(callback)
    else:
        callback()
