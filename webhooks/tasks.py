"""django-q2 tasks for webhooks; each catches its own errors, because the broker never retries them."""

import logging

logger = logging.getLogger(__name__)


def deliveries_send_task() -> int:
    """A dispatcher run, asked for by a commit that found none running or by the run before it."""
    from django_q.conf import Conf

    from webhooks.transport import HANDOVER_WAIT, deliveries_send_due, dispatcher_run

    if Conf.SYNC:  # tasks run inline (tests, tools): send what is due and return
        return _guarded("send due deliveries", deliveries_send_due)
    return _guarded("dispatch deliveries", lambda: dispatcher_run(wait=HANDOVER_WAIT))


def deliveries_sweep_task() -> int:
    """Every minute, the safety net: start a dispatcher if none is running (lost broker message, killed worker)."""
    from webhooks.transport import dispatcher_run

    return _guarded("sweep due deliveries", dispatcher_run)


def subscriptions_auto_disable_task() -> int:
    from webhooks.services import subscriptions_auto_disable

    return _guarded("disable failing subscriptions", subscriptions_auto_disable)


def deliveries_purge_task() -> int:
    from webhooks.services import deliveries_purge

    return _guarded("purge old deliveries", deliveries_purge)


def _guarded(what: str, work) -> int:
    try:
        return work()
    except Exception:
        logger.exception("Webhook task failed: %s", what)
        return 0
