"""The test suite's throwaway PostgreSQL and Redis servers really start, restart and clean up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import environ
import psycopg
import pytest
import redis

from tests import with_servers
from tests.servers import PostgresServer, RedisServer, start_postgres, start_redis

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    server = start_postgres(tmp_path_factory.mktemp("pg"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.postgres
def test_postgres_answers_select_1(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
        assert conn.execute("show max_connections").fetchone() == ("200",)
        assert conn.execute("show fsync").fetchone() == ("off",)
        assert conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone() == (
            True,
        )


@pytest.mark.postgres
def test_postgres_url_is_a_django_database_url(postgres: PostgresServer) -> None:
    config = environ.Env.db_url_config(postgres.url)
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["PORT"], config["PASSWORD"]) == ("127.0.0.1", postgres.port, "")


@pytest.mark.postgres
def test_postgres_restart_keeps_data_and_port(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute("create table kept (value text)")
        conn.execute("insert into kept values ('still here')")
    port = postgres.port
    postgres.restart()
    assert postgres.port == port
    with psycopg.connect(postgres.url) as conn:
        assert conn.execute("select value from kept").fetchall() == [("still here",)]


@pytest.mark.postgres
def test_postgres_stop_ends_process_and_removes_files(tmp_path: Path) -> None:
    server = start_postgres(tmp_path)
    proc, root = server.proc, server.root
    assert proc is not None and root.is_dir()
    server.stop()
    server.stop()  # idempotent
    assert proc.poll() is not None
    assert not root.exists()
    assert not port_open(server.port)


@pytest.mark.redis
def test_redis_answers_ping(redis_server: RedisServer) -> None:
    assert redis.Redis.from_url(redis_server.url).ping()


@pytest.mark.redis
def test_redis_flush_empties_it(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("key", "value")
    redis_server.flush()
    assert client.get("key") is None


@pytest.mark.redis
def test_redis_restart_keeps_port_and_drops_data(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url)
    client.set("key", "value")
    port = redis_server.port
    redis_server.restart()
    assert redis_server.port == port
    # Fresh connection: the old one was closed by the restart.
    client = redis.Redis.from_url(redis_server.url)
    assert client.ping()
    assert client.get("key") is None  # no persistence, by design


@pytest.mark.redis
def test_redis_stop_ends_process_and_removes_files(tmp_path: Path) -> None:
    server = start_redis(tmp_path)
    proc, root = server.proc, server.root
    server.stop()
    assert proc is not None and proc.poll() is not None
    assert not root.exists()
    assert not port_open(server.port)


CHILD = """
import os, sys, psycopg, redis
assert "REDIS_URL" not in os.environ
assert psycopg.connect(os.environ["DATABASE_URL"]).execute("select 1").fetchone() == (1,)
assert redis.Redis.from_url(os.environ["TEST_REDIS_URL"]).ping()
sys.exit(7)
"""


@pytest.mark.postgres
@pytest.mark.redis
def test_with_servers_exports_urls_and_passes_exit_code_on() -> None:
    env_without_redis_url = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    cmd = [
        sys.executable,
        "-m",
        "tests.with_servers",
        "--postgres",
        "--redis",
        "--",
        sys.executable,
        "-c",
        CHILD,
    ]
    result = subprocess.run(
        cmd, cwd=ROOT, env=env_without_redis_url, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 7, result.stderr


def failing_start(base_dir: Path) -> PostgresServer:
    raise RuntimeError("no PostgreSQL here")


def test_with_servers_fails_loudly_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(with_servers.SERVERS, "postgres", ("DATABASE_URL", failing_start))
    monkeypatch.setenv("CI", "true")
    with pytest.raises(SystemExit) as exc:
        with_servers.main(["--postgres", "--", sys.executable, "-c", "pass"])
    assert "cannot start postgres" in str(exc.value.code)
    assert "no PostgreSQL here" in str(exc.value.code)


def test_with_servers_runs_without_the_server_outside_ci(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(with_servers.SERVERS, "postgres", ("DATABASE_URL", failing_start))
    monkeypatch.setenv("CI", "false")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    check = "import os, sys; sys.exit(3 if 'DATABASE_URL' in os.environ else 0)"
    assert with_servers.main(["--postgres", "--", sys.executable, "-c", check]) == 0
    assert "WARNING: cannot start postgres" in capsys.readouterr().err


def test_with_servers_requires_a_command() -> None:
    with pytest.raises(SystemExit) as exc:
        with_servers.main(["--postgres"])
    assert exc.value.code == 2
