"""Webhook delivery under faults, with real clusters, PostgreSQL, Redis and receivers: nothing is lost.

Two waits are shortened, and only those: the minute retry sweep is enqueued at once (the same task
the schedule runs, `ring_sweep`), and a killed dispatcher's claims and leases are expired by moving them
into the past (`expire_claims`) instead of waiting them out. The retry schedule's and the circuit
breaker's own steps (5 s) are waited for in real time.
"""

from __future__ import annotations

import time

import pytest

from tests.stack import PYTHON, Receiver, Stack, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def world(stack: Stack, receiver: Receiver) -> dict:
    return stack.world(codes=0, receiver_urls=[receiver.url], events=["coupon.redeemed"])


def ring_sweep(stack: Stack) -> None:
    """Enqueue the retry sweep now, as its one-minute schedule would."""
    stack.enqueue("webhooks.tasks.deliveries_sweep_task")


def expire_claims(stack: Stack) -> int:
    """Move every live claim and lease into the past: what waiting out a dead dispatcher's would do."""
    stack.sql("UPDATE webhooks_dispatcher SET lease_until = now() - interval '1 second'")
    stack.sql("UPDATE webhooks_subscription SET dispatch_until = now() - interval '1 second'")
    rows = stack.sql(
        "UPDATE webhooks_delivery SET claimed_until = now() - interval '1 second' "
        "WHERE status = 'pending' AND claimed_until > now() RETURNING id"
    )
    return len(rows)


def statuses(stack: Stack) -> dict[str, int]:
    return dict(stack.sql("SELECT status, count(*) FROM webhooks_delivery GROUP BY status"))


def message_ids(stack: Stack) -> set[str]:
    return {row[0] for row in stack.sql("SELECT message_id FROM webhooks_delivery")}


def all_succeeded(stack: Stack, count: int) -> bool:
    return statuses(stack) == {"succeeded": count}


def duplicates(receiver: Receiver) -> int:
    return sum(n - 1 for n in receiver.counts().values())


def test_a_receiver_down_for_a_while_gets_every_delivery_once_it_is_back(make_stack) -> None:
    events = 60
    stack: Stack = make_stack(redis=True)
    receiver = stack.receiver(start=False)
    offer_id = world(stack, receiver)["offer_id"]
    stack.cluster()

    stack.record_events(offer_id, events)
    # Connection refused, attempt after attempt: the circuit breaker pauses the subscription (10 failures in a
    # row) and every delivery waits, none dropped, for the probe 5 s later (±20 %).
    wait_until(
        lambda: stack.scalar(
            "SELECT count(*) FROM webhooks_subscription WHERE circuit_opened_at IS NOT NULL"
        ),
        30,
        "the circuit to open",
    )
    assert statuses(stack) == {"pending": events}
    refused = stack.scalar("SELECT count(*) FROM webhooks_attempt WHERE status_code IS NULL AND error <> ''")
    assert 10 <= refused < 2 * events  # paused long before every delivery was tried twice
    receiver.start()

    wait_until(lambda: all_succeeded(stack, events), 30, "every delivery to succeed after the probe")
    counts = receiver.counts()
    assert set(counts) == message_ids(stack)
    assert duplicates(receiver) == 0
    assert stack.scalar("SELECT count(*) FROM webhooks_subscription WHERE circuit_opened_at IS NULL") == 1


def test_a_cluster_killed_mid_batch_loses_nothing_and_resends_only_what_was_in_flight(make_stack) -> None:
    events, concurrency, workers = 40, 8, 2
    stack: Stack = make_stack(redis=True, WEBHOOKS_SEND_CONCURRENCY=str(concurrency), Q_WORKERS=str(workers))
    # A slow receiver: each request takes a second, so a batch is certainly in flight at the kill.
    receiver = stack.receiver(delay=1.0)
    offer_id = world(stack, receiver)["offer_id"]
    cluster = stack.cluster("cluster-a")

    stack.record_events(offer_id, events)
    wait_until(lambda: len(receiver.received()) >= concurrency, 30, "the first wave at the receiver")
    cluster.kill()
    claimed = stack.scalar(
        "SELECT count(*) FROM webhooks_delivery WHERE status = 'pending' AND claimed_until > now()"
    )
    assert claimed > 0, "the kill should leave claimed deliveries behind"

    stack.cluster("cluster-b")
    assert expire_claims(stack) == claimed
    ring_sweep(stack)
    wait_until(lambda: all_succeeded(stack, events), 60, "every delivery to succeed after the restart")
    # Let requests the killed cluster had sent finish at the receiver before counting.
    time.sleep(1.2)

    counts = receiver.counts()
    assert set(counts) == message_ids(stack)
    resent = duplicates(receiver)
    # Only what the dead cluster held could be sent twice: at most one claimed batch per worker.
    batch = 2 * concurrency
    assert 0 < resent <= min(claimed, workers * batch), (resent, claimed)
    print(f"killed mid-batch: {claimed} claimed deliveries re-sent, {resent} duplicates of {events}")


