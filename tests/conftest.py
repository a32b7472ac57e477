"""Shared fixtures: a merchant's world (site, offers, members), API clients and capture of on-commit hooks.

Also the run-wide log scan: every record logged in this process and every process log the tests wrote is
searched for API keys, signing secrets and signatures; any found fails the run.
"""

import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from django.db import connection

from config.logging import redact
from tests import factories

# The shapes of what must never be logged: API keys, whsec_ signing secrets, v1, webhook signatures.
LEAKS = re.compile(r"\bck_[A-Za-z0-9_-]{20,}|\bwhsec_[A-Za-z0-9+/=]{16,}|\bv1,[A-Za-z0-9+/]{40,}={0,2}")


class _LogScan(logging.Handler):
    """Reads each record as written, before the formatters' masking: code must not rely on that mask."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.found: list[str] = []
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1
        text = " ".join(
            str(part)
            for part in (record.getMessage(), record.exc_text, record.stack_info, vars(record).get("args"))
            if part
        )
        if record.exc_info and record.exc_info[1] is not None:
            text += " " + repr(record.exc_info[1])
        if LEAKS.search(text):
            self.found.append(f"{record.name}: {redact(record.getMessage())[:200]!r}")


_scan = _LogScan()


def pytest_sessionstart(session) -> None:
    logging.getLogger().addHandler(_scan)


def pytest_sessionfinish(session, exitstatus) -> None:
    logging.getLogger().removeHandler(_scan)
    found = list(_scan.found)
    basetemp = (
        session.config._tmp_path_factory.getbasetemp()
        if hasattr(session.config, "_tmp_path_factory")
        else None
    )
    if basetemp is not None and Path(basetemp).exists():
        for log in Path(basetemp).rglob("*.log"):
            found += [f"{log}: {redact(leak)}" for leak in LEAKS.findall(log.read_text(errors="replace"))]
    metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if f"coupons-metrics-{os.getpid()}" in metrics_dir:
        shutil.rmtree(metrics_dir, ignore_errors=True)  # this run's own counters
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        if reporter:
            reporter.write_line(f"SECRETS IN LOGS ({len(found)}):\n" + "\n".join(found[:50]), red=True)
        session.exitstatus = 1
    elif reporter:
        reporter.write_line(
            f"log scan: {_scan.records} records and the process logs hold no key, secret or signature"
        )


@pytest.fixture
def merchant(db):
    return factories.MerchantFactory()


@pytest.fixture
def site(merchant):
    return factories.SiteFactory(merchant=merchant)


@pytest.fixture
def offer(site):
    return factories.OfferFactory(site=site, merchant=site.merchant)


@pytest.fixture
def member(merchant):
    """A member the merchant told the platform about."""
    return factories.MemberFactory(merchant=merchant)


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hashers are slow by design; tests log users in often and need no protection.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
