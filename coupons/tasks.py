"""django-q2 tasks for coupons: thin wrappers over the services."""
from coupons import services


def coupons_expire_task() -> int:
    return services.coupons_expire()
