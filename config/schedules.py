"""The cluster's periodic work, created idempotently after every migrate."""

from datetime import timedelta

from django.utils import timezone

# name -> (task path, minutes between runs). Sweeps skip missed slots after downtime (catch_up False):
# one run catches up on everything anyway.
SCHEDULES: dict[str, tuple[str, int]] = {
    "coupons: expire codes": ("coupons.tasks.coupons_expire_task", 5),
    "coupons: purge expired idempotency keys": ("coupons.tasks.idempotency_records_purge_task", 60),
    # Rate-limit counters whose minute has passed (they are never culled before).
    "coupons: purge throttle counters": ("coupons.tasks.throttle_counters_purge_task", 5),
    # Jobs whose runner was lost (Redis drops buffered tasks, a worker was killed) get a new one.
    "coupons: recover stale jobs": ("coupons.tasks.jobs_recover_stale_task", 1),
    # Retries that fell due, and deliveries whose claim expired with a killed worker.
    "webhooks: retry sweep": ("webhooks.tasks.deliveries_sweep_task", 1),
    "webhooks: disable failing subscriptions": ("webhooks.tasks.subscriptions_auto_disable_task", 60),
    "webhooks: purge old delivery log": ("webhooks.tasks.deliveries_purge_task", 1440),
    # Every reveal-page visitor gets a session; expired ones would pile up in the table for ever.
    "sessions: clear expired": ("coupons.tasks.sessions_clear_task", 60),
}


def schedules_ensure(**kwargs) -> None:
    """Create or update every schedule by name (django-q2's table has no unique name, so never insert twice)."""
    from django_q.models import Schedule

    now = timezone.now()
    for name, (func, minutes) in SCHEDULES.items():
        Schedule.objects.update_or_create(
            name=name,
            defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
            create_defaults={
                "func": func,
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
                "next_run": now + timedelta(seconds=30),
            },
        )
