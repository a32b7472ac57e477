"""Run one action in many threads released together, each on its own database connection."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

from django.db import connection

from coupons.errors import ApplicationError


def all_at_once(action, count: int) -> list:
    """Run `action(i)` in `count` threads released together; return each result or ApplicationError raised."""
    barrier = Barrier(count)

    def run(i):
        try:
            barrier.wait(timeout=30)
            return action(i)
        except ApplicationError as error:
            return error
        finally:
            connection.close()

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))
