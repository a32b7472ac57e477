"""Background generation of 1,000,000 codes on PostgreSQL, through the real job path and a real bulk cluster.

.venv/bin/python bench/generate.py [--count 1000000] [--workers 2] [--inline]

Starts its own PostgreSQL, migrates a fresh database, starts `manage.py qcluster` with Q_CLUSTER_NAME=bulk
(the cluster generation jobs run on) and asks for the codes with jobs.job_generate_start, as the API and the
admin do. The clock runs from the request to the job's `succeeded`; the job's progress is sampled from the
database while it runs. --inline runs the job's task function in this process instead (one thread per worker).
For reference it also times a raw COPY of the same number of codes into a bare table on the same server.
Target (2 cores): <= 15 s for 1,000,000 codes, coupon.created events included.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    bare_copy_seconds,
    group_pids,
    job_run_here,
    memory_mb,
    offer_create,
    with_stack,
)
from tests.stack import Stack  # noqa: E402

TARGET_SECONDS = 15.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2, help="bulk cluster workers (Q_BULK_WORKERS)")
    parser.add_argument("--inline", action="store_true", help="run the task function in this process")
    parser.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = parser.parse_args()
    return with_stack("generate", lambda stack: run(stack, args), Q_BULK_WORKERS=str(args.workers))


def run(stack: Stack, args) -> int:
    raw_seconds = raw_copy_seconds(stack, args.count)
    cluster = None if args.inline else stack.cluster("bulk", Q_CLUSTER_NAME="bulk")
    offer = offer_create()
    seconds, samples = generate(offer, args)
    print_figures(stack, offer, args, seconds, samples, raw_seconds, cluster)
    return 0 if seconds <= TARGET_SECONDS else 1


def raw_copy_seconds(stack: Stack, count: int) -> float:
    from coupons.codes import CodeFormat

    return bare_copy_seconds(stack, "code varchar(64)", "\n".join(CodeFormat().generate(count)) + "\n")


def generate(offer, args) -> tuple[float, list[tuple[float, int, int, str]]]:
    """Ask for the codes and sample the job's progress until it finishes; returns seconds and the samples."""
    from django.db import close_old_connections

    from coupons import jobs
    from coupons.models import Job

    started = time.perf_counter()
    job = jobs.job_generate_start(offer=offer, count=args.count, enqueue=not args.inline)
    threads = job_run_here(job.pk, args.workers) if args.inline else []
    samples = []
    while True:
        done, total, state = Job.objects.filter(pk=job.pk).values_list("done", "total", "state").get()
        elapsed = time.perf_counter() - started
        samples.append((elapsed, done, total, state))
        print(f"  {elapsed:6.2f} s  {done:>10,} / {total:,}  {state}", flush=True)
        if state in (Job.State.SUCCEEDED, Job.State.FAILED):
            break
        if elapsed > args.timeout:
            raise SystemExit(f"the job did not finish within {args.timeout:.0f} s")
        time.sleep(0.5)
        close_old_connections()
    for thread in threads:
        thread.join()
    if state == Job.State.FAILED:
        raise SystemExit(f"the job failed: {Job.objects.get(pk=job.pk).error}")
    return elapsed, samples


def print_figures(stack: Stack, offer, args, seconds, samples, raw_seconds, cluster) -> None:
    codes, distinct = stack.sql(
        "SELECT count(*), count(DISTINCT code) FROM coupons_coupon WHERE offer_id = %s", (offer.id,)
    )[0]
    messages, in_messages, largest = stack.sql(
        "SELECT count(*), coalesce(sum(jsonb_array_length(data->'coupons')), 0), "
        "coalesce(max(jsonb_array_length(data->'coupons')), 0) FROM webhooks_event WHERE type = 'coupon.created'"
    )[0]
    runner = "inline (task function in this process)" if args.inline else "bulk qcluster subprocess"
    print(f"\ngeneration of {args.count:,} codes, {args.workers} worker(s), {runner}")
    print(f"  time                {seconds:8.2f} s   (target <= {TARGET_SECONDS:.0f} s)")
    print(f"  rate                {args.count / seconds:11,.0f} codes/s")
    print(f"  codes stored        {codes:11,} ({distinct:,} distinct)")
    print(
        f"  coupon.created      {messages:11,} messages, {in_messages:,} codes, at most {largest} a message"
    )
    moving = [s for s in samples if 0 < s[1] < s[2]]
    print(f"  progress samples    {len(moving)} while running (every 0.5 s, from the job row)")
    if cluster is not None:
        peaks = {pid: memory_mb(pid, "VmHWM") for pid in group_pids(cluster.popen.pid)}
        print(f"  peak memory         {max(peaks.values(), default=0):8.0f} MB per cluster process (VmHWM), "
              f"{len(peaks)} processes")  # fmt: skip
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory         {own:8.0f} MB this process (getrusage maxrss)")
    print("reference on this machine, same run:")
    print(f"  raw COPY of {args.count:,} codes into a bare table: {raw_seconds:.2f} s "
          f"({args.count / raw_seconds:,.0f} rows/s)")  # fmt: skip
    print(f"  load average now    {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
