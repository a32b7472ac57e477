"""The dispatcher: claims due deliveries fairly, sends them, and records each result as its request ends.

A dispatcher runs inside the django-q2 cluster as a long task (WEBHOOKS_DISPATCHER_RUN_SECONDS), then
hands over to the next run. It holds one of WEBHOOKS_DISPATCHERS slots, and a lease on every
subscription it sends for, so however many clusters run, one subscription never has more than
WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION requests in flight. Each subscription is a lane of its own:
a receiver that hangs fills only its own lane, and lanes are served in turn. It wakes on the doorbell
(PostgreSQL NOTIFY), polls on SQLite, and sleeps until the next retry falls due.
"""

import logging
import queue
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import Exists, Min, OuterRef, Q
from django.utils import timezone

from webhooks import doorbell, retries
from webhooks.client import HttpResult, Sender
from webhooks.formats import Rendered
from webhooks.models import Delivery, Dispatcher, Subscription
from webhooks.recording import Sent, results_record
from webhooks.rendering import delivery_request

logger = logging.getLogger(__name__)

# A lane claims this many deliveries ahead: its claims are renewed while they wait, so size costs nothing.
CLAIM_AHEAD = 128
LOOK_EVERY = 1.0  # seconds between looks for work when nothing rang (a lost NOTIFY, a retry due)
LANE_IDLE_SECONDS = 5.0  # a lane with nothing to do keeps its subscription's lease this long
HANDED_PER_CAP = 2  # a lane keeps this many rounds of its cap handed to the sender
HANDOVER_WAIT = 5.0  # a successor waits this long for its predecessor to free a slot
# Requests that ended are recorded together once this many have, or the first has waited this long.
RECORD_BATCH = 256
RECORD_DELAY = 0.02
MIN_LOOK_GAP = 0.01  # the doorbell rings on every commit: look at most this often


def claim_window() -> timedelta:
    """How long a claim lasts unless renewed: the deadline of a request plus a lease."""
    return timedelta(seconds=settings.WEBHOOKS_TOTAL_TIMEOUT + settings.WEBHOOKS_LEASE_SECONDS)


def lease_window() -> timedelta:
    return timedelta(seconds=settings.WEBHOOKS_LEASE_SECONDS)


def _due(now: datetime):
    return Delivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
    )


@dataclass
class Held:
    """A claimed delivery, waiting in its lane or in flight."""

    delivery: Delivery
    claimed_until: datetime
    request: Rendered | None = None


@dataclass
class Lane:
    """One subscription this dispatcher sends for."""

    subscription_id: int
    waiting: deque[Held] = field(default_factory=deque)
    handed: int = 0  # given to the sender: waiting there for a slot, or in flight
    exhausted: bool = False  # its last claim found less than it asked for
    paused: bool = False  # circuit open: only a probe goes out, once probe_at has come
    probe_at: datetime | None = None
    idle_since: float | None = None


