"""Reads over subscriptions and deliveries: what an owner may see, and each subscription's health."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from coupons.errors import not_found
from coupons.selectors import Owner
from webhooks.models import Attempt, Delivery, Subscription

HEALTH_WINDOW = timedelta(hours=24)
SUCCESS = Q(status_code__gte=200, status_code__lt=300)


def subscriptions_of(owner: Owner) -> QuerySet[Subscription]:
    """An API key's subscriptions: those it (or another key of the same owner) created; staff sees all."""
    if owner.is_staff:
        return Subscription.objects.all()
    return Subscription.objects.filter(merchant_id=owner.merchant_id, distributor_id=owner.distributor_id)


def subscription_get(*, owner: Owner, subscription_id) -> Subscription:
    try:
        return subscriptions_of(owner).prefetch_related("offers").get(pk=int(subscription_id))
    except (Subscription.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Subscription") from None


def deliveries_of(owner: Owner) -> QuerySet[Delivery]:
    return Delivery.objects.filter(subscription__in=subscriptions_of(owner))


def attempts_of(owner: Owner) -> QuerySet[Attempt]:
    # Through the delivery rather than the attempt's own (denormalised, nullable) subscription column.
    return Attempt.objects.filter(delivery__subscription__in=subscriptions_of(owner))


def delivery_get(*, owner: Owner, delivery_id) -> Delivery:
    try:
        return deliveries_of(owner).select_related("event", "subscription").get(pk=int(delivery_id))
    except (Delivery.DoesNotExist, ValueError, TypeError, OverflowError):
        raise not_found("Delivery") from None


@dataclass(frozen=True)
class Health:
    attempts: int
    success_rate: float | None  # 0..1 over recent attempts, None without any
    p50_ms: int | None
    last_error: str


def subscriptions_health(subscription_ids: list[int], *, now: datetime | None = None) -> dict[int, Health]:
    """Success rate, median duration and last error over the last 24 hours' attempts, in three queries."""
    since = (now or timezone.now()) - HEALTH_WINDOW
    recent = Attempt.objects.filter(subscription_id__in=subscription_ids, started_at__gte=since)
    counts = {
        row["subscription_id"]: row
        for row in recent.values("subscription_id").annotate(
            total=Count("id"), ok=Count("id", filter=SUCCESS)
        )
    }
    medians = _medians(recent)
    last_failure = (
        Attempt.objects.filter(subscription_id=OuterRef("pk"), started_at__gte=since)
        .exclude(SUCCESS)
        .order_by("-started_at", "-id")
        .values("id")[:1]
    )
    failure_ids = dict(
        Subscription.objects.filter(id__in=subscription_ids)
        .annotate(last_failure_id=Subquery(last_failure))
        .values_list("id", "last_failure_id")
    )
    failures = Attempt.objects.in_bulk([i for i in failure_ids.values() if i])
    health = {}
    for subscription_id in subscription_ids:
        row = counts.get(subscription_id, {"total": 0, "ok": 0})
        failure = failures.get(failure_ids.get(subscription_id))
        health[subscription_id] = Health(
            attempts=row["total"],
            success_rate=row["ok"] / row["total"] if row["total"] else None,
            p50_ms=medians.get(subscription_id),
            last_error=_failure_text(failure) if failure else "",
        )
    return health


def _medians(attempts: QuerySet[Attempt]) -> dict[int, int]:
    """The median (lower middle) duration per subscription: rank durations in a window, keep the middle one."""
    ranked = (
        attempts.filter(duration_ms__isnull=False)
        .annotate(
            rank=Window(RowNumber(), partition_by=[F("subscription_id")], order_by=F("duration_ms").asc()),
            count=Window(Count("id"), partition_by=[F("subscription_id")]),
        )
        .filter(rank=(F("count") + 1) / 2)  # integer division: the lower middle
        .values_list("subscription_id", "duration_ms")
    )
    return dict(ranked)


def _failure_text(attempt: Attempt) -> str:
    return attempt.error or (f"HTTP {attempt.status_code}" if attempt.status_code else "Failed")
