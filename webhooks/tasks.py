"""django-q2 tasks for webhooks; each catches its own errors, because the broker never retries them."""

import logging

from django.core.cache import cache
from django_q.tasks import async_task

logger = logging.getLogger(__name__)

# "A send task is queued": set by the first commit of a burst, cleared when the task starts, so a burst
# of commits enqueues one task while a commit made after the task started still enqueues the next one.
SEND_QUEUED_FLAG = "webhooks:send-task-queued"
# A queued task the broker lost must not silence the doorbell for long (the minute sweep covers it).
SEND_QUEUED_FLAG_SECONDS = 30


def deliveries_kick() -> None:
    """Ask the cluster to send what is due now; never raises, because it runs after a business commit."""
    try:
        if cache.add(SEND_QUEUED_FLAG, 1, timeout=SEND_QUEUED_FLAG_SECONDS):
            async_task("webhooks.tasks.deliveries_send_task", task_name="webhooks: send due deliveries")
    except Exception:
        # The change is committed and its deliveries are rows: the sweep will send them.
        logger.exception("Could not enqueue the webhook send task; the retry sweep will send instead.")


def deliveries_send_task() -> int:
    """Send everything due now (the doorbell's task)."""
    try:
        cache.delete(SEND_QUEUED_FLAG)
    except Exception:
        logger.exception("Could not clear the webhook send flag.")
    return _guarded("send due deliveries", _send_due)


def deliveries_sweep_task() -> int:
    """Every minute: send retries that fell due and deliveries whose claim expired with a killed worker."""
    return _guarded("sweep due deliveries", _send_due)


def subscriptions_auto_disable_task() -> int:
    from webhooks.services import subscriptions_auto_disable

    return _guarded("disable failing subscriptions", subscriptions_auto_disable)


def deliveries_purge_task() -> int:
    from webhooks.services import deliveries_purge

    return _guarded("purge old deliveries", deliveries_purge)


def _send_due() -> int:
    from webhooks.transport import deliveries_send_due

    return deliveries_send_due()


def _guarded(what: str, work) -> int:
    try:
        return work()
    except Exception:
        logger.exception("Webhook task failed: %s", what)
        return 0