class Dispatch:
    """One dispatcher run. `continuous` runs hold a slot and live for a run; others drain what is due.

    `now` freezes the schedule's clock (tests): every claim and attempt happens at that moment.
    """

    def __init__(self, *, continuous: bool, now: datetime | None = None, run_seconds: float | None = None):
        self.continuous = continuous
        self.frozen_now = now
        self.run_seconds = settings.WEBHOOKS_DISPATCHER_RUN_SECONDS if run_seconds is None else run_seconds
        self.token = uuid.uuid4()
        self.cap = max(settings.WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION, 1)
        self.concurrency = max(settings.WEBHOOKS_SEND_CONCURRENCY, 1)
        self.lanes: dict[int, Lane] = {}
        self.turns: deque[int] = deque()  # lanes in the order they are served
        self.handed: dict[int, Held] = {}  # by delivery id
        self.ended: queue.SimpleQueue = queue.SimpleQueue()
        self.wake = threading.Event()
        self.rung = True  # look for work at once
        self.slot: int | None = None
        self.attempts = 0
        self.next_look = 0.0
        self.looked_at = 0.0
        self.renewed_at = time.monotonic()
        self.unrecorded: list[tuple[Held, HttpResult, float]] = []
        self.unrecorded_since = 0.0
        self.healthy: set[int] = set()  # subscriptions whose health this run knows needs no update

    def clock(self) -> datetime:
        return self.frozen_now or retries.clock()

    # --- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        """Dispatch until the run ends (continuous) or nothing is due (drain); returns attempts made."""
        started = time.monotonic()
        sender = Sender(
            concurrency=self.concurrency,
            connect_timeout=settings.WEBHOOKS_CONNECT_TIMEOUT,
            total_timeout=settings.WEBHOOKS_TOTAL_TIMEOUT,
            on_result=self._ended,
        )
        listener = doorbell.Listener(self._ring).start() if self.continuous else None
        self.sender = sender
        try:
            while True:
                try:
                    self._collect()
                    if self._record_due():
                        self._record()
                    if self.continuous and (
                        time.monotonic() - started > self.run_seconds or not self._renew()
                    ):
                        break
                    if not self._step() and not self.continuous:
                        break
                except DatabaseError:
                    if not self.continuous:
                        raise
                    # The database went away (a restart, a failover): start over on a new connection; the
                    # requests in flight are recorded once it is back, or their claims lapse.
                    logger.exception("The webhook dispatcher lost the database; trying again in a second.")
                    connection.close()
                    time.sleep(1)
                self.wake.wait(self._sleep())
                self.wake.clear()
        finally:
            if listener is not None:
                listener.stop()
            self._stop()
            sender.close()
        return self.attempts

    def _step(self) -> bool:
        """Look for work, claim, send; False when there is nothing left to do at all."""
        now = self.clock()
        found = False
        busy = any(not lane.exhausted or lane.waiting for lane in self.lanes.values())
        moment = time.monotonic()
        rung = self.rung and moment - self.looked_at >= MIN_LOOK_GAP  # a burst of commits: one look
        if rung or moment >= self.next_look or not (busy or self.continuous):
            self.rung, self.looked_at = False, moment
            found = self._look(now)
            self.next_look = time.monotonic() + self._look_interval(now)
        self._claim(now)
        self._submit(now)
        self._lanes_retire()
        return found or busy or bool(self.handed or self.unrecorded)

    def _sleep(self) -> float:
        if self.unrecorded:
            return max(RECORD_DELAY - (time.monotonic() - self.unrecorded_since), 0.0)
        if self.rung:
            return max(MIN_LOOK_GAP - (time.monotonic() - self.looked_at), 0.0)
        if not self.continuous:
            return 0.05
        return max(min(self.next_look - time.monotonic(), LOOK_EVERY), 0.0)

    def _look_interval(self, now: datetime) -> float:
        if not self.continuous:
            return settings.WEBHOOKS_POLL_SECONDS
        if not doorbell.notifies():
            return settings.WEBHOOKS_POLL_SECONDS
        next_due = self._next_due(now)
        if next_due is None:
            return LOOK_EVERY
        return min(max((next_due - now).total_seconds(), 0.0), LOOK_EVERY)

    def _ring(self) -> None:
        self.rung = True
        self.wake.set()

    def _ended(self, held: Held, result: HttpResult) -> None:
        # Called in the sender's thread as each request ends.
        self.ended.put((held, result))
        self.wake.set()

    # --- finding work --------------------------------------------------------------------------------

    def _look(self, now: datetime) -> bool:
        """Take the lease of every subscription with due deliveries that no other dispatcher sends for."""
        real_now = timezone.now()
        free = Q(dispatch_until__isnull=True) | Q(dispatch_until__lt=real_now) | Q(dispatch_token=self.token)
        wanted = list(
            Subscription.objects.filter(free, active=True)
            .filter(Q(circuit_opened_at__isnull=True) | Q(circuit_probe_at__lte=now))
            .filter(Exists(_due(now).filter(subscription_id=OuterRef("pk"))))
            .values_list("id", "circuit_opened_at", "circuit_probe_at")
        )
        if not wanted:
            return False
        ids = [id_ for id_, _, _ in wanted]
        Subscription.objects.filter(free, id__in=ids).update(
            dispatch_token=self.token, dispatch_until=real_now + lease_window()
        )
        ours = set(
            Subscription.objects.filter(id__in=ids, dispatch_token=self.token).values_list("id", flat=True)
        )
        for id_, opened_at, probe_at in wanted:
            if id_ in ours:
                lane = self.lanes.get(id_)
                if lane is None:
                    lane = self.lanes[id_] = Lane(id_)
                    self.turns.append(id_)
                lane.exhausted, lane.idle_since = False, None
                lane.paused, lane.probe_at = opened_at is not None, probe_at
        return bool(ours)

    def _next_due(self, now: datetime) -> datetime | None:
        """When the next retry or probe falls due (a sleep's end)."""
        retry = Delivery.objects.filter(status=Delivery.Status.PENDING, next_attempt_at__gt=now).aggregate(
            at=Min("next_attempt_at")
        )["at"]
        probe = Subscription.objects.filter(active=True, circuit_probe_at__gt=now).aggregate(
            at=Min("circuit_probe_at")
        )["at"]
        return min((t for t in (retry, probe) if t is not None), default=None)

    # --- claiming ------------------------------------------------------------------------------------

    def _claim(self, now: datetime) -> None:
        """Claim for every lane running low, in one transaction."""
        wants = {}
        for lane in self.lanes.values():
            if lane.exhausted:
                continue
            if lane.paused:
                # One probe at a time while the circuit is open, once it is due.
                due = lane.probe_at is None or lane.probe_at <= now
                wants[lane.subscription_id] = 1 if due and not (lane.handed or lane.waiting) else 0
            elif len(lane.waiting) < CLAIM_AHEAD // 8:
                wants[lane.subscription_id] = CLAIM_AHEAD - len(lane.waiting)
        wants = {sid: n for sid, n in wants.items() if n > 0}
        if not wants:
            return
        claimed, exhausted = deliveries_claim(wants=wants, now=now, token=self.token)
        for subscription_id in exhausted:
            self.lanes[subscription_id].exhausted = True
        until = now + claim_window()
        for delivery in claimed:
            self.lanes[delivery.subscription_id].waiting.append(Held(delivery, until))

    def _renew(self) -> bool:
        """Every third of a lease: extend the slot, the lanes' leases and the claims; False if the slot was lost."""
        moment = time.monotonic()
        if moment - self.renewed_at < settings.WEBHOOKS_LEASE_SECONDS / 3:
            return True
        self.renewed_at = moment
        real_now = timezone.now()
        try:
            kept = Dispatcher.objects.filter(slot=self.slot, token=self.token).update(
                lease_until=real_now + lease_window()
            )
            if self.lanes:
                Subscription.objects.filter(id__in=list(self.lanes), dispatch_token=self.token).update(
                    dispatch_until=real_now + lease_window()
                )
            held = [h for lane in self.lanes.values() for h in lane.waiting] + list(self.handed.values())
            held += [h for h, _, _ in self.unrecorded]
            if held:
                until = self.clock() + claim_window()
                Delivery.objects.filter(id__in=[h.delivery.id for h in held], claim_token=self.token).update(
                    claimed_until=until
                )
                for h in held:
                    h.claimed_until = until
        except Exception:
            logger.exception("The webhook dispatcher could not renew its leases; it will try again.")
            return True
        return bool(kept)

    # --- sending -------------------------------------------------------------------------------------

    def _submit(self, now: datetime) -> None:
        """Hand each lane's waiting deliveries, rendered and signed, to the sender: a lane keeps up to twice
        its cap handed over, so the sender starts the next the moment one ends."""
        deadline = timedelta(seconds=settings.WEBHOOKS_TOTAL_TIMEOUT + 1)
        batches: dict[int, tuple[int, list[tuple[Held, Rendered]]]] = {}
        for subscription_id in list(self.turns):
            lane = self.lanes[subscription_id]
            cap = 1 if lane.paused else self.cap
            while lane.waiting and lane.handed < HANDED_PER_CAP * cap:
                held = lane.waiting.popleft()
                if held.claimed_until - now < deadline:
                    continue  # the claim would not outlive the request: let it lapse and be claimed again
                lane.handed += 1
                self.handed[held.delivery.id] = held
                request = self._render(held)
                if request is not None:
                    batches.setdefault(subscription_id, (cap, []))[1].append((held, request))
        if batches:
            self.sender.hand(batches)

    def _render(self, held: Held) -> Rendered | None:
        try:
            held.request = delivery_request(held.delivery, sent_at=datetime.now(UTC))
        except Exception as error:  # noqa: BLE001 - one bad delivery must not stop the others
            logger.warning("Webhook delivery %s could not be rendered: %s", held.delivery.id, error)
            moment = time.monotonic()
            self._ended(
                held,
                HttpResult(started=moment, finished=moment, error=f"Could not build the request: {error}"),
            )
        return held.request

    # --- recording -----------------------------------------------------------------------------------

    def _collect(self) -> None:
        """Take the requests that ended: their lane's slot is free at once, their record follows shortly."""
        while True:
            try:
                held, result = self.ended.get_nowait()
            except queue.Empty:
                return
            self.handed.pop(held.delivery.id, None)
            self.lanes[held.delivery.subscription_id].handed -= 1
            if not self.unrecorded:
                self.unrecorded_since = time.monotonic()
            self.unrecorded.append((held, result, time.monotonic()))

    def _record_due(self) -> bool:
        """Record once a batch is full, RECORD_DELAY has passed, or nothing else is left to send."""
        return bool(self.unrecorded) and (
            len(self.unrecorded) >= RECORD_BATCH
            or time.monotonic() - self.unrecorded_since >= RECORD_DELAY
            or not (self.handed or any(lane.waiting for lane in self.lanes.values()))
        )

    def _record(self) -> None:
        """Record the requests that ended, then let the lanes act on what it changed."""
        ended, self.unrecorded = self.unrecorded, []
        if not ended:
            return
        now, moment = self.clock(), time.monotonic()
        sent = []
        for held, result, arrived in ended:
            at = now if self.frozen_now else now - timedelta(seconds=moment - arrived)
            sent.append(
                Sent(held.delivery, held.request, result, started_at=at - timedelta(milliseconds=result.duration_ms),
                     finished_at=at, problem="" if held.request else result.error)
            )  # fmt: skip
        self.attempts += len(sent)
        try:
            recorded = results_record(sent, token=self.token, healthy=self.healthy)
        except Exception:
            # The claims lapse and the deliveries go out again: at least once, never lost.
            logger.exception("Could not record %d webhook attempts; they will be sent again.", len(sent))
            return
        for outcome in recorded.outcomes:
            lane = self.lanes.get(outcome.delivery.subscription_id)
            if lane is not None and not outcome.succeeded:
                lane.exhausted = False  # a retry may be due at once
        for subscription_id in recorded.paused.keys() | recorded.retired:
            self._lane_hold(subscription_id, probe_at=recorded.paused.get(subscription_id))
        for subscription_id in recorded.resumed:
            if subscription_id in self.lanes:
                self.lanes[subscription_id].paused = False

    def _lane_hold(self, subscription_id: int, *, probe_at: datetime | None) -> None:
        """A paused (probe_at given) or retired subscription's waiting deliveries go back, unsent, for later."""
        lane = self.lanes.get(subscription_id)
        if lane is None:
            return
        lane.paused, lane.probe_at = probe_at is not None, probe_at
        self._lane_unsent_release(lane)
        lane.exhausted = True

    def _lane_unsent_release(self, lane: Lane) -> None:
        """Give back the claims of a lane's deliveries not sent yet: waiting here, or not started by the sender."""
        withdrawn = self.sender.withdraw(lane.subscription_id)
        for held in withdrawn:
            self.handed.pop(held.delivery.id, None)
        lane.handed -= len(withdrawn)
        self._claims_release([h.delivery.id for h in [*lane.waiting, *withdrawn]])
        lane.waiting.clear()

    # --- letting go ----------------------------------------------------------------------------------

    def _lanes_retire(self) -> None:
        """Give back the lease of lanes that have had nothing to do for a while."""
        moment = time.monotonic()
        idle_for = LANE_IDLE_SECONDS if self.continuous else 0.0
        done = []
        for lane in self.lanes.values():
            if lane.waiting or lane.handed or not lane.exhausted:
                lane.idle_since = None
                continue
            lane.idle_since = lane.idle_since or moment
            if moment - lane.idle_since >= idle_for:
                done.append(lane.subscription_id)
        if done:
            self._leases_release(done)

    def _leases_release(self, subscription_ids: list[int]) -> None:
        Subscription.objects.filter(id__in=subscription_ids, dispatch_token=self.token).update(
            dispatch_token=None, dispatch_until=None
        )
        for subscription_id in subscription_ids:
            del self.lanes[subscription_id]
            self.turns.remove(subscription_id)

    def _claims_release(self, delivery_ids: list[int]) -> None:
        if delivery_ids:
            Delivery.objects.filter(id__in=delivery_ids, claim_token=self.token).update(
                claimed_until=None, claim_token=None
            )

    def _stop(self) -> None:
        """End the run: unsent claims and idle lanes go back at once, the slot goes to the successor, and the
        requests in flight are waited for (each within its deadline) and recorded."""
        try:
            for lane in self.lanes.values():
                self._lane_unsent_release(lane)
                lane.exhausted = True
            self._leases_release([sid for sid, lane in self.lanes.items() if not lane.handed])
            if self.slot is not None:
                Dispatcher.objects.filter(slot=self.slot, token=self.token).update(
                    token=None, lease_until=None
                )
                self._successor_request()
            give_up = time.monotonic() + settings.WEBHOOKS_TOTAL_TIMEOUT + 5
            while self.handed and time.monotonic() < give_up:
                self.wake.wait(0.2)
                self.wake.clear()
                self._collect()
            self._collect()
            self._record()
            self._leases_release(list(self.lanes))
        except Exception:
            logger.exception("The webhook dispatcher could not hand over cleanly; its leases will lapse.")

    def _successor_request(self) -> None:
        from django_q.conf import Conf

        if self.continuous and not Conf.SYNC:
            doorbell.dispatcher_request()

    # --- the slot ------------------------------------------------------------------------------------

    def slot_acquire(self, *, wait: float) -> bool:
        """Take one of the WEBHOOKS_DISPATCHERS slots, waiting up to `wait` s for one to come free."""
        slots = range(1, max(settings.WEBHOOKS_DISPATCHERS, 1) + 1)
        Dispatcher.objects.bulk_create([Dispatcher(slot=n) for n in slots], ignore_conflicts=True)
        give_up = time.monotonic() + wait
        while True:
            real_now = timezone.now()
            for n in slots:
                taken = Dispatcher.objects.filter(
                    Q(lease_until__isnull=True) | Q(lease_until__lt=real_now), slot=n
                ).update(token=self.token, lease_until=real_now + lease_window(), started_at=real_now)
                if taken:
                    self.slot = n
                    return True
            if time.monotonic() >= give_up:
                return False
            time.sleep(0.05)


