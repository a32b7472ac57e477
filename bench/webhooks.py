"""Webhook deliveries from a real cluster to a fast local receiver process, on both deployments.

.venv/bin/python bench/webhooks.py [--events 5000] [--redemptions 200] [--rate 20]
For the embedded default (SQLite file, ORM broker) and scaled out (PostgreSQL, Redis broker):
  - deliveries/s: a backlog of --events events drained by one cluster (first to last receipt);
  - redemption-to-receipt latency: --redemptions service-level redemptions at --rate a second
    while the cluster runs; latency = receipt at the receiver - the event's time in the database.
Targets (2 cores): >= 500 deliveries/s; p50 <= 1 s on the embedded default.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import start_postgres, start_redis  # noqa: E402
from tests.stack import Stack, cpu_seconds, template_create, wait_until  # noqa: E402

TARGET_RATE = 500
TARGET_P50_S = 1.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def delivered(stack: Stack, count: int) -> bool:
    return stack.scalar("SELECT count(*) FROM webhooks_delivery WHERE status = 'succeeded'") >= count


def run(stack: Stack, label: str, events: int, redemptions: int, rate: float) -> dict:
    """Both measurements on one stack; returns the figures."""
    receiver = stack.receiver()
    world = stack.world(codes=redemptions, receiver_urls=[receiver.url], events=["coupon.redeemed"])
    # Throughput: the backlog is written first, then one cluster drains it.
    stack.record_events(world["offer_id"], events)
    cluster = stack.cluster()
    processes = {"cluster": (cluster.popen.pid, True), "receiver": (receiver.proc.popen.pid, True)}
    if stack.postgres is not None:
        processes["PostgreSQL"] = (stack.postgres.proc.pid, False)
    before = {name: cpu_seconds(pid, include_self=own) for name, (pid, own) in processes.items()}
    wait_until(lambda: delivered(stack, events), 600, f"{events} deliveries", interval=0.2)
    cpu = {
        name: (cpu_seconds(pid, include_self=own) - before[name]) * 1000 / events
        for name, (pid, own) in processes.items()
    }
    stamps = sorted(stamp for stamp, _ in receiver.received())
    drain_rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    backlog = set(receiver.counts())

    # Latency: redemptions one at a time at a steady rate, each ringing the doorbell on commit.
    done = stack.django(
        "from tests.stack_world import redemptions_run\nresult = redemptions_run(codes=codes, rate=rate)",
        codes=world["codes"],
        rate=rate,
    )
    wait_until(lambda: delivered(stack, events + redemptions), 120, "the redemptions' webhooks", interval=0.2)
    recorded = stack.django("from tests.stack_world import event_times\nresult = event_times()")
    first_receipt: dict[str, float] = {}
    for stamp, message_id in receiver.received():
        first_receipt.setdefault(message_id, stamp)
    redeemed_ids = set(recorded) - backlog
    latencies = [first_receipt[m] - recorded[m] for m in redeemed_ids]
    duplicates = len(receiver.received()) - len(first_receipt)
    cluster.stop()
    return {
        "label": label,
        "events": events,
        "drain_rate": drain_rate,
        "cpu": cpu,
        "redemptions": done["created"],
        "redeem_rate": done["created"] / done["seconds"],
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
        "duplicates": duplicates,
    }


def report(figures: dict, embedded: bool) -> None:
    verdict = "PASS" if figures["drain_rate"] >= TARGET_RATE else "MISS"
    print(f"\n{figures['label']}")
    print(
        f"  deliveries/s, backlog of {figures['events']:,} drained by one cluster: "
        f"{figures['drain_rate']:.0f}/s  [target >= {TARGET_RATE}/s: {verdict}]"
    )
    print("  CPU per delivery: " + ", ".join(f"{name} {ms:.2f} ms" for name, ms in figures["cpu"].items()))
    target = f"  [target p50 <= {TARGET_P50_S:.0f} s: {'PASS' if figures['p50'] <= TARGET_P50_S else 'MISS'}]"
    print(
        f"  redemption-to-receipt, {figures['redemptions']} redemptions at {figures['redeem_rate']:.0f}/s: "
        f"p50 {figures['p50'] * 1000:.0f} ms, p99 {figures['p99'] * 1000:.0f} ms, "
        f"max {figures['max'] * 1000:.0f} ms{target if embedded else ''}"
    )
    print(f"  duplicates at the receiver: {figures['duplicates']}")


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--redemptions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="redemptions a second in the latency run")
    options = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as tmp:
        base_dir = Path(tmp)
        stack = Stack(base_dir, None, None)
        try:
            results.append((run(stack, "embedded default (SQLite, ORM broker)", **vars(options)), True))
        finally:
            stack.close()
        postgres, redis = start_postgres(base_dir), start_redis(base_dir)
        try:
            template_create(postgres)
            stack = Stack(base_dir, postgres, redis)
            try:
                results.append((run(stack, "scaled out (PostgreSQL, Redis broker)", **vars(options)), False))
            finally:
                stack.close()
        finally:
            redis.stop()
            postgres.stop()
    for figures, embedded in results:
        report(figures, embedded)
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"\n(run took {time.monotonic() - started:.0f} s)")
    sys.exit(code)
