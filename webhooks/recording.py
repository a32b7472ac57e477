"""What a finished request means and where it is written: attempts, delivery outcomes, subscription health.

Every attempt is kept; a delivery's outcome is written only while the claim is still the sender's own;
the circuit breaker and 410 Gone act on the subscription. One transaction records whatever requests have
ended so far, and only for deliveries that still exist, so a purge or a deleted subscription never rolls
back the record of the others.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from config.metrics import deliveries_outcome_count
from webhooks import retries
from webhooks.client import HttpResult
from webhooks.formats import Rendered
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.redaction import url_redacted
from webhooks.routing import routes_forget


@dataclass(frozen=True)
class Sent:
    """One request that ended (or could not be made), with the delivery it was for."""

    delivery: Delivery
    request: Rendered | None
    result: HttpResult
    started_at: datetime
    finished_at: datetime
    problem: str = ""  # why no request could be made


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    status: str
    status_code: int | None
    error: str
    at: datetime
    next_attempt_at: datetime | None = None
    gone: bool = False
    counts_for_circuit: bool = True

    @property
    def succeeded(self) -> bool:
        return self.status == Delivery.Status.SUCCEEDED


@dataclass
class Recorded:
    """What the record changed that a dispatcher must act on."""

    outcomes: list[Outcome] = field(default_factory=list)
    paused: dict[int, datetime] = field(default_factory=dict)  # circuit open: subscription → next probe
    resumed: set[int] = field(default_factory=set)  # subscriptions whose circuit closed
    retired: set[int] = field(default_factory=set)  # subscriptions turned off (410 Gone)


def outcome_of(delivery: Delivery, result: HttpResult, *, at: datetime, unsendable: bool = False) -> Outcome:
    """2xx succeeds; 410 fails the delivery and retires the subscription; anything else is retried."""
    code = result.status_code
    if result.succeeded:
        return Outcome(delivery, Delivery.Status.SUCCEEDED, code, "", at)
    if not result.error and code == 410:
        return Outcome(delivery, Delivery.Status.FAILED, code, "410 Gone: the receiver asked for no more webhooks.",
                       at, gone=True)  # fmt: skip
    error = result.error or http_error(result)
    if unsendable:  # the same data would fail again, and the receiver is not to blame
        return Outcome(delivery, Delivery.Status.FAILED, None, error, at, counts_for_circuit=False)
    retry_after = None
    if code in retries.RETRY_AFTER_STATUSES:
        retry_after = retries.retry_after_parse(result.retry_after, now=at)
    delay = retries.retry_delay(delivery.attempts + 1, retry_after=retry_after)
    if delay is None:
        return Outcome(delivery, Delivery.Status.FAILED, code, error, at)
    return Outcome(delivery, Delivery.Status.PENDING, code, error, at, next_attempt_at=at + delay)


def http_error(result: HttpResult) -> str:
    code = result.status_code
    if code is not None and 300 <= code < 400:
        target = f" to {url_redacted(result.location)}" if result.location else ""
        return f"Redirect ({code}){target} not followed: webhooks go only to the URL configured."
    return f"The receiver answered HTTP {code}."


def results_record(sent: list[Sent], *, token, healthy: set[int] | None = None) -> Recorded:
    """Record requests that ended, in one transaction; returns the outcomes and the circuit changes.

    `healthy` (kept by the caller across records) holds the subscriptions already known to have no
    failures on record, so a stream of successes costs no subscription update.
    """
    recorded = Recorded()
    if not sent:
        return recorded
    with transaction.atomic():
        # Locked so a purge or a subscription deletion waits for this record instead of breaking it.
        holders = dict(
            Delivery.objects.select_for_update()
            .filter(id__in=[s.delivery.id for s in sent])
            .values_list("id", "claim_token")
        )
        present = [s for s in sent if s.delivery.id in holders]
        Attempt.objects.bulk_create([_attempt(s) for s in present])
        ours = [s for s in present if holders[s.delivery.id] == token]
        recorded.outcomes = [
            outcome_of(s.delivery, s.result, at=s.finished_at, unsendable=s.request is None) for s in ours
        ]
        _deliveries_update(recorded.outcomes)
        _subscriptions_note(recorded, set() if healthy is None else healthy)
    _outcomes_count(recorded.outcomes)
    return recorded


def _outcomes_count(outcomes: list[Outcome]) -> None:
    kinds = Counter("retrying" if o.status == Delivery.Status.PENDING else o.status for o in outcomes)
    for kind, n in kinds.items():
        deliveries_outcome_count(kind, n)


def _attempt(sent: Sent) -> Attempt:
    delivery, request, result = sent.delivery, sent.request, sent.result
    return Attempt(
        delivery=delivery,
        subscription_id=delivery.subscription_id,
        started_at=sent.started_at,
        due_at=delivery.next_attempt_at,
        trigger=Attempt.Trigger.MANUAL if delivery.manual else Attempt.Trigger.SCHEDULED,
        request_method=request.method if request else delivery.subscription.http_method,
        request_url=_url_logged(request.url if request else delivery.subscription.url),
        request_body=request.body.decode(errors="replace") if request else "",
        status_code=result.status_code,
        duration_ms=result.duration_ms,
        response_excerpt=result.excerpt,
        error=sent.problem or result.error or ("" if result.succeeded else http_error(result)),
    )


_url_logged = lru_cache(maxsize=1024)(url_redacted)  # each subscription's URL, masked once


def _deliveries_update(outcomes: list[Outcome]) -> None:
    succeeded: dict[int | None, list[Outcome]] = defaultdict(list)
    for outcome in outcomes:
        if outcome.succeeded:
            succeeded[outcome.status_code].append(outcome)
    for code, group in succeeded.items():
        Delivery.objects.filter(id__in=[o.delivery.id for o in group]).update(
            status=Delivery.Status.SUCCEEDED, attempts=F("attempts") + 1, delivered_at=max(o.at for o in group),
            next_attempt_at=None, claimed_until=None, claim_token=None, last_status_code=code, last_error="",
            manual=False,
        )  # fmt: skip
    for outcome in outcomes:
        if not outcome.succeeded:
            Delivery.objects.filter(id=outcome.delivery.id).update(
                status=outcome.status, attempts=F("attempts") + 1, next_attempt_at=outcome.next_attempt_at,
                claimed_until=None, claim_token=None, last_status_code=outcome.status_code,
                last_error=outcome.error[:2000], manual=False,
            )  # fmt: skip


def _subscriptions_note(recorded: Recorded, healthy: set[int]) -> None:
    """Health per subscription: failing_since, the failures in a row, the circuit, and 410 Gone."""
    by_subscription: dict[int, list[Outcome]] = defaultdict(list)
    for outcome in recorded.outcomes:
        if outcome.counts_for_circuit:
            by_subscription[outcome.delivery.subscription_id].append(outcome)
    for subscription_id, outcomes in by_subscription.items():
        now = max(o.at for o in outcomes)
        if any(o.succeeded for o in outcomes):
            if subscription_id not in healthy:
                _subscription_healthy(subscription_id, recorded)
                healthy.add(subscription_id)
        else:
            healthy.discard(subscription_id)
            _subscription_failed(subscription_id, outcomes, now, recorded)
    for outcome in recorded.outcomes:
        if outcome.gone:
            _subscription_retire(outcome)
            recorded.retired.add(outcome.delivery.subscription_id)
    if recorded.retired:
        routes_forget()


def _subscription_healthy(subscription_id: int, recorded: Recorded) -> None:
    this = Subscription.objects.filter(id=subscription_id)
    if this.filter(circuit_opened_at__isnull=False).update(
        circuit_opened_at=None, circuit_probe_at=None, circuit_failed_probes=0
    ):
        recorded.resumed.add(subscription_id)
    this.filter(Q(consecutive_failures__gt=0) | Q(failing_since__isnull=False)).update(
        consecutive_failures=0, failing_since=None
    )


def _subscription_failed(
    subscription_id: int, outcomes: list[Outcome], now: datetime, recorded: Recorded
) -> None:
    this = Subscription.objects.filter(id=subscription_id)
    this.update(consecutive_failures=F("consecutive_failures") + len(outcomes))
    this.filter(failing_since__isnull=True).update(failing_since=now)
    failures = this.values_list("consecutive_failures", flat=True).first() or 0
    threshold = settings.WEBHOOKS_CIRCUIT_FAILURES
    if failures < threshold:
        return
    this.filter(circuit_opened_at__isnull=True).update(
        circuit_opened_at=now, circuit_probe_at=now + probe_delay(0), circuit_failed_probes=0
    )
    # Once open, only a probe's failure moves the next probe on; a request that was already in flight
    # when the circuit opened is no probe.
    probes = this.filter(circuit_opened_at__isnull=False, circuit_probe_at__lte=now)
    failed_probes = probes.values_list("circuit_failed_probes", flat=True).first()
    if failed_probes is not None:
        probes.update(
            circuit_failed_probes=failed_probes + 1, circuit_probe_at=now + probe_delay(failed_probes + 1)
        )
    probe_at = this.filter(circuit_opened_at__isnull=False).values_list("circuit_probe_at", flat=True).first()
    if probe_at is not None:
        recorded.paused[subscription_id] = probe_at


def probe_delay(failed_probes: int) -> timedelta:
    """How long a paused subscription waits before its next probe: the retry schedule, from its 5 s step on."""
    step = min(failed_probes + 2, len(retries.RETRY_DELAYS))
    return retries.retry_delay(step) or retries.RETRY_DELAYS[-1]


def _subscription_retire(outcome: Outcome) -> None:
    when = timezone.localtime(outcome.at).strftime("%Y-%m-%d %H:%M %Z")
    Subscription.objects.filter(id=outcome.delivery.subscription_id, active=True).update(
        active=False,
        disabled_at=outcome.at,
        disabled_reason=f"Disabled on {when}: the receiver answered 410 Gone, asking for no more webhooks.",
    )
