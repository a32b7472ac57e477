"""Sends due deliveries: claim a batch, render and sign, send concurrently, record every attempt and outcome."""

import logging
import math
import os
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from webhooks import retries
from webhooks.client import HttpResult, send
from webhooks.formats import EventMessage, Rendered, get_format
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.outbox import routes_forget
from webhooks.signing import signature_headers
from webhooks.validation import RESERVED_HEADERS

logger = logging.getLogger(__name__)

CLAIM_WAVES = 4  # a claimed batch is at most this many rounds of the thread pool
RUN_SECONDS = 45.0  # a run stops claiming after this; with its last batch it ends inside the task timeout
CLAIM_MARGIN = timedelta(seconds=30)


# --- claiming ------------------------------------------------------------------------------------


def batch_size() -> int:
    return max(settings.WEBHOOKS_SEND_CONCURRENCY, 1) * CLAIM_WAVES


def claim_duration() -> timedelta:
    """Long enough for a whole batch to time out wave after wave; a killed sender's claim expires after it."""
    waves = math.ceil(batch_size() / max(settings.WEBHOOKS_SEND_CONCURRENCY, 1))
    return timedelta(seconds=waves * settings.WEBHOOKS_TOTAL_TIMEOUT) + CLAIM_MARGIN


def _due(now: datetime):
    return Delivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
        subscription__active=True,
    )


