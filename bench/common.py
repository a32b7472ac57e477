"""What the job and CSV benchmarks share: a throwaway platform on its own PostgreSQL, Django in this process."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers import start_postgres  # noqa: E402
from tests.stack import Stack, template_create  # noqa: E402


def with_stack(name: str, run: Callable[[Stack], int], **settings: str) -> int:
    """Start PostgreSQL, migrate a fresh database, set Django up on it here and call run(stack); clean up after."""
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as base:
        postgres = start_postgres(Path(base))
        try:
            template_create(postgres)
            stack = Stack(Path(base), postgres, None, **settings)
            try:
                os.environ.update(stack.env(LOG_LEVEL="WARNING"))
                os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
                import django

                django.setup()
                return run(stack)
            except BaseException:
                print(stack.logs(), file=sys.stderr)
                raise
            finally:
                stack.close()
        finally:
            postgres.stop()


def offer_create(**fields):
    from coupons import services
    from coupons.models import Merchant

    merchant = Merchant.objects.create(name="Bench merchant")
    fields = {"name": "Bench offer", "coupon_type": "fixedAmount", "discount_value": "5.00"} | fields
    return services.offer_create(merchant=merchant, **fields)


def job_run_here(job_id: int, runners: int) -> list[threading.Thread]:
    """Start `runners` threads running the job's task function in this process, as bulk workers would."""
    from django.db import connection

    from coupons.tasks import job_run_task

    def runner() -> None:
        try:
            job_run_task(job_id)
        finally:
            connection.close()  # each thread's own connection

    threads = [threading.Thread(target=runner) for _ in range(runners)]
    for thread in threads:
        thread.start()
    return threads


def group_pids(leader: int) -> list[int]:
    """The processes of a process group (a cluster and its workers, gunicorn and its worker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == leader:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS) or at its peak (VmHWM, what getrusage's ru_maxrss reports)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def bare_copy_seconds(stack: Stack, columns: str, data: str | bytes, options: str = "") -> float:
    """The server's own speed, for reference: COPY of the same rows into a table with no index, nothing else."""
    import psycopg

    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE bench_bare ({columns})")
        started = time.perf_counter()
        with conn.cursor().copy(f"COPY bench_bare FROM STDIN {options}") as copy:
            copy.write(data)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench_bare")
    return seconds
