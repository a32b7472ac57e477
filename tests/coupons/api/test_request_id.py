"""Request ids: accepted or made, echoed, logged, put in error bodies, carried into tasks, events and attempts."""

import json
import logging

import pytest
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from config.logging import JsonFormatter, RequestIdFilter, TextFormatter
from config.request_id import current_request_id, request_id_bound, task_bind, task_unbind
from tests.webhooks.factories import SubscriptionFactory
from webhooks.models import Attempt, Event
from webhooks.transport import deliveries_send_due

from .conftest import assert_error

ORDER = {"order_value": "100.00", "currency": "AUD"}


@pytest.fixture
def json_log():
    """Every record of the test as the JSON lines production writes."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Collect()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logging.getLogger().addHandler(handler)
    yield lambda: [json.loads(line) for line in lines]
    logging.getLogger().removeHandler(handler)


def test_a_valid_incoming_request_id_is_echoed(api):
    response = api.get("/api/v1/offers/", HTTP_X_REQUEST_ID="lb-7f3a.91:abc")
    assert response["X-Request-ID"] == "lb-7f3a.91:abc"


@pytest.mark.parametrize("bad", ["has space", "x" * 129, "new\nline", "-leading-dash", "é"])
def test_an_invalid_request_id_is_replaced_by_a_new_one(api, bad):
    response = api.get("/api/v1/offers/", HTTP_X_REQUEST_ID=bad)
    assert response.status_code == 200
    assert response["X-Request-ID"] != bad and len(response["X-Request-ID"]) == 32


def test_every_response_gets_a_request_id_even_a_probe_or_a_page(client, db):
    ids = {client.get(path)["X-Request-ID"] for path in ("/healthz", "/admin/login/", "/nowhere")}
    assert len(ids) == 3


def test_an_error_body_names_the_request_id(api, client, db):
    body = assert_error(client.get("/api/v1/offers/", HTTP_X_REQUEST_ID="req-401"), 401, "unauthenticated")
    assert body["request_id"] == "req-401"
    response = api.post("/api/v1/codes/redeem", {"code": "NOPE", "order_id": "1", **ORDER}, format="json")
    assert assert_error(response, 404, "not_found")["request_id"] == response["X-Request-ID"]
    response = api.post("/api/v1/offers/", "{not json", content_type="application/json")
    assert assert_error(response, 400, "invalid_request")["request_id"] == response["X-Request-ID"]


def test_log_lines_of_a_request_carry_its_request_id(api, json_log):
    api.get("/api/v1/no-such-endpoint", HTTP_X_REQUEST_ID="req-logged")
    records = [r for r in json_log() if r["logger"] == "django.request"]
    assert records and all(r["request_id"] == "req-logged" for r in records)
    assert {"time", "level", "logger", "message", "request_id"} <= set(records[0])
    assert records[0]["level"] == "WARNING" and records[0]["status"] == 404


def test_the_readable_format_has_time_level_logger_and_request_id():
    record = logging.LogRecord("coupons.api", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    with request_id_bound("req-text"):
        line = TextFormatter().format(record)
    assert line.endswith(" INFO coupons.api [req-text] hello there") and line[:4].isdigit()


def test_a_task_enqueued_under_a_request_runs_under_its_id(db):
    with request_id_bound("req-task"):
        async_task("webhooks.tasks.deliveries_sweep_task", sync=False)
    task = OrmQ.objects.using(Conf.ORM).get().task
    assert task["request_id"] == "req-task"
    assert current_request_id() is None
    task_bind(None, task=task)
    try:
        assert current_request_id() == "req-task"
    finally:
        task_unbind(None, task=task)
    assert current_request_id() is None


@pytest.mark.django_db(transaction=True)
def test_a_generation_job_run_by_the_cluster_records_events_under_the_requests_id(api, offer, monkeypatch):
    # In sync mode django-q2 runs the task in this process, through the same signals a worker sends.
    monkeypatch.setattr(Conf, "SYNC", True)
    SubscriptionFactory(merchant=offer.merchant, events=["coupon.created"], url="http://127.0.0.1:9/x")
    response = api.post(
        f"/api/v1/offers/{offer.id}/coupons/", {"count": 3, "TaskServer": True}, format="json",
        HTTP_X_REQUEST_ID="req-job",
    )  # fmt: skip
    assert response.status_code == 202, response.content
    events = Event.objects.filter(type="coupon.created")
    assert events.exists() and {e.request_id for e in events} == {"req-job"}
    assert current_request_id() is None


def test_a_redemption_event_and_the_attempts_it_caused_name_the_request(api, coupon, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    SubscriptionFactory(url=httpserver.url_for("/hook"), merchant=coupon.offer.merchant)
    response = api.post(
        "/api/v1/codes/redeem", {"code": coupon.code, "order_id": "1", **ORDER}, format="json",
        HTTP_X_REQUEST_ID="req-redeem",
    )  # fmt: skip
    assert response.status_code == 201
    deliveries_send_due()
    attempt = Attempt.objects.select_related("delivery__event").get()
    assert attempt.delivery.event.request_id == "req-redeem"
