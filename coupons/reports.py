"""Report selectors for the admin: funnels, redemptions per day as bars, failure reasons, webhook health.

Every figure is an aggregate query, so a report costs the same on an offer of ten codes or ten million.
"""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate
from django.utils import timezone

from coupons.errors import CODE_REFUSALS
from coupons.models import Coupon, Offer, Redemption
from coupons.selectors import offer_stats
from webhooks.models import Delivery, Event, Subscription
from webhooks.selectors import HEALTH_WINDOW, subscriptions_health

CHART_DAYS = 90  # the chart shows at most this many most recent days
HEALTH_HOURS = int(HEALTH_WINDOW.total_seconds() // 3600)
CHART_WIDTH, CHART_HEIGHT, CHART_TOP = 720, 200, 12


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    top: int  # the value of the chart's top line
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def first(self) -> date:
        return self.bars[0].day

    @property
    def last(self) -> date:
        return self.bars[-1].day

    @property
    def top_y(self) -> int:
        return CHART_TOP

    @property
    def view_height(self) -> int:
        return self.height + 1  # room for the axis line's stroke


def bar_chart(
    per_day: dict[date, int], *, start: date | None = None, today: date | None = None
) -> Chart | None:
    """Bars for every day from `start` (or the first day with a value) to today, empty days included.

    An offer whose last redemption is older than the chart's span ends its chart on that day instead.
    """
    if not per_day:
        return None
    today = today or timezone.localdate()
    latest = max(per_day)
    last = max(today, latest) if (today - latest).days < CHART_DAYS else latest
    first = max(start or min(per_day), last - timedelta(days=CHART_DAYS - 1))
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    top = _nice_ceiling(max(per_day.get(d, 0) for d in days))
    slot = CHART_WIDTH / len(days)
    gap = slot * 0.15 if slot > 4 else 0
    bars = []
    for n, day in enumerate(days):
        count = per_day.get(day, 0)
        height = (CHART_HEIGHT - CHART_TOP) * count / top
        bars.append(Bar(day, count, round(n * slot + gap / 2, 2), round(CHART_HEIGHT - height, 2),
                        round(slot - gap, 2), round(height, 2)))  # fmt: skip
    return Chart(bars=bars, top=top)


def _nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, … at or above value, for a readable top line."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= max(value, 1):
                return step * factor
        step *= 10


def funnel(stats: dict) -> list[dict]:
    """Issued → viewed → redeemed, each with its share of the codes issued."""
    issued = stats["issued"]
    return [
        {
            "stage": stage,
            "count": stats[key],
            "percent": round(100 * stats[key] / issued, 1) if issued else 0.0,
        }
        for stage, key in (("Issued", "issued"), ("Viewed", "viewed"), ("Redeemed", "redeemed"))
    ]


def failure_reasons(*, offer: Offer | None = None) -> list[dict]:
    """How often redemptions were refused, by error code, most frequent first: one grouped query."""
    events = Event.objects.filter(type="coupon.redemption_failed")
    if offer is not None:
        events = events.filter(offer=offer)
    rows = (
        events.annotate(code=KT("data__error__code"))
        .values("code")
        .annotate(count=Count("id"))
        .order_by("-count", "code")
    )
    return [
        {
            "code": row["code"] or "unknown",
            "message": CODE_REFUSALS.get(row["code"], ""),
            "count": row["count"],
        }
        for row in rows
    ]


def offer_report(offer: Offer) -> dict:
    stats = offer_stats(offer)
    per_day = {date.fromisoformat(row["date"]): row["count"] for row in stats["redemptions_per_day"]}
    return {
        "stats": stats,
        "funnel": funnel(stats),
        "redemption_rate_percent": round(100 * stats["redemption_rate"], 1),
        "chart": bar_chart(per_day),
        "failures": failure_reasons(offer=offer),
    }


def offers_overview(offers: QuerySet[Offer]) -> list[dict]:
    """The funnel of each offer given (a page of them): one grouped query over codes, one over redemptions."""
    ids = [offer.id for offer in offers]
    codes = {
        row["offer"]: row
        for row in Coupon.objects.filter(offer__in=ids)
        .values("offer")
        .annotate(
            issued=Count("id", filter=Q(issued_at__isnull=False)),
            viewed=Count("id", filter=Q(viewed_at__isnull=False)),
            redeemed=Count("id", filter=Q(times_redeemed__gt=0)),
        )
        .order_by()
    }
    uses = {
        row["coupon__offer"]: row
        for row in Redemption.objects.filter(coupon__offer__in=ids, rolled_back_at__isnull=True)
        .values("coupon__offer")
        .annotate(redemptions=Count("id"), discount=Sum("discount_amount"))
        .order_by()
    }
    rows = []
    for offer in offers:
        issued, viewed, redeemed = (
            codes.get(offer.id, {}).get(k, 0) for k in ("issued", "viewed", "redeemed")
        )
        used = uses.get(offer.id, {})
        rows.append({
            "offer": offer, "issued": issued, "viewed": viewed, "redeemed": redeemed,
            "rate_percent": round(100 * redeemed / issued, 1) if issued else 0.0,
            "redemptions": used.get("redemptions", 0), "discount": used.get("discount") or Decimal("0"),
        })  # fmt: skip
    return rows


def redemptions_chart(*, days: int = 30) -> Chart | None:
    """Redemptions per day of every offer over the last `days` days."""
    today = timezone.localdate()
    since = today - timedelta(days=days - 1)
    start = timezone.make_aware(datetime.combine(since, time.min))
    rows = (
        Redemption.objects.filter(rolled_back_at__isnull=True, redeemed_at__gte=start)
        .annotate(day=TruncDate("redeemed_at"))
        .values("day")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    return bar_chart({row["day"]: row["count"] for row in rows}, start=since, today=today)


def webhook_health() -> list[dict]:
    """Per subscription: recent deliveries by outcome, with the success rate, median time and last error
    of its recent attempts from the webhooks app's health selector."""
    since = timezone.now() - HEALTH_WINDOW
    recent = Q(deliveries__created_at__gte=since)
    subscriptions = list(
        Subscription.objects.annotate(
            succeeded=Count("deliveries", filter=recent & Q(deliveries__status=Delivery.Status.SUCCEEDED)),
            failed=Count("deliveries", filter=recent & Q(deliveries__status=Delivery.Status.FAILED)),
            pending=Count("deliveries", filter=recent & Q(deliveries__status=Delivery.Status.PENDING)),
            retrying=Count(
                "deliveries",
                filter=recent & Q(deliveries__status=Delivery.Status.PENDING, deliveries__attempts__gt=0),
            ),
        ).order_by("id")
    )
    health = subscriptions_health([s.id for s in subscriptions])
    return [
        {
            "subscription": s,
            "succeeded": s.succeeded,
            "failed": s.failed,
            "pending": s.pending,
            "retrying": s.retrying,
            "health": health[s.id],
            "success_percent": None
            if health[s.id].success_rate is None
            else round(100 * health[s.id].success_rate, 1),
        }
        for s in subscriptions
    ]
