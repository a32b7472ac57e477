"""Health probes: /healthz never touches the database, /readyz checks the database and the task broker."""

import os
import socket

import pytest
from django.test import Client

from config import health


@pytest.fixture
def broker_url(settings):
    """Set REDIS_URL for one test; the probe's cached client is dropped before and after."""

    def use(url: str) -> None:
        settings.REDIS_URL = url
        health._redis_client.cache_clear()

    yield use
    health._redis_client.cache_clear()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_the_database() -> None:
    # No db fixture: pytest-django fails any query, so a 200 proves the probe made none.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]
    assert response["Content-Length"] == str(len(response.content))


def test_probes_answer_whatever_host_the_load_balancer_sends() -> None:
    response = Client(HTTP_HOST="10.1.2.3:8000").get("/healthz")
    assert response.status_code == 200


def test_healthz_refuses_writes() -> None:
    assert Client().post("/healthz").status_code == 405


@pytest.mark.django_db
def test_readyz_checks_the_database_and_the_orm_broker(settings) -> None:
    settings.REDIS_URL = ""
    body = Client().get("/readyz").json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.django_db
def test_readyz_is_503_with_the_reason_when_redis_refuses(broker_url) -> None:
    broker_url(f"redis://127.0.0.1:{closed_port()}/0")
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["reason"] == "broker"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["broker"] == {"ok": False, "ms": body["checks"]["broker"]["ms"]}
    assert "127.0.0.1" not in response.content.decode()


@pytest.mark.django_db
def test_readyz_tells_only_staff_why_a_dependency_failed(broker_url, admin_client, django_user_model) -> None:
    broker_url(f"redis://127.0.0.1:{closed_port()}/0")
    body = admin_client.get("/readyz").json()
    assert body["reason"].startswith("broker: ConnectionError")
    assert body["checks"]["broker"]["error"].startswith("ConnectionError")
    user = django_user_model.objects.create_user("shopper", password="x")
    visitor = Client()
    visitor.force_login(user)
    assert visitor.get("/readyz").json()["reason"] == "broker"


@pytest.mark.redis
@pytest.mark.django_db
def test_readyz_pings_redis_when_it_is_the_broker(broker_url) -> None:
    broker_url(os.environ["TEST_REDIS_URL"])
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"]["broker"]["ok"] is True
