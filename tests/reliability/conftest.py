"""Fault tests share one PostgreSQL and one Redis of their own; each test gets a fresh database and processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.servers import PostgresServer, RedisServer, start_postgres, start_redis
from tests.stack import Stack, template_create


@pytest.fixture(scope="session")
def fault_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    # Not the suite's DATABASE_URL server: these tests restart theirs.
    server = start_postgres(tmp_path_factory.mktemp("fault-pg"))
    try:
        template_create(server)
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fault_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("fault-redis"))
    yield server
    server.stop()


@pytest.fixture
def make_stack(
    fault_postgres: PostgresServer, fault_redis: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Stack]]:
    """make_stack(redis=True, **settings) -> a Stack whose processes and database go at teardown."""
    stacks: list[Stack] = []

    def make(redis: bool = True, **settings: str) -> Stack:
        if redis:
            fault_redis.flush()
        stack = Stack(tmp_path, fault_postgres, fault_redis if redis else None, **settings)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(stack.logs())
        stack.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Keep each phase's report on the test item so teardown can print process logs on failure.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
