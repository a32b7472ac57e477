"""django-q2 tasks for coupons: thin wrappers over the services."""
from coupons import services


def coupons_expire_task() -> int:
    return services.coupons_expire()


def idempotency_records_purge_task() -> int:
    from coupons.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()
