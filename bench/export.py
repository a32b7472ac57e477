"""CSV export of 100,000 and then 1,000,000 codes over HTTP: gunicorn on PostgreSQL, a streaming GET.

.venv/bin/python bench/export.py [--small 100000] [--large 1000000]

Starts its own PostgreSQL, migrates a fresh database, makes the codes with the real generation job (run in
this process), starts gunicorn (one worker, so the same process serves both exports) and downloads
GET /api/v1/offers/{id}/coupons.csv with an API key made for the bench, reading the stream in 64 KB blocks.
The server process's resident memory is sampled every 50 ms during each download: flat memory from 100k
to 1M codes shows the export streams. For reference it times PostgreSQL's own COPY ... TO STDOUT (CSV) of
the same rows on the same server.
Target (2 cores): <= 10 s for 1,000,000 codes, constant memory.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import group_pids, job_run_here, memory_mb, offer_create, with_stack  # noqa: E402
from tests.stack import Stack  # noqa: E402

TARGET_SECONDS = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    return with_stack("export", lambda stack: run(stack, args))


def run(stack: Stack, args) -> int:
    from coupons import jobs, services

    offer = offer_create()
    _key, token = services.api_key_create(merchant=offer.merchant, scopes=["read"], name="bench export")
    web, base_url = stack.web(WEB_CONCURRENCY="1", GUNICORN_THREADS="2")
    url = f"{base_url}/api/v1/offers/{offer.id}/coupons.csv"
    server = max(group_pids(web.popen.pid))  # gunicorn's one worker: the newest process of its group
    results = []
    for count in (args.small, args.large):
        # The codes, made by the generation job's task function in this process (two runners).
        job = jobs.job_generate_start(offer=offer, count=count - offer.coupons.count(), enqueue=False)
        for thread in job_run_here(job.id, 2):
            thread.join()
        download(url, token, server)  # a first request warms the worker, as a long-running one is
        results.append((count, *download(url, token, server), raw_copy_seconds(stack, offer.id)))
    print_figures(results)
    return 0 if results[-1][1] <= TARGET_SECONDS else 1


def download(url: str, token: str, server_pid: int) -> tuple[float, int, int, float, float]:
    """Seconds, bytes, lines, server RSS before and its peak during the download."""
    before = memory_mb(server_pid)
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], memory_mb(server_pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    size = lines = 0
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            assert response.status == 200, response.status
            while block := response.read(65536):
                size += len(block)
                lines += block.count(b"\n")
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return seconds, size, lines, before, peak[0]


def raw_copy_seconds(stack: Stack, offer_id: int) -> float:
    """PostgreSQL's own CSV of the same rows (COPY TO STDOUT), read by a client that only counts bytes."""
    import psycopg

    query = (
        "COPY (SELECT c.code, c.member_id, m.member_no, c.status, c.issued_at, c.expires_at, c.times_redeemed "
        "FROM coupons_coupon c JOIN coupons_offer o ON o.id = c.offer_id LEFT JOIN coupons_memberprofile m "
        f"ON m.member_id = c.member_id AND m.merchant_id = o.merchant_id WHERE c.offer_id = {int(offer_id)} "
        "ORDER BY c.id) TO STDOUT WITH (FORMAT csv, HEADER)"
    )
    with psycopg.connect(stack.database_url) as conn:
        started = time.perf_counter()
        with conn.cursor().copy(query) as copy:
            for _block in copy:
                pass
        return time.perf_counter() - started


def print_figures(results) -> None:
    print("\nCSV export over HTTP (gunicorn, 1 worker, PostgreSQL)")
    for count, seconds, size, lines, before, peak, _raw in results:
        print(f"  {count:>9,} codes  {seconds:6.2f} s  {count / seconds:9,.0f} rows/s  {size / 1e6:6.1f} MB  "
              f"{lines - 1:,} rows   server RSS {before:5.0f} MB before, {peak:5.0f} MB peak")  # fmt: skip
    (_, _, _, _, _, small_peak, _), (count, seconds, *_rest) = results[0], results[-1]
    large_peak = results[-1][5]
    print(f"  target: {count:,} codes in <= {TARGET_SECONDS:.0f} s: {seconds:.2f} s; server peak RSS grew "
          f"{large_peak - small_peak:+.0f} MB from {results[0][0]:,} to {count:,} codes")  # fmt: skip
    print("reference on this machine, same run:")
    for count, *_rest, raw in results:
        print(f"  PostgreSQL COPY TO STDOUT (CSV) of {count:,} rows: {raw:.2f} s")
    print(f"  load average now    {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    sys.exit(main())
