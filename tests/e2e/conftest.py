"""Headless Chromium driven by Playwright against the live test server; Chromium comes from Debian."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from django.core.cache import cache

from coupons.roles import roles_ensure

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def _apt_get(*args: str) -> subprocess.CompletedProcess:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run(
        [*prefix, "apt-get", *args],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True,
        text=True,
        timeout=1200,
    )


def chromium_install() -> str | None:
    """Install Debian's chromium when it is missing; why it could not be, or None once it is there."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return "apt-get is not available on this machine"
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return "installing needs root or sudo"
    # The package lists of a fresh machine may be missing or stale: update once and try again.
    result = _apt_get("install", "-y", "-q", "chromium")
    if result.returncode != 0:
        _apt_get("update", "-q")
        result = _apt_get("install", "-y", "-q", "chromium")
    if result.returncode != 0 or not CHROMIUM.exists():
        return f"apt-get install chromium failed: {result.stderr.strip()[-1500:]}"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    problem = chromium_install()
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"The browser tests need Chromium at {CHROMIUM}: {problem}", pytrace=False)
        pytest.skip(f"Chromium is not installed and could not be installed: {problem}")
    return str(CHROMIUM)


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in the test's thread; the ORM calls the tests make
    # between browser steps are still plain synchronous calls, so Django may allow them there.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, reduced_motion="reduce"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture(autouse=True)
def world(transactional_db):
    # Live-server tests empty every table afterwards, the migration's groups included.
    roles_ensure()
    cache.clear()


@pytest.fixture
def screenshot(page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
