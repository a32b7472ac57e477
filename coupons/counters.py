"""Rate-limit counters every process shares: atomic increments, each kept whole until its window ends.

Where the shared cache is Redis, its INCR counts. Otherwise a table does, with one upsert a hit
(`INSERT … ON CONFLICT DO UPDATE SET count = count + 1 RETURNING count`, PostgreSQL and SQLite alike):
Django's database cache would lose counts to concurrent read-modify-writes and cull live ones past
MAX_ENTRIES.
"""

from datetime import UTC, datetime, timedelta

from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache
from django.db import connection, transaction
from django.utils import timezone

from coupons.models import ThrottleCounter


def _in_redis() -> bool:
    return isinstance(cache, RedisCache)


def counter_hit(key: str, *, window_ends: float, by: int = 1) -> int:
    """Add `by` to `key`'s count (kept until `window_ends`, a Unix time); returns the count with this hit."""
    if _in_redis():
        timeout = max(int(window_ends - timezone.now().timestamp()) + 1, 1)
        cache.add(key, 0, timeout=timeout)
        try:
            return cache.incr(key, by)
        except ValueError:  # expired between add and incr
            cache.add(key, by, timeout=timeout)
            return by
    meta = ThrottleCounter._meta
    quote = connection.ops.quote_name
    table, count = quote(meta.db_table), quote("count")
    expires_at = meta.get_field("expires_at").get_db_prep_value(
        datetime.fromtimestamp(window_ends, tz=UTC), connection
    )
    upsert = (
        f"INSERT INTO {table} ({quote('key')}, {count}, {quote('expires_at')}) VALUES (%s, %s, %s)"
        f" ON CONFLICT ({quote('key')}) DO UPDATE SET {count} = {table}.{count} + EXCLUDED.{count}"
    )
    if connection.features.can_return_columns_from_insert:
        with connection.cursor() as cursor:
            cursor.execute(f"{upsert} RETURNING {count}", [key, by, expires_at])
            return cursor.fetchone()[0]
    # An SQLite before 3.35 has no RETURNING: the count is read back in the same (write-locked) transaction.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(upsert, [key, by, expires_at])
        cursor.execute(f"SELECT {count} FROM {table} WHERE {quote('key')} = %s", [key])
        return cursor.fetchone()[0]


def counters_read(keys: list[str]) -> dict[str, int]:
    """The counts of those keys that have any."""
    if _in_redis():
        return cache.get_many(keys)
    return dict(ThrottleCounter.objects.filter(key__in=keys).values_list("key", "count"))


def counters_purge(*, now: datetime | None = None) -> int:
    """Delete counters whose window has ended; returns how many (a schedule runs it)."""
    # A margin past the window's end: a request counted just at the end may still read it.
    cutoff = (now or timezone.now()) - timedelta(minutes=1)
    deleted, _ = ThrottleCounter.objects.filter(expires_at__lt=cutoff).delete()
    return deleted
