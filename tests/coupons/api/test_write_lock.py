"""On the embedded SQLite the write lock is taken only for the writes: not while a body is read and parsed,
a webhook URL is resolved or an import file is checked (PostgreSQL has no such lock: there it always passes)."""

import io
import socket
import threading
import uuid

import pytest
from django.db import OperationalError, connection

from coupons import csv_io, jobs
from coupons.api.parsers import SafeJSONParser
from coupons.models import Job, Merchant
from webhooks import urls_guard

pytestmark = pytest.mark.django_db(transaction=True)


def another_connection_can_write() -> bool:
    """Whether a write from another connection goes through at once, rather than waiting for a lock."""
    outcome = {}

    def attempt():
        try:
            if connection.vendor == "sqlite":
                connection.ensure_connection()
                connection.connection.execute("PRAGMA busy_timeout = 100")
            Merchant.objects.create(name=f"probe-{uuid.uuid4()}")
            outcome["wrote"] = True
        except OperationalError:
            outcome["wrote"] = False
        finally:
            connection.close()

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return outcome["wrote"]


@pytest.fixture
def probe_during(monkeypatch):
    """Wrap a function so that each call first checks whether another connection could write meanwhile."""
    seen: list[bool] = []

    def wrap(owner, name):
        original = getattr(owner, name)

        def probed(*args, **kwargs):
            seen.append(another_connection_can_write())
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, probed)
        return seen

    return wrap


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_DRY_RUN": "true"}, {"HTTP_IDEMPOTENCY_KEY": "k-1"}])
def test_a_write_requests_body_is_parsed_before_the_write_lock(api, probe_during, headers):
    seen = probe_during(SafeJSONParser, "parse")
    response = api.post("/api/v1/members/", {"external_id": "c-1"}, format="json", **headers)
    assert response.status_code == 201, response.content
    assert seen == [True]


@pytest.fixture(autouse=True)
def nothing_resolved_yet(monkeypatch):
    monkeypatch.setattr(urls_guard, "_resolved", {})


def fake_getaddrinfo(host, port, *args, **kwargs):
    return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_DRY_RUN": "true"}, {"HTTP_IDEMPOTENCY_KEY": "k-2"}])
def test_a_subscriptions_url_is_resolved_outside_the_write_transaction(
    api, probe_during, monkeypatch, headers
):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    seen = probe_during(urls_guard.socket, "getaddrinfo")
    body = {"url": "http://receiver.test/hook", "format": "standard", "events": ["coupon.redeemed"]}
    created = api.post("/api/v1/webhooks/subscriptions/", body, format="json", **headers)
    assert created.status_code == 201, created.content
    assert seen and all(seen)


def test_a_subscription_change_resolves_its_url_outside_the_write_transaction(api, probe_during, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    body = {"url": "http://receiver.test/hook", "format": "standard", "events": ["coupon.redeemed"]}
    subscription_id = api.post("/api/v1/webhooks/subscriptions/", body, format="json").json()["id"]
    seen = probe_during(urls_guard.socket, "getaddrinfo")
    response = api.patch(
        f"/api/v1/webhooks/subscriptions/{subscription_id}/", {"name": "renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert all(seen)


def test_an_import_job_checks_its_file_without_the_write_lock(offer, probe_during, settings):
    settings.CSV_IMPORT_INLINE_MAX_ROWS = 1
    seen = probe_during(csv_io, "_validated")
    job = csv_io.codes_import(offer=offer, file=io.BytesIO(b"code\nOWNCODE0001\nOWNCODE0002\n"))
    jobs.job_run(job_id=job.pk)
    assert Job.objects.get(pk=job.pk).state == Job.State.SUCCEEDED
    assert seen == [True]


def test_the_admin_resolves_a_subscriptions_url_outside_its_write_transaction(
    admin_client, probe_during, monkeypatch
):
    from django.urls import reverse

    from tests.webhooks.test_admin import add_form

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    seen = probe_during(urls_guard.socket, "getaddrinfo")
    response = admin_client.post(
        reverse("admin:webhooks_subscription_add"), add_form(url="http://receiver.test/h")
    )
    assert response.status_code == 200 and b"whsec_" in response.content  # the page showing the secret once
    assert seen and all(seen)


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_DRY_RUN": "true"}, {"HTTP_IDEMPOTENCY_KEY": "k-3"}])
def test_an_import_in_the_request_checks_its_file_before_the_write_lock(api, offer, probe_during, headers):
    seen = probe_during(csv_io, "_validated")
    response = api.post(
        f"/api/v1/offers/{offer.id}/codes/import", "code\nOWNCODE0001\n", content_type="text/csv", **headers
    )
    assert response.status_code == 201, response.content
    assert seen == [True]
