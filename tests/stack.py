"""The platform scaled out in real processes on 127.0.0.1, for fault tests and benchmarks.

Its own PostgreSQL (and Redis), a database migrated once and cloned per use, and gunicorn, qcluster
and webhook receiver processes, each in its own process group so a test can SIGKILL a whole "host".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import psycopg

from tests.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TEMPLATE_DATABASE = "platform_template"
# Variables of the caller that would point a child process somewhere else.
FOREIGN_VARIABLES = ("DATABASE_URL", "REDIS_URL", "TEST_REDIS_URL", "Q_CLUSTER_NAME", "Q_SYNC")
RESULT_MARK = "\n__RESULT__"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll until condition() is truthy and return it; fail with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process in its own session (process group), with its output in a log file."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group at once: what a host losing power does to a cluster and its workers."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait()

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive:
            self.signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        # Children of a stopped parent (django-q2's workers) may linger: end the group either way.
        self.signal_group(signal.SIGKILL)
        self.popen.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            if not self.alive:
                raise RuntimeError(f"{self.name} exited ({self.popen.returncode}):\n{self.log()[-3000:]}")
            return text in self.log()

        wait_until(seen, timeout, f"{text!r} in the log of {self.name}", interval=0.1)


class Receiver:
    """A webhook receiver process (tests/receiver.py) on a fixed port, so it can go down and come back."""

    def __init__(self, stack: Stack, delay: float = 0.0, status: int = 200, *options: str) -> None:
        self.stack = stack
        self.port = free_port()
        self.delay = delay
        self.status = status
        self.options = list(options)
        self.log_path = stack.base_dir / f"received-{self.port}.tsv"
        self.log_path.touch()
        self.arrivals_path = stack.base_dir / f"arrived-{self.port}.tsv"
        self.arrivals_path.touch()
        self.proc: Proc | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        cmd = [PYTHON, "-m", "tests.receiver", "--port", str(self.port), "--log", str(self.log_path),
               "--arrivals", str(self.arrivals_path)]  # fmt: skip
        cmd += ["--delay", str(self.delay), "--status", str(self.status), *self.options]
        self.proc = self.stack.spawn("receiver", cmd)
        wait_until(self._listening, 15, f"the receiver on port {self.port}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()
            self.proc = None

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def received(self) -> list[tuple[float, str]]:
        """(receipt time, webhook-id) of every request so far, duplicates included."""
        return _rows(self.log_path)

    def arrivals(self) -> list[tuple[float, str]]:
        """(arrival time, webhook-id) of every request so far, logged before it is read and answered."""
        return _rows(self.arrivals_path)

    def most_at_once(self, lasting: float) -> int:
        """The most requests at once of a receiver that answers none of them within `lasting` seconds."""
        starts = sorted(stamp for stamp, _ in self.arrivals())
        return max((sum(1 for a in starts if start - lasting < a <= start) for start in starts), default=0)

    def counts(self) -> Counter[str]:
        return Counter(message_id for _, message_id in self.received())


class Stack:
    """One test's platform: a fresh database cloned from the migrated template, and its processes."""

    def __init__(
        self, base_dir: Path, postgres: PostgresServer | None, redis: RedisServer | None, **settings: str
    ) -> None:
        """Without PostgreSQL: the embedded default, a SQLite file (migrated here) and the ORM broker."""
        self.base_dir = base_dir
        self.postgres = postgres
        self.redis = redis
        self.settings = settings
        self.database = f"platform_{uuid.uuid4().hex[:10]}"
        self.procs: list[Proc] = []
        self.receivers: list[Receiver] = []
        if postgres is None:
            migrate(self.database_url)
            return
        with admin_connection(postgres) as conn:
            conn.execute(f'CREATE DATABASE "{self.database}" TEMPLATE "{TEMPLATE_DATABASE}"')

    @property
    def sqlite_path(self) -> Path:
        return self.base_dir / f"{self.database}.sqlite3"

    @property
    def database_url(self) -> str:
        if self.postgres is None:
            return f"sqlite:///{self.sqlite_path}"
        return database_url(self.postgres, self.database)

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every platform process: this stack's database and, when given, Redis."""
        env = {key: value for key, value in os.environ.items() if key not in FOREIGN_VARIABLES}
        env |= {
            "DATABASE_URL": self.database_url,
            "SECRET_KEY": "stack-secret-key",
            "DEBUG": "0",
            "WEBHOOKS_ALLOW_PRIVATE_URLS": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            # Plain HTTP on loopback, no collectstatic: production's HTTPS and static defaults are off.
            "SECURE_SSL_REDIRECT": "0",
            "SESSION_COOKIE_SECURE": "0",
            "CSRF_COOKIE_SECURE": "0",
            "STATIC_MANIFEST": "0",
        }
        if self.redis is not None:
            env["REDIS_URL"] = self.redis.url
        return env | self.settings | extra

    def spawn(self, name: str, cmd: list[str], **env: str) -> Proc:
        proc = Proc(name, cmd, self.env(**env), self.base_dir)
        self.procs.append(proc)
        return proc

    def cluster(self, name: str = "cluster", **env: str) -> Proc:
        """A django-q2 cluster (workers, pusher, monitor, scheduler), ready once its guard runs."""
        proc = self.spawn(name, [PYTHON, "manage.py", "qcluster"], LOG_LEVEL="INFO", **env)
        proc.wait_for_log("running.", timeout=40)
        return proc

    def web(self, port: int | None = None, **env: str) -> tuple[Proc, str]:
        """gunicorn with config/gunicorn.py on 127.0.0.1; returns the process and its base URL."""
        port = port or free_port()
        cmd = [PYTHON, "-m", "gunicorn", "-c", "config/gunicorn.py", "config.wsgi"]
        proc = self.spawn("web", cmd, GUNICORN_BIND=f"127.0.0.1:{port}", **env)
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(f"{base}/healthz", proc), 40, "gunicorn to answer /healthz", 0.1)
        return proc, base

    def receiver(self, delay: float = 0.0, status: int = 200, *options: str, start: bool = True) -> Receiver:
        """A receiver process; `options` are more of tests/receiver.py's flags (--fail-first 2, ...)."""
        receiver = Receiver(self, delay, status, *options)
        self.receivers.append(receiver)
        return receiver.start() if start else receiver

    def django(self, source: str, timeout: float = 300, **variables: Any) -> Any:
        """Run Python in a Django process on this stack; `variables` come in as globals, `result` goes out."""
        preamble = (
            "import django, json, os\n"
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
            "django.setup()\n"
            f"globals().update(json.loads({json.dumps(json.dumps(variables))}))\n"
            "result = None\n"
        )
        epilogue = f"\nprint({RESULT_MARK!r} + json.dumps(result, default=str))\n"
        done = subprocess.run(
            [PYTHON, "-c", preamble + source + epilogue],
            cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip
        if done.returncode != 0 or RESULT_MARK not in done.stdout:
            raise RuntimeError(f"Django snippet failed ({done.returncode}):\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.rpartition(RESULT_MARK)[2])

    def world(self, *, codes: int, receiver_urls: list[str] = (), events: list[str] = ()) -> dict:
        """tests.stack_world.world_create in a Django process: offer, codes, API key, subscriptions."""
        return self.django(
            "from tests.stack_world import world_create\n"
            "result = world_create(codes=codes, receiver_urls=urls, events=events)",
            codes=codes,
            urls=list(receiver_urls),
            events=list(events),
        )

    def record_events(self, offer_id: int, count: int) -> None:
        """`count` coupon.redeemed events of the offer through the outbox (tests.stack_world.events_record)."""
        self.django(
            "from tests.stack_world import events_record\nresult = events_record(offer_id=offer_id, count=count)",
            offer_id=offer_id,
            count=count,
        )

    def enqueue(self, func: str) -> None:
        """Put a task on the broker, as a schedule does: the clusters' workers run it."""
        self.django("from django_q.tasks import async_task\nresult = async_task(func)", func=func)

    def sql(self, query: str, params: tuple | dict | None = None) -> list[tuple]:
        """Rows of one statement on this stack's database, from a connection of its own (%s placeholders)."""
        if self.postgres is None:
            with closing(sqlite3.connect(self.sqlite_path, timeout=30)) as conn, conn:
                return conn.execute(query.replace("%s", "?"), params or ()).fetchall()
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def scalar(self, query: str, params: tuple | dict | None = None) -> Any:
        return self.sql(query, params)[0][0]

    def logs(self) -> str:
        """The tail of every process log, for a failing test's report."""
        return "\n".join(f"--- {p.name} ---\n{p.log()[-2500:]}" for p in self.procs)

    def close(self) -> None:
        # The test is over: nothing left to finish gracefully, and a SIGKILL of each group is instant.
        for proc in self.procs:
            proc.kill()
        if self.postgres is None:
            return
        with admin_connection(self.postgres) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def _rows(path: Path) -> list[tuple[float, str]]:
    rows = []
    for line in path.read_text().splitlines():
        stamp, _, message_id = line.partition("\t")
        rows.append((float(stamp), message_id))
    return rows


def _answers(url: str, proc: Proc) -> bool:
    if not proc.alive:
        raise RuntimeError(f"{proc.name} exited ({proc.popen.returncode}):\n{proc.log()[-3000:]}")
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def cpu_seconds(pid: int, *, include_self: bool = True) -> float:
    """CPU seconds (user + system) used so far by a live process and all its descendants.

    Wall-clock rates on a shared machine move with everything else running; CPU per request does not."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue  # ended meanwhile
        if current != pid or include_self:
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def database_url(postgres: PostgresServer, database: str) -> str:
    return postgres.url.rsplit("/", 1)[0] + f"/{database}"


def admin_connection(postgres: PostgresServer) -> psycopg.Connection:
    return psycopg.connect(postgres.url, autocommit=True, connect_timeout=10)


def template_create(postgres: PostgresServer) -> None:
    """Migrate the template database once; every Stack clones it in well under a second."""
    with admin_connection(postgres) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DATABASE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DATABASE}"')
    migrate(database_url(postgres, TEMPLATE_DATABASE))


def migrate(url: str) -> None:
    """Create the schema in the database at `url`."""
    env = {key: value for key, value in os.environ.items() if key not in FOREIGN_VARIABLES}
    env |= {"DATABASE_URL": url, "SECRET_KEY": "stack-secret-key"}
    # The database cache table too, so a stack may run without Redis (cache and broker on PostgreSQL).
    for command in (["migrate", "--noinput"], ["createcachetable"]):
        done = subprocess.run(
            [PYTHON, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
