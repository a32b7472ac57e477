"""When a failed delivery is tried again: the retry schedule, its jitter, Retry-After, and the clock."""

import random
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

from django.utils import timezone

# After the first attempt fails: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h.
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = 1 + len(RETRY_DELAYS)
JITTER = 0.2  # each delay is drawn within ±20 %, so receivers recovering from an outage are not stampeded
RETRY_AFTER_LIMIT = timedelta(hours=24)
RETRY_AFTER_STATUSES = frozenset({429, 503})

_random = random.Random()


def clock() -> datetime:
    """The current time for schedule arithmetic; tests replace it (or pass `now`) to move time."""
    return timezone.now()


def retry_delay(failed_attempts: int, *, retry_after: timedelta | None = None) -> timedelta | None:
    """How long after the `failed_attempts`-th failed attempt the next one is due; None when none is left."""
    if failed_attempts < 1 or failed_attempts > len(RETRY_DELAYS):
        return None
    delay = RETRY_DELAYS[failed_attempts - 1] * _random.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        # The receiver's wish is a floor: never sooner than it asked, never sooner than the schedule.
        delay = max(delay, min(retry_after, RETRY_AFTER_LIMIT))
    return delay


def retry_after_parse(value: str | None, *, now: datetime) -> timedelta | None:
    """A Retry-After header (seconds or an HTTP date) as a delay from now; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return timedelta(seconds=min(int(value), int(RETRY_AFTER_LIMIT.total_seconds())))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(moment - now, timedelta(0))


# The longest a delivery can stay pending on the schedule: every delay at its jitter's upper bound.
RETRY_SPAN = sum(RETRY_DELAYS, timedelta(0)) * (1 + JITTER)


def retention_check() -> None:
    """Refuse to start with a retention shorter than the retry schedule: the purge must not outrun retries."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    retention = timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    if retention <= RETRY_SPAN:
        raise ImproperlyConfigured(
            f"WEBHOOKS_RETENTION_DAYS={settings.WEBHOOKS_RETENTION_DAYS} is shorter than the retry schedule "
            f"({RETRY_SPAN.total_seconds() / 3600:.0f} hours): deliveries still being retried would be "
            f"purged. Set it to {RETRY_SPAN.days + 1} days or more."
        )
