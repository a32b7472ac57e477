"""Per-client-address request limits in shared counters, so every web process counts together."""

import hashlib
import time

from django.http import HttpRequest
from rest_framework.throttling import BaseThrottle

from coupons.counters import counter_hit

WINDOW_SECONDS = 60


def client_address(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only through REST_FRAMEWORK's NUM_PROXIES."""
    return BaseThrottle().get_ident(request) or "unknown"


def throttle_hit(bucket: str, request: HttpRequest, limit: int) -> int | None:
    """Count one request in a fixed one-minute window: seconds to wait when over `limit`, else None."""
    if limit <= 0:
        return None
    now = int(time.time())
    window_start = now - now % WINDOW_SECONDS
    address = hashlib.sha256(client_address(request).encode()).hexdigest()[:32]
    key = f"public-throttle:{bucket}:{address}:{window_start}"
    count = counter_hit(key, window_ends=window_start + WINDOW_SECONDS)
    if count <= limit:
        return None
    return max(window_start + WINDOW_SECONDS - now, 1)
