"""django-q2 tasks for coupons: thin wrappers over the services."""

from coupons import jobs, services
from coupons.counters import counters_purge


def coupons_expire_task() -> int:
    return services.coupons_expire()


def idempotency_records_purge_task() -> int:
    from coupons.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()


def throttle_counters_purge_task() -> int:
    return counters_purge()


def job_run_task(job_id: int) -> None:
    """Run a background job's pending chunks (on the bulk cluster); failures are recorded on the job."""
    jobs.job_run(job_id=job_id)


def jobs_recover_stale_task() -> int:
    return jobs.jobs_recover_stale()


def sessions_clear_task() -> int:
    """Delete expired sessions (mostly the reveal page's anonymous shoppers'); returns how many went."""
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
