"""How a commit wakes the dispatcher: NOTIFY inside the transaction on PostgreSQL, a short poll on SQLite.

The web side costs almost nothing: on PostgreSQL the outbox folds `pg_notify` into the statement that
writes the deliveries (PostgreSQL delivers it only if the transaction commits); on SQLite the dispatcher
polls an indexed query every WEBHOOKS_POLL_SECONDS. After a commit the web process checks, at most every
few seconds, that some dispatcher holds a lease, and asks the cluster for one when none does.
"""

import logging
import threading
import time
from collections.abc import Callable

from django.db import connection, connections, transaction
from django.utils import timezone

logger = logging.getLogger(__name__)

CHANNEL = "webhooks_due"
SEND_TASK = "webhooks.tasks.deliveries_send_task"
# A web process looks for a live dispatcher at most this often, and asks for one at most this often.
ALIVE_CHECK_SECONDS = 2.0
ASK_AGAIN_SECONDS = 5.0


def notifies() -> bool:
    """Whether this database tells listeners about commits (PostgreSQL) or is polled (SQLite)."""
    return connection.vendor == "postgresql"


def ring() -> None:
    """Inside the writing transaction: wake the dispatcher once it commits; make sure one is running."""
    if notifies():
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")
    dispatcher_ensure_on_commit()


def dispatcher_ensure_on_commit() -> None:
    transaction.on_commit(_watch.check)


class _DispatcherWatch:
    """Asks the cluster for a dispatcher when none holds a lease (a fresh start, or one lost with a worker)."""

    def __init__(self) -> None:
        self._checked_at = -ALIVE_CHECK_SECONDS
        self._asked_at = -ASK_AGAIN_SECONDS
        self._lock = threading.Lock()

    def check(self) -> None:
        moment = time.monotonic()
        if moment - self._checked_at < ALIVE_CHECK_SECONDS:
            return
        with self._lock:
            if moment - self._checked_at < ALIVE_CHECK_SECONDS:
                return
            self._checked_at = moment
        try:
            if not dispatcher_alive() and moment - self._asked_at >= ASK_AGAIN_SECONDS:
                self._asked_at = moment
                dispatcher_request()
        except Exception:
            # Runs after a business commit: never fail it. The minute sweep starts a dispatcher anyway.
            logger.exception("Could not check for a webhook dispatcher; the minute sweep will start one.")

    def forget(self) -> None:
        self._checked_at, self._asked_at = -ALIVE_CHECK_SECONDS, -ASK_AGAIN_SECONDS


_watch = _DispatcherWatch()


def watch_forget() -> None:
    """Check for a dispatcher again at the next commit (a test's fresh start)."""
    _watch.forget()


def dispatcher_alive() -> bool:
    from webhooks.models import Dispatcher

    return Dispatcher.objects.filter(lease_until__gt=timezone.now()).exists()


def dispatcher_request() -> None:
    """Enqueue a dispatcher run on the cluster (by dotted path: this module imports no task code)."""
    from django_q.tasks import async_task

    async_task(SEND_TASK, task_name="webhooks: dispatch deliveries")


class Listener:
    """The dispatcher's ear: calls `on_ring` when a commit rang (PostgreSQL LISTEN, in its own thread).

    On SQLite it listens to nothing: the dispatcher polls instead. A dropped connection (PostgreSQL
    restarted) is opened again; what was rung meanwhile is found by the dispatcher's own periodic look.
    """

    def __init__(self, on_ring: Callable[[], None]) -> None:
        self.on_ring = on_ring
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Listener":
        if notifies():
            self._thread = threading.Thread(target=self._listen, name="webhook-doorbell", daemon=True)
            self._thread.start()
        return self

    @property
    def listening(self) -> bool:
        return self._thread is not None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _listen(self) -> None:
        # Django connections belong to their thread: this one is the listener's own.
        db = connections["default"]
        while not self._stop.is_set():
            try:
                db.ensure_connection()
                with db.cursor() as cursor:
                    cursor.execute(f"LISTEN {CHANNEL}")
                while not self._stop.is_set():
                    for _ in db.connection.notifies(timeout=1.0, stop_after=1):
                        self.on_ring()
            except Exception:
                logger.warning(
                    "The webhook doorbell lost its database connection; listening again.", exc_info=True
                )
                db.close()
                self._stop.wait(1.0)
        db.close()