def deliveries_claim(*, now: datetime, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries for this sender alone until the claim expires."""
    token, until = uuid.uuid4(), now + claim_duration()
    with transaction.atomic():
        due = _due(now).order_by("next_attempt_at", "id")
        if connection.vendor == "postgresql":
            # Rows another sender is claiming right now are skipped, not waited for.
            ids = list(
                due.select_for_update(skip_locked=True, of=("self",)).values_list("id", flat=True)[:limit]
            )
            claimable = Delivery.objects.filter(id__in=ids)
        else:
            # No row locks here: the update itself only takes rows nobody holds (compare and set).
            ids = list(due.values_list("id", flat=True)[:limit])
            claimable = _due(now).filter(id__in=ids)
        if not ids:
            return []
        claimable.update(claimed_until=until, claim_token=token)
    return list(
        Delivery.objects.filter(id__in=ids, claim_token=token)
        .select_related("event", "subscription")
        .order_by("next_attempt_at", "id")
    )


# --- preparing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    delivery: Delivery
    request: Rendered | None
    problem: str = ""  # why no request could be made


def delivery_request(delivery: Delivery, *, sent_at: datetime) -> Rendered:
    """The exact request of one delivery: the format's body, the subscription's headers, the signatures."""
    subscription, event = delivery.subscription, delivery.event
    message = EventMessage(id=str(event.uuid), type=event.type, created_at=event.created_at, data=event.data)
    rendered = get_format(subscription.format).render(
        message, url=subscription.url, http_method=subscription.http_method, params=subscription.params
    )
    # Saved headers were checked; a reserved one that slipped in (older data) is still never sent.
    headers = {
        str(name): str(value)
        for name, value in (subscription.headers or {}).items()
        if str(name).lower() not in RESERVED_HEADERS
    }
    headers |= rendered.headers
    headers["User-Agent"] = settings.WEBHOOKS_USER_AGENT
    headers |= signature_headers(
        message_id=delivery.message_id,
        body=rendered.body,
        secrets=subscription.signing_secrets(sent_at),
        sent_at=sent_at,
    )
    return Rendered(rendered.method, rendered.url, headers, rendered.body)


def _prepare(delivery: Delivery) -> Outgoing:
    try:
        return Outgoing(delivery, delivery_request(delivery, sent_at=datetime.now(UTC)))
    except Exception as error:  # noqa: BLE001 - one bad delivery must not stop the batch
        logger.warning("Webhook delivery %s could not be rendered: %s", delivery.id, error)
        return Outgoing(delivery, None, f"Could not build the request: {error}")


# --- sending -------------------------------------------------------------------------------------

_pool: ThreadPoolExecutor | None = None
_pool_key: tuple[int, int] | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    """One bounded pool per process (and per setting), its threads keeping their pooled sessions."""
    global _pool, _pool_key
    key = (os.getpid(), max(settings.WEBHOOKS_SEND_CONCURRENCY, 1))
    with _pool_lock:
        if _pool is None or _pool_key != key:
            _pool = ThreadPoolExecutor(max_workers=key[1], thread_name_prefix="webhook-send")
            _pool_key = key
        return _pool


def _send(outgoing: Outgoing) -> HttpResult:
    if outgoing.request is None:
        moment = time.monotonic()
        return HttpResult(started=moment, finished=moment, error=outgoing.problem)
    return send(
        outgoing.request,
        connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
        total_timeout=settings.WEBHOOKS_TOTAL_TIMEOUT,
    )


def deliveries_send_due(*, now: datetime | None = None, run_seconds: float = RUN_SECONDS) -> int:
    """Send everything due, batch after batch, until nothing is due or the run's time is up; returns attempts made.

    `now` fixes the clock for the whole run (tests); otherwise each batch reads `retries.clock()`.
    """
    started, attempts, helped = time.monotonic(), 0, False
    while True:
        batch = deliveries_claim(now=now or retries.clock(), limit=batch_size())
        if not batch:
            return attempts
        if not helped and len(batch) == batch_size():
            # A full batch means a backlog: ring once more so an idle worker claims alongside this one
            # (claims never overlap). Each run asks at most once, so helpers stop when the backlog does.
            helped = True
            _ask_for_another_run()
        attempts += deliveries_send(batch, now=now)
        if time.monotonic() - started > run_seconds:
            _ask_for_another_run()
            return attempts


def deliveries_send(deliveries: list[Delivery], *, now: datetime | None = None) -> int:
    """Send claimed deliveries concurrently and record what happened to each.

    A given `now` freezes the clock (every attempt happens at that moment); otherwise attempts are
    timed from the clock plus the monotonic time they took.
    """
    prepared = [_prepare(delivery) for delivery in deliveries]
    base_time, base_clock = now or retries.clock(), time.monotonic()
    results = list(_executor().map(_send, prepared))

    def moment(monotonic: float) -> datetime:
        return base_time if now is not None else base_time + timedelta(seconds=monotonic - base_clock)

    outcomes, attempts = [], []
    for out, result in zip(prepared, results, strict=True):
        outcomes.append(
            outcome_of(out.delivery, result, at=moment(result.finished), unsendable=out.request is None)
        )
        attempts.append(_attempt(out, result, started_at=moment(result.started)))
    _record(attempts, outcomes, now=base_time)
    return len(deliveries)


def _ask_for_another_run() -> None:
    from webhooks.tasks import deliveries_kick

    deliveries_kick()


# --- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    status: str
    status_code: int | None
    error: str
    at: datetime
    next_attempt_at: datetime | None = None
    gone: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status == Delivery.Status.SUCCEEDED


def outcome_of(delivery: Delivery, result: HttpResult, *, at: datetime, unsendable: bool = False) -> Outcome:
    """2xx succeeds; 410 fails the delivery and retires the subscription; anything else is retried."""
    code = result.status_code
    if not result.error and code is not None and 200 <= code < 300:
        return Outcome(delivery, Delivery.Status.SUCCEEDED, code, "", at)
    if not result.error and code == 410:
        return Outcome(delivery, Delivery.Status.FAILED, code, "410 Gone: the receiver asked for no more webhooks.",
                       at, gone=True)  # fmt: skip
    error = result.error or _http_error(result)
    if unsendable:
        return Outcome(delivery, Delivery.Status.FAILED, None, error, at)  # the same data would fail again
    retry_after = None
    if code in retries.RETRY_AFTER_STATUSES:
        retry_after = retries.retry_after_parse(result.retry_after, now=at)
    delay = retries.retry_delay(delivery.attempts + 1, retry_after=retry_after)
    if delay is None:
        return Outcome(delivery, Delivery.Status.FAILED, code, error, at)
    return Outcome(delivery, Delivery.Status.PENDING, code, error, at, next_attempt_at=at + delay)


def _http_error(result: HttpResult) -> str:
    code = result.status_code
    if code is not None and 300 <= code < 400:
        target = f" to {result.location}" if result.location else ""
        return f"Redirect ({code}){target} not followed: webhooks go only to the URL configured."
    return f"The receiver answered HTTP {code}."


def _attempt(outgoing: Outgoing, result: HttpResult, *, started_at: datetime) -> Attempt:
    delivery, request = outgoing.delivery, outgoing.request
    return Attempt(
        delivery=delivery,
        subscription_id=delivery.subscription_id,
        started_at=started_at,
        trigger=Attempt.Trigger.MANUAL if delivery.manual else Attempt.Trigger.SCHEDULED,
        request_method=request.method if request else delivery.subscription.http_method,
        request_url=request.url if request else delivery.subscription.url,
        request_body=request.body.decode(errors="replace") if request else "",
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        response_excerpt=result.excerpt,
        error=result.error or ("" if _is_success(result) else _http_error(result)),
    )


def _is_success(result: HttpResult) -> bool:
    return result.status_code is not None and 200 <= result.status_code < 300


def _record(attempts: list[Attempt], outcomes: list[Outcome], *, now: datetime) -> None:
    """Every attempt is kept; a delivery's outcome is written only while its claim is still this sender's."""
    succeeded: dict[tuple, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.succeeded:
            succeeded[(outcome.status_code, outcome.delivery.claim_token)].append(outcome)
    with transaction.atomic():
        Attempt.objects.bulk_create(attempts)
        for (code, token), group in succeeded.items():
            Delivery.objects.filter(id__in=[o.delivery.id for o in group], claim_token=token).update(
                status=Delivery.Status.SUCCEEDED, attempts=F("attempts") + 1, delivered_at=max(o.at for o in group),
                next_attempt_at=None, claimed_until=None, claim_token=None, last_status_code=code, last_error="",
                manual=False,
            )  # fmt: skip
        for outcome in outcomes:
            if not outcome.succeeded:
                Delivery.objects.filter(id=outcome.delivery.id, claim_token=outcome.delivery.claim_token).update(
                    status=outcome.status, attempts=F("attempts") + 1, next_attempt_at=outcome.next_attempt_at,
                    claimed_until=None, claim_token=None, last_status_code=outcome.status_code,
                    last_error=outcome.error[:2000], manual=False,
                )  # fmt: skip
        _subscriptions_note(outcomes, now=now)


def _subscriptions_note(outcomes: list[Outcome], *, now: datetime) -> None:
    """failing_since starts at a subscription's first failure and ends with any success; 410 retires it."""
    succeeded = {o.delivery.subscription_id for o in outcomes if o.succeeded}
    failed = {o.delivery.subscription_id for o in outcomes if not o.succeeded} - succeeded
    if succeeded:
        Subscription.objects.filter(id__in=succeeded, failing_since__isnull=False).update(failing_since=None)
    if failed:
        Subscription.objects.filter(id__in=failed, failing_since__isnull=True).update(failing_since=now)
    gone = {o.delivery.subscription_id: o for o in outcomes if o.gone}
    for subscription_id, outcome in gone.items():
        when = timezone.localtime(outcome.at).strftime("%Y-%m-%d %H:%M %Z")
        Subscription.objects.filter(id=subscription_id, active=True).update(
            active=False,
            disabled_at=outcome.at,
            disabled_reason=f"Disabled on {when}: the receiver answered 410 Gone, asking for no more webhooks.",
        )
    if gone:
        routes_forget()
