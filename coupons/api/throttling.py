"""Anti-enumeration: look-ups of unknown codes are counted per key and per client address each minute.

Only misses count and only misses are refused: a request with a real code never touches the
counters, so shoppers with real codes are never slowed by someone else's guessing.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
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


def rate_limited(retry_after: int) -> ApplicationError:
    error = ApplicationError("rate_limited", "Too many unknown codes; slow down and try again later.")
    error.retry_after = retry_after
    return error


def unknown_code_count(request, *, now: float | None = None) -> int:
    """Count one miss; returns the seconds to wait when the key or the address is past the limit, else 0."""
    now = time.time() if now is None else now
    window = int(now // WINDOW_SECONDS)
    keys = [f"unknown-codes:{window}:ip:{_CLIENT.get_ident(request)}"]
    if getattr(request, "auth", None) is not None:
        keys.append(f"unknown-codes:{window}:key:{request.auth.pk}")
    counts = counters_read(keys)
    if any(count >= settings.UNKNOWN_CODE_LIMIT_PER_MINUTE for count in counts.values()):
        return WINDOW_SECONDS - int(now % WINDOW_SECONDS)
    window_ends = (window + 1) * WINDOW_SECONDS
    after_transaction(request, lambda: [counter_hit(key, window_ends=window_ends) for key in keys])
    return 0


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
