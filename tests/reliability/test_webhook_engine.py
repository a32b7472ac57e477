"""The delivery engine with a real cluster and real receivers: a hanging receiver delays no one else, and
retries leave on time."""

from __future__ import annotations

import pytest

from tests.stack import Stack, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]


def succeeded(stack: Stack, subscription_id: int) -> int:
    return stack.scalar(
        "SELECT count(*) FROM webhooks_delivery WHERE status = 'succeeded' AND subscription_id = %s",
        (subscription_id,),
    )


def test_a_hanging_receiver_holds_only_its_own_slots_and_never_delays_a_healthy_one(make_stack) -> None:
    stack: Stack = make_stack(redis=True, WEBHOOKS_TOTAL_TIMEOUT="5")
    hanging, healthy = stack.receiver(delay=30), stack.receiver()
    world = stack.world(codes=40, receiver_urls=[hanging.url, healthy.url], events=["coupon.redeemed"])
    healthy_id = world["subscription_ids"][1]
    stack.cluster()

    stack.django(
        "from tests.stack_world import redemptions_run\nresult = redemptions_run(codes=codes, rate=20)",
        codes=world["codes"],
    )
    wait_until(lambda: succeeded(stack, healthy_id) == 40, 30, "the healthy receiver's 40 webhooks")
    recorded = stack.django("from tests.stack_world import event_times\nresult = event_times()")
    first: dict[str, float] = {}
    for stamp, message_id in healthy.received():
        first.setdefault(message_id, stamp)
    delays = [first[m] - recorded[m] for m in first]

    assert len(delays) == 40
    assert max(delays) < 3, f"the healthy receiver waited up to {max(delays):.1f} s"  # not the 5 s hang
    wait_until(lambda: len(hanging.arrivals()) >= 8, 30, "the hanging receiver's second round")
    assert hanging.most_at_once(lasting=4.5) <= 4  # WEBHOOKS_MAX_IN_FLIGHT_PER_SUBSCRIPTION


def test_retries_leave_within_a_second_of_their_due_time(make_stack) -> None:
    stack: Stack = make_stack(redis=True)
    receiver = stack.receiver(0.0, 200, "--fail-first", "2", "--fail-status", "503")
    world = stack.world(codes=0, receiver_urls=[receiver.url], events=["coupon.redeemed"])
    stack.cluster()

    stack.record_events(world["offer_id"], 1)
    wait_until(lambda: stack.scalar("SELECT count(*) FROM webhooks_delivery WHERE status = 'succeeded'"), 40,
               "the third attempt")  # fmt: skip

    rows = stack.sql("SELECT started_at, due_at FROM webhooks_attempt ORDER BY id")
    late = [(started - due).total_seconds() for started, due in rows]
    assert len(late) == 3 and [n for _, n in receiver.counts().items()] == [3]
    assert late[0] < 5  # the first one waits for the dispatcher the commit asked for
    assert max(late[1:]) < 1, late  # at once, then after about 5 s: each within a second of its time
    gap = (rows[2][0] - rows[1][0]).total_seconds()
    assert 4 <= gap <= 6.5
