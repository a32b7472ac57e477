"""django-q2 tasks that send due webhook deliveries."""

from django_q.tasks import async_task


def deliveries_kick() -> None:
    """Ask the cluster to send what is due now; the minute sweep catches anything this misses."""
    async_task("webhooks.tasks.deliveries_send_due", task_name="webhooks-send-due")


def deliveries_send_due() -> int:
    from webhooks.transport import deliveries_send_due as send

    return send()