def test_redis_restarted_under_two_clusters_loses_nothing_and_schedules_fire_once(
    make_stack,
) -> None:
    before, during = 100, 150
    stack: Stack = make_stack(redis=True)
    receiver = stack.receiver()
    offer_id = world(stack, receiver)["offer_id"]
    # A probe schedule counts its own runs; both it and the sweep are due at the clusters' first tick.
    stack.sql("CREATE TABLE schedule_ticks (id serial PRIMARY KEY, at timestamptz DEFAULT now())")
    stack.django(
        "from django.utils import timezone\n"
        "from django_q.models import Schedule\n"
        "Schedule.objects.create(name='probe: tick', func='tests.stack_world.tick', "
        "schedule_type=Schedule.MINUTES, minutes=1, repeats=-1, next_run=timezone.now())\n"
        "Schedule.objects.filter(name='webhooks: retry sweep').update(next_run=timezone.now())\n"
        "result = Schedule.objects.count()"
    )
    # Spawned together, so their schedulers tick at about the same moment.
    clusters = [stack.spawn(name, [PYTHON, "manage.py", "qcluster"], LOG_LEVEL="INFO") for name in ("a", "b")]
    for cluster in clusters:
        cluster.wait_for_log("running.", timeout=40)
    started = time.monotonic()

    stack.record_events(offer_id, before)
    wait_until(lambda: all_succeeded(stack, before), 30, "the first events, sent by the doorbell")
    stack.redis.halt()
    # With the broker down a change still commits, and the running dispatcher still sends it: it is woken by
    # PostgreSQL, not by the broker. A restarted Redis has lost whatever tasks it held.
    stack.record_events(offer_id, during)
    stack.redis.start()

    wait_until(lambda: all_succeeded(stack, before + during), 50, "every delivery")
    wait_until(
        lambda: stack.scalar("SELECT count(*) FROM schedule_ticks") >= 1, 50, "the schedulers' first tick"
    )
    time.sleep(2)  # both schedulers' ticks are over
    assert time.monotonic() - started < 55, "a second scheduler tick could have fired the probe again"
    assert all(cluster.alive for cluster in clusters)
    assert set(receiver.counts()) == message_ids(stack)
    assert duplicates(receiver) == 0
    # Both clusters' schedulers ticked; PostgreSQL's row lock let only one of them fire each schedule.
    assert stack.scalar("SELECT count(*) FROM schedule_ticks") == 1
    logs = "".join(cluster.log() for cluster in clusters)
    assert logs.count("from schedule [probe: tick]") == 1
    assert logs.count("from schedule [webhooks: retry sweep]") == 1


def test_two_clusters_on_redis_deliver_thousands_of_events_each_exactly_once(make_stack) -> None:
    events = 5000
    stack: Stack = make_stack(redis=True)
    receiver = stack.receiver()
    offer_id = world(stack, receiver)["offer_id"]
    for name in ("cluster-a", "cluster-b"):
        stack.cluster(name)

    started = time.monotonic()
    stack.record_events(offer_id, events)
    wait_until(lambda: all_succeeded(stack, events), 120, f"{events} deliveries", interval=0.5)
    elapsed = time.monotonic() - started

    counts = receiver.counts()
    assert set(counts) == message_ids(stack)
    assert len(counts) == events
    resent = duplicates(receiver)
    assert resent == 0
    print(f"two clusters: {events} events recorded and delivered in {elapsed:.1f} s, {resent} duplicates")
