"""GET /metrics: refused without its token; request, redemption, delivery, job and queue figures that move."""

import json
import re
import urllib.request
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from config.metrics import codes_generated_count
from coupons import services
from coupons.models import ApiKey, Job
from tests import factories
from tests.webhooks.factories import DeliveryFactory, EventFactory, SubscriptionFactory
from webhooks.transport import deliveries_send_due

TOKEN = "metrics-test-token"
ORDER = {"order_value": "100.00", "currency": "AUD"}


@pytest.fixture
def scrape(client, settings):
    settings.METRICS_TOKEN = TOKEN

    def scrape() -> dict[str, float]:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200 and response["Content-Type"].startswith("text/plain")
        return samples(response.content.decode())

    return scrape


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample in a Prometheus text exposition."""
    found = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*(?:\{.*\})?) (\S+)", line)
        if match and not line.startswith("#"):
            found[match[1]] = float(match[2])
    return found


def value(found: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include these."""
    total = 0.0
    for key, number in found.items():
        base, _, rest = key.partition("{")
        if base == name and all(f'{k}="{v}"' in rest for k, v in labels.items()):
            total += number
    return total


def test_metrics_are_refused_without_the_token_and_off_without_one_configured(client, settings, db):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics").status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_a_redemption_a_refusal_and_a_delivery_move_their_counters(scrape, offer, httpserver):
    httpserver.expect_request("/hook").respond_with_data("ok")
    SubscriptionFactory(url=httpserver.url_for("/hook"), merchant=offer.merchant)
    coupon = factories.CouponFactory(offer=offer)
    _, token = services.api_key_create(merchant=offer.merchant, scopes=list(ApiKey.SCOPES))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    before = scrape()

    for order_id in ("1", "2"):
        api.post("/api/v1/codes/redeem", {"code": coupon.code, "order_id": order_id, **ORDER}, format="json")
    middle = scrape()
    deliveries_send_due()  # what the cluster's dispatcher does
    after = scrape()

    assert value(middle, "coupon_redemptions_total") - value(before, "coupon_redemptions_total") == 1
    refused = "coupon_redemption_refusals_total"
    assert (
        value(middle, refused, reason="already_redeemed") - value(before, refused, reason="already_redeemed")
        == 1
    )
    route = {"route": "/api/v1/codes/redeem", "method": "POST"}
    assert (
        value(middle, "http_requests_total", status="201", **route)
        - value(before, "http_requests_total", status="201", **route)
        == 1
    )
    assert value(middle, "http_request_duration_seconds_count", status="409", **route) >= 1
    assert value(middle, "webhook_deliveries_pending") == 1  # the redemption's webhook, not yet sent
    assert value(after, "webhook_deliveries_pending") == 0
    sent = "webhook_deliveries_total"
    assert value(after, sent, outcome="succeeded") - value(before, sent, outcome="succeeded") == 1


def test_the_database_gauges_show_the_oldest_due_delivery_failing_receivers_jobs_and_the_queue(scrape, offer):
    subscription = SubscriptionFactory(failing_since=timezone.now(), circuit_opened_at=timezone.now())
    DeliveryFactory(
        subscription=subscription,
        event=EventFactory(),
        next_attempt_at=timezone.now() - timedelta(minutes=10),
    )
    Job.objects.create(kind=Job.Kind.GENERATE, offer=offer, state=Job.State.RUNNING, total=10)
    before = scrape()
    codes_generated_count(500)
    found = scrape()

    assert 590 <= value(found, "webhook_oldest_due_delivery_age_seconds") <= 700
    assert value(found, "webhook_subscriptions_circuit_open") == 1
    assert (
        value(found, "coupon_jobs", state="running") == 1 and value(found, "coupon_jobs", state="failed") == 0
    )
    assert value(found, "coupon_codes_generated_total") - value(before, "coupon_codes_generated_total") == 500
    assert 'task_queue_length{cluster="platform"}' in found and 'task_queue_length{cluster="bulk"}' in found


@pytest.mark.slow
def test_metrics_sum_two_gunicorn_workers_and_the_bulk_cluster_whose_work_keeps_the_request_id(tmp_path):
    """Also: gunicorn's access log in JSON with the request id, and a job's events under its request's id."""
    from tests.stack import Stack, wait_until

    metrics_dir = tmp_path / "metrics"
    stack = Stack(tmp_path, None, None, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), METRICS_TOKEN=TOKEN)
    try:
        world = stack.world(codes=1, receiver_urls=["http://127.0.0.1:9/hook"], events=["coupon.created"])
        web, base = stack.web(WEB_CONCURRENCY="2", LOG_LEVEL="INFO", LOG_FORMAT="json")
        stack.cluster(Q_CLUSTER_NAME="bulk")

        def get(path: str, **headers: str) -> bytes:
            request = urllib.request.Request(base + path, headers={"Connection": "close", **headers})
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read()

        for _ in range(20):  # one connection each: the kernel spreads them over both workers
            get("/admin/login/", **{"X-Request-ID": "req-gunicorn"})
        stack.django(
            "from config.request_id import request_id_bound\nfrom coupons import jobs\n"
            "from coupons.models import Offer\nfrom django.db import transaction\n"
            "with request_id_bound('req-cluster'), transaction.atomic():\n"
            "    jobs.job_generate_start(offer=Offer.objects.get(pk=offer_id), count=250)",
            offer_id=world["offer_id"],
        )

        def scrape() -> dict[str, float]:
            return samples(get("/metrics", Authorization=f"Bearer {TOKEN}").decode())

        wait_until(
            lambda: value(scrape(), "coupon_codes_generated_total") == 250, 60, "the job's codes counted"
        )
        worker_files = {p.name.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}
        for _ in range(5):  # whichever worker answers, the sum is the same
            assert value(scrape(), "http_requests_total", route="/admin/login/", status="200") == 20
        assert len(worker_files) >= 3  # two web workers and at least one cluster process wrote counters

        # The world's own code was made outside any request; the job's, in the cluster, under the enqueuer's id.
        created = stack.sql("SELECT DISTINCT request_id FROM webhooks_event WHERE type = 'coupon.created'")
        assert set(created) == {(None,), ("req-cluster",)}
        access = [json.loads(line) for line in web.log().splitlines() if '"gunicorn.access"' in line]
        login = [line for line in access if line["path"] == "/admin/login/"]
        assert len(login) == 20 and {line["request_id"] for line in login} == {"req-gunicorn"}
        assert {"time", "level", "message", "status", "duration_ms"} <= set(login[0]) and login[0][
            "status"
        ] == 200
    finally:
        stack.close()


def test_odd_methods_and_unknown_paths_do_not_make_new_series(scrape, client, db):
    client.generic("BREW", "/api/v1/offers/")
    client.get("/api/v1/no/such/path/12345")
    found = scrape()
    assert value(found, "http_requests_total", method="other") >= 1
    assert value(found, "http_requests_total", route="unmatched", status="404") >= 1
    assert not any("BREW" in key or "12345" in key for key in found)
