"""Prometheus metrics: counters the processes update, gauges read from the database at scrape time, /metrics."""

from __future__ import annotations

import hmac
import logging
import os
import time

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

# Before prometheus_client is imported: it keeps values in files when this directory is set (settings set it).
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess  # noqa: E402
from prometheus_client.core import GaugeMetricFamily  # noqa: E402
from prometheus_client.exposition import CONTENT_TYPE_LATEST  # noqa: E402

logger = logging.getLogger(__name__)

# Counters and histograms live in PROMETHEUS_MULTIPROC_DIR (settings make sure it is set), one file per
# process, so a scrape of any web worker sums every gunicorn worker and every cluster process of the host.
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route pattern, method and status.",
    ["route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route pattern, method and status.",
    ["route", "method", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
REDEMPTIONS = Counter("coupon_redemptions_total", "Successful redemptions (first uses; replays not counted).")
REFUSALS = Counter("coupon_redemption_refusals_total", "Redemptions refused, by reason.", ["reason"])
DELIVERIES = Counter(
    "webhook_deliveries_total", "Webhook delivery attempts recorded, by outcome.", ["outcome"]
)
CODES_GENERATED = Counter("coupon_codes_generated_total", "Codes written by generation and import jobs.")


def redemption_count() -> None:
    REDEMPTIONS.inc()


def refusal_count(reason: str) -> None:
    REFUSALS.labels(reason=reason).inc()


def deliveries_outcome_count(outcome: str, n: int = 1) -> None:
    """Called by the delivery engine after it records results: outcome is e.g. succeeded, retrying, failed."""
    if n:
        DELIVERIES.labels(outcome=outcome).inc(n)


def codes_generated_count(n: int) -> None:
    if n:
        CODES_GENERATED.inc(n)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class MetricsMiddleware:
    """Counts and times every request by its URL pattern (never the raw path: ids would explode the series)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = "/" + match.route if match is not None and match.route else "unmatched"
        method = request.method if request.method in _METHODS else "other"  # a client can send any word
        labels = (route, method, str(response.status_code))
        HTTP_REQUESTS.labels(*labels).inc()
        HTTP_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return response


class DatabaseCollector:
    """Gauges computed by a few indexed queries when Prometheus scrapes, so they are right across all hosts."""

    def collect(self):
        try:
            yield from self._collect()
        except DatabaseError as exc:
            # A scrape during a database outage still answers (with the counters): the outage has its own alert.
            logger.warning("Metrics: database gauges unavailable: %s", exc)

    def _collect(self):
        from django.db.models import Count, Min
        from django.utils import timezone

        from coupons.models import Job
        from webhooks.models import Delivery, Subscription

        now = timezone.now()
        pending = Delivery.objects.filter(status=Delivery.Status.PENDING)
        stats = pending.aggregate(n=Count("id"))
        oldest = pending.filter(next_attempt_at__lte=now).aggregate(at=Min("next_attempt_at"))["at"]
        yield GaugeMetricFamily(
            "webhook_deliveries_pending", "Deliveries not yet succeeded or failed.", stats["n"]
        )
        yield GaugeMetricFamily(
            "webhook_oldest_due_delivery_age_seconds",
            "How long the oldest due delivery has waited past its due time (0 when none is due).",
            (now - oldest).total_seconds() if oldest else 0.0,
        )
        yield GaugeMetricFamily(
            "webhook_subscriptions_circuit_open",
            "Active subscriptions whose receiver keeps failing (sending to them is paused or backing off).",
            _circuit_open(Subscription),
        )
        jobs = GaugeMetricFamily("coupon_jobs", "Generation and import jobs, by state.", labels=["state"])
        counts = dict(Job.objects.order_by().values_list("state").annotate(n=Count("id")))
        for state in Job.State.values:
            jobs.add_metric([state], counts.get(state, 0))
        yield jobs
        queue = GaugeMetricFamily(
            "task_queue_length", "Tasks waiting in the broker, by cluster.", labels=["cluster"]
        )
        for cluster, size in broker_queue_lengths().items():
            queue.add_metric([cluster], size)
        yield queue


def _circuit_open(Subscription) -> int:
    return Subscription.objects.filter(active=True, circuit_opened_at__isnull=False).count()


def broker_queue_lengths() -> dict[str, int]:
    """Tasks waiting in each django-q2 cluster's queue (ORM table rows or Redis list length)."""
    from django_q.brokers import get_broker

    clusters = ["platform", *settings.Q_CLUSTER.get("ALT_CLUSTERS", {})]
    lengths = {}
    for name in clusters:
        try:
            broker = get_broker(name)
            lengths[name] = int(broker.queue_size() or 0)
        except Exception as exc:  # a broker outage must not fail the scrape; /readyz reports it
            logger.warning("Metrics: queue length of %s unavailable: %s", name, exc)
    return lengths


def registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(DatabaseCollector())
    return registry


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics with `Authorization: Bearer <METRICS_TOKEN>`; 404 when no token is configured."""
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Metrics are off: set METRICS_TOKEN.\n", status=404, content_type="text/plain")
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), token.encode()):
        response = HttpResponse("A valid metrics token is required.\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def multiprocess_dir_prepare(path: str) -> None:
    """Create the directory and clear files left by processes no longer running (their counters restart).

    Files of live processes stay: the host's cluster may share the directory with this web server."""
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        pid = name.rsplit("_", 1)[-1].removesuffix(".db")
        if name.endswith(".db") and not (pid.isdigit() and _running(int(pid))):
            os.remove(os.path.join(path, name))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_dead(pid: int) -> None:
    """gunicorn's child_exit: a dead worker's live gauges go; its counters keep counting in the sum."""
    multiprocess.mark_process_dead(pid)
