"""Production defaults: HTTPS settings, `check --deploy`, hashed and compressed static files, session cleanup."""

import json
import os
import re
import secrets
import subprocess
import sys
import tomllib
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone
from django_q.models import Schedule

from coupons.tasks import sessions_clear_task

BASE_DIR = Path(settings.BASE_DIR)
# What the test run switches off (pyproject's pytest env) so production's defaults show here.
TEST_OVERRIDES = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "STATIC_MANIFEST")


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TEST_OVERRIDES and not k.startswith("SECURE_")}
    env.pop("REDIS_URL", None)
    env.pop(
        "DJANGO_ALLOW_ASYNC_UNSAFE", None
    )  # the browser tests' (Playwright's event loop), not production's
    return env | {
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "coupons.example.com",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    } | extra  # fmt: skip


def production_settings(*names: str, **env: str) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}, default=str))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, env=production_env(**env), capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_check_deploy_passes_with_production_settings():
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR, env=production_env(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_production_turns_on_https_cookies_hsts_and_hashed_static_files_each_settable():
    names = ("SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
             "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_PROXY_SSL_HEADER", "STORAGES", "SESSION_ENGINE")  # fmt: skip
    production = production_settings(*names)
    assert production["SECURE_SSL_REDIRECT"] and production["SESSION_COOKIE_SECURE"]
    assert production["CSRF_COOKIE_SECURE"] and production["SECURE_HSTS_INCLUDE_SUBDOMAINS"]
    assert production["SECURE_HSTS_SECONDS"] >= 31_536_000
    assert production["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert production["STORAGES"]["staticfiles"]["BACKEND"].endswith("CompressedManifestStaticFilesStorage")
    assert production["SESSION_ENGINE"] == "django.contrib.sessions.backends.db"

    changed = production_settings(
        *names, SECURE_SSL_REDIRECT="0", SECURE_HSTS_SECONDS="0", SECURE_PROXY_SSL_HEADER="0",
        REDIS_URL="redis://127.0.0.1:9/0",
    )  # fmt: skip
    assert not changed["SECURE_SSL_REDIRECT"] and changed["SECURE_HSTS_SECONDS"] == 0
    assert changed["SECURE_PROXY_SSL_HEADER"] is None
    assert changed["SESSION_ENGINE"] == "django.contrib.sessions.backends.cached_db"


@pytest.mark.django_db
def test_plain_http_is_redirected_to_https_except_probes_and_metrics_and_https_gets_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.METRICS_TOKEN = ""
    response = client.get("/admin/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    assert client.get("/metrics").status_code == 404  # answered, not redirected (metrics are off here)
    secure = client.get("/admin/login/", secure=True)
    assert secure.status_code == 200 and "max-age=31536000" in secure["Strict-Transport-Security"]


@pytest.mark.slow
def test_collected_static_files_are_hashed_and_compressed_and_the_admin_links_them(tmp_path):
    env = production_env(STATIC_ROOT=str(tmp_path / "static"))
    collect = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert collect.returncode == 0, collect.stderr
    assert list((tmp_path / "static" / "admin" / "css").glob("base.*.css.gz"))
    code = (
        "import django; django.setup(); from django.test import Client; "
        "print(Client().get('/admin/login/', secure=True, HTTP_HOST='coupons.example.com').content.decode())"
    )
    page = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=env, capture_output=True, text=True)
    assert page.returncode == 0, page.stderr
    assert "/static/admin/css/base." in page.stdout and "/static/admin/css/base.css" not in page.stdout


@pytest.mark.django_db
def test_expired_sessions_are_cleared_by_a_schedule():
    assert Schedule.objects.filter(func="coupons.tasks.sessions_clear_task").exists()
    live = SessionStore()
    live["coupon_session_id"] = "shopper"
    live.create()
    Session.objects.create(
        session_key="old" * 10, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )

    assert sessions_clear_task() == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live.session_key]


def locked(path: str) -> dict[str, str]:
    """name -> version of a lock file, every entry checked to carry hashes."""
    text = (BASE_DIR / path).read_text()
    entries = re.findall(
        r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;\\\\]+)[^\n]*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n?)+)",
        text,
        re.M,
    )
    assert entries and len(entries) == len(re.findall(r"^[A-Za-z0-9_.-]+(?:\[[^\]]*\])?==", text, re.M))
    return {name.lower().replace("_", "-"): version for name, version, _ in entries}


def test_the_lock_files_pin_every_dependency_with_hashes_and_agree():
    runtime, dev = locked("requirements.lock"), locked("requirements-dev.lock")
    project = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        assert re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower() in runtime, requirement
    for requirement in project["optional-dependencies"]["dev"]:
        assert re.match(r"[A-Za-z0-9_.-]+", requirement)[0].lower() in dev, requirement
    assert {name: dev[name] for name in runtime} == runtime  # the dev set is a superset, same versions
    assert "pytest" not in runtime and "playwright" not in runtime  # make run installs no test tooling


def test_the_image_installs_the_locked_set_runs_unprivileged_and_checks_its_health():
    dockerfile = (BASE_DIR / "deploy" / "Dockerfile").read_text()
    assert "pip install --require-hashes --no-deps -r requirements.lock" in dockerfile
    assert "pip install ." not in dockerfile
    assert re.search(r"^USER coupons$", dockerfile, re.M) and "HEALTHCHECK" in dockerfile
    assert dockerfile.index("USER coupons") < dockerfile.index("CMD [")
