"""The span of dates the platform stores: wide enough for any offer, narrow enough for every zone to render."""

from datetime import UTC, datetime, timedelta

# Python's calendar ends at years 1 and 9999: a date at either end moved into a site's zone (Redcat's naive
# dates, the reveal page) or by a relative expiry would overflow. A year of margin either side keeps every
# conversion inside.
EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
LATEST = datetime(9998, 12, 31, tzinfo=UTC)
# A relative expiry longer than a century is a typo, and past LATEST one could not be computed at all.
RELATIVE_EXPIRY_MAX = timedelta(days=36_500)


def in_calendar(moment: datetime) -> bool:
    """Whether an aware datetime lies in the span every zone can render."""
    return EARLIEST <= moment <= LATEST


def moment_after(start: datetime, delta: timedelta) -> datetime | None:
    """`start + delta`, or None when it falls past the calendar's end (as good as never)."""
    try:
        moment = start + delta
    except OverflowError:
        return None
    return moment if moment <= LATEST else None
