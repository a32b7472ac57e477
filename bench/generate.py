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
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import start_postgres  # noqa: E402
from tests.stack import Stack, template_create  # noqa: E402

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
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix="bench-generate-") as base:
        postgres = start_postgres(Path(base))
        try:
            template_create(postgres)
            stack = Stack(Path(base), postgres, None, Q_BULK_WORKERS=str(args.workers))
            try:
                return run(stack, args)
            except BaseException:
                print(stack.logs(), file=sys.stderr)
                raise
            finally:
                stack.close()
        finally:
            postgres.stop()


def run(stack: Stack, args) -> int:
    os.environ.update(stack.env(Q_BULK_WORKERS=str(args.workers), LOG_LEVEL="WARNING"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()
    raw_seconds = raw_copy_seconds(stack, args.count)
    cluster = None if args.inline else stack.cluster("bulk", Q_CLUSTER_NAME="bulk")
    offer = offer_create()
    seconds, samples = generate(offer, args, cluster)
    print_figures(stack, offer, args, seconds, samples, raw_seconds, cluster)
    return 0 if seconds <= TARGET_SECONDS else 1


def offer_create():
    from coupons import services
    from coupons.models import Merchant

    merchant = Merchant.objects.create(name="Bench merchant")
    return services.offer_create(merchant=merchant, name="Bench offer", coupon_type="fixedAmount",
                                 discount_value="5.00")  # fmt: skip


def raw_copy_seconds(stack: Stack, count: int) -> float:
    """The server's own speed: COPY of `count` codes into a table with no index, nothing else."""
    import psycopg

    from coupons.codes import CodeFormat

    text = "\n".join(CodeFormat().generate(count)) + "\n"
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_bare (code varchar(64))")
        started = time.perf_counter()
        with conn.cursor().copy("COPY bench_bare (code) FROM STDIN") as copy:
            copy.write(text)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare")
    return seconds


def generate(offer, args, cluster) -> tuple[float, list[tuple[float, int, int, str]]]:
    """Ask for the codes and sample the job's progress until it finishes; returns seconds and the samples."""
    from django.db import close_old_connections

    from coupons import jobs
    from coupons.models import Job

    if args.inline:
        jobs._enqueue = lambda job_id, runners: None  # this process runs the job itself, below
    started = time.perf_counter()
    job = jobs.job_generate_start(offer=offer, count=args.count)
    threads = []
    if args.inline:
        for _ in range(args.workers):
            thread = threading.Thread(target=_inline_runner, args=(job.pk,))
            thread.start()
            threads.append(thread)
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


def _inline_runner(job_id: int) -> None:
    from django.db import connection

    from coupons.tasks import job_run_task

    try:
        job_run_task(job_id)
    finally:
        connection.close()


def peak_rss_mb(pid: int) -> float:
    """The kernel's peak resident set size of one process (VmHWM, what getrusage's ru_maxrss reports)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def group_pids(leader: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


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
        peaks = {pid: peak_rss_mb(pid) for pid in group_pids(cluster.popen.pid)}
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