def deliveries_claim(
    *, wants: dict[int, int], now: datetime, token: uuid.UUID
) -> tuple[list[Delivery], set[int]]:
    """Claim up to `wants[subscription id]` due deliveries of each subscription for the holder of `token`.

    Returns the claimed deliveries (with their event and subscription), oldest first, and the
    subscriptions that had fewer due than asked for. A claim lasts claim_window() unless renewed.
    """
    until = now + claim_window()
    ids: list[int] = []
    exhausted = set()
    with transaction.atomic():
        for subscription_id, limit in wants.items():
            due = _due(now).filter(subscription_id=subscription_id, subscription__active=True)
            if connection.vendor == "postgresql":
                # Rows another sender is claiming right now are skipped, not waited for.
                due = due.select_for_update(skip_locked=True, of=("self",))
            found = list(due.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])
            if len(found) < limit:
                exhausted.add(subscription_id)
            ids += found
        if not ids:
            return [], exhausted
        # Compare and set: only rows nobody holds (no row locks on SQLite).
        _due(now).filter(id__in=ids).update(claimed_until=until, claim_token=token)
    claimed = list(
        Delivery.objects.filter(id__in=ids, claim_token=token)
        .select_related("event")
        .order_by("next_attempt_at", "id")
    )
    subscriptions = Subscription.objects.in_bulk({d.subscription_id for d in claimed})
    for delivery in claimed:
        delivery.subscription = subscriptions[delivery.subscription_id]
    return claimed, exhausted


def dispatcher_run(*, wait: float = 0.0) -> int:
    """The cluster's dispatcher: take a slot (or return at once if all are busy) and dispatch for a run."""
    dispatch = Dispatch(continuous=True)
    if not dispatch.slot_acquire(wait=wait):
        return 0
    return dispatch.run()


def deliveries_send_due(*, now: datetime | None = None) -> int:
    """Send everything due now, retries that fall due meanwhile included, and return; the attempts made."""
    return Dispatch(continuous=False, now=now).run()
