"""The OpenAPI contract: a valid schema, its docs page, a schemathesis run, every method and every field at its edges."""

import json
from urllib.parse import quote, urlencode

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from coupons import jobs
from coupons.services import api_key_create
from tests import factories

OBJECT_PARAMETERS = ("offer_id", "redemption_id", "member_id", "job_id", "code")


def test_the_schema_validates_without_warnings(db):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", "/dev/null")


def test_the_schema_documents_the_error_body_and_the_write_headers(client, db):
    schema = client.get("/api/schema/?format=json").json()
    assert set(schema["components"]["schemas"]["Error"]["properties"]) == {"error"}
    redeem = schema["paths"]["/api/v1/codes/redeem"]["post"]
    assert {"201", "200", "400", "401", "403", "404", "409", "413", "422", "429"} <= set(redeem["responses"])
    assert {p["name"] for p in redeem["parameters"]} >= {"X-DRY-RUN", "Idempotency-Key"}
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"


def test_the_docs_page_loads_its_assets_from_the_installed_package(client, db):
    page = client.get("/api/docs/").content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in page
    assert "cdn" not in page.lower() and "unpkg" not in page.lower()


@pytest.fixture
def api_schema(db):
    # Like Django's test client: a request must not close the connection holding the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


schema = schemathesis.from_pytest_fixture("api_schema")


@pytest.fixture
def world(make_client, merchant, site, member):
    """Real objects for about half of the generated cases, so deep paths run too, not only 404s."""
    offer = factories.OfferFactory(site=site, external_id="EXT")
    coupon = factories.CouponFactory(offer=offer, member=member)
    used = factories.CouponFactory(offer=offer, times_redeemed=1, status="redeemed")
    redemption = factories.RedemptionFactory(coupon=used, member=member)
    job = jobs.job_generate_start(offer=offer, count=2)
    client = make_client(merchant=merchant)
    return {
        "token": client.token,
        "objects": {"offer_id": offer.id, "redemption_id": redemption.id, "member_id": member.id,
                    "job_id": job.id, "code": coupon.code},
    }  # fmt: skip


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_no_generated_request_gets_a_500_and_every_4xx_has_the_error_body(case, world):
    for name in OBJECT_PARAMETERS:
        generated = (case.path_parameters or {}).get(name)
        if generated is not None and hash(str(generated)) % 2 == 0:
            case.path_parameters[name] = world["objects"][name]
    # On the case itself, so schemathesis's own auth check can swap it for a bad one and expect a 401.
    case.headers = {**(case.headers or {}), "Authorization": f"Bearer {world['token']}"}
    response = case.call_wsgi()
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if 400 <= response.status_code < 500:
        assert response.headers["Content-Type"].startswith("application/json")
        error = response.json["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)
        assert isinstance(error["fields"], dict)
    case.validate_response(response)


# --- every method, and the edges of every field ---------------------------------------------------------
#
# Deterministic companions of the generated run: each route of the schema under every HTTP method, and each
# field of each request body, query and path under values at the edges of what Python, SQLite and PostgreSQL
# hold. None may answer a 500, and every 4xx carries the error body.

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
EDGES = (
    "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "0001-01-01", "9999-12-31",
    0, -1, 2**31, 2**63, 10**30, 1e308, "9" * 40,
    "\x00", "a\x00b", "\ud800", "C" * 65, "C" * 5000,
    None, True, [], ["\x00"], [2**63], {"\x00": 1}, {"k": "\udfff"}, {"k": 2**63},
)  # fmt: skip
QUERY_EDGES = ("\x00", "0001-01-01T00:00:00+05:00", str(2**63), "-1", "1e999", "C" * 65, "\ud800")
PATH_EDGES = {"code": ("\x00", "C" * 65, "🎟️", "\ud800"), "id": (str(2**63), str(2**31), "0")}


@pytest.fixture
def edge_world(make_client, merchant, site, member):
    from tests.webhooks.factories import DeliveryFactory, SubscriptionFactory

    offer = factories.OfferFactory(site=site, external_id="EXT")
    coupon = factories.CouponFactory(offer=offer, member=member)
    used = factories.CouponFactory(offer=offer, times_redeemed=1, status="redeemed")
    subscription = SubscriptionFactory(merchant=merchant)
    objects = {
        "offer_id": offer.id, "code": coupon.code, "member_id": member.id, "job_id": jobs.job_generate_start(
            offer=offer, count=2).id, "redemption_id": factories.RedemptionFactory(coupon=used, member=member).id,
        "subscription_id": subscription.id, "delivery_id": DeliveryFactory(subscription=subscription).id,
        "key_id": api_key_create(merchant=merchant, scopes=["read"])[0].id,  # not the caller's: revoke must not end it
    }  # fmt: skip
    bodies = {
        ("POST", "/api/v1/offers/"): {"name": "x", "coupon_type": "fixedAmount", "discount_value": "5.00"},
        ("POST", "/api/v1/offers/{offer_id}/coupons/"): {"count": 1},
        ("POST", "/api/v1/offers/{offer_id}/issue"): {"identifier": "edge"},
        ("POST", "/api/v1/codes/validate"): {"code": coupon.code, "order_value": "10", "currency": "AUD"},
        ("POST", "/api/v1/codes/redeem"): {"code": coupon.code, "order_value": "10", "currency": "AUD",
                                           "order_id": "edge"},
        ("POST", "/api/v1/webhooks/subscriptions/"): {"url": "http://127.0.0.1:9/hook", "format": "uniqodo_callback",
                                                      "events": ["coupon.redeemed"], "params": {"code": "code"}},
    }  # fmt: skip
    return make_client(merchant=merchant), objects, bodies


def _operations(client) -> list[tuple[str, str, dict]]:
    schema = client.get("/api/schema/?format=json").json()
    return [(method.upper(), path, operation) for path, operations in schema["paths"].items()
            for method, operation in operations.items()], schema  # fmt: skip


def _filled(path: str, objects: dict, **given) -> str:
    for name, value in {**objects, **given}.items():
        path = path.replace("{" + name + "}", quote(str(value), safe="", errors="surrogatepass"))
    return path


def _problem(response, method: str, label: str) -> str | None:
    """What is wrong with an answer to bad input, or None."""
    if response.status_code >= 500:
        return f"{label}: {response.status_code} {response.content[:200]!r}"
    if 400 <= response.status_code < 500 and method != "HEAD":
        error = (
            response.json().get("error") if response["Content-Type"].startswith("application/json") else None
        )
        if not (isinstance(error, dict) and {"code", "message", "fields"} <= set(error)):
            return f"{label}: {response.status_code} without the error body"
    return None


def _body_fields(schema: dict, operation: dict) -> list[str]:
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if not content or "$ref" not in content["schema"]:
        return []
    return list(schema["components"]["schemas"][content["schema"]["$ref"].split("/")[-1]]["properties"])


def test_every_method_of_every_route_answers_without_a_500(edge_world):
    client, objects, _ = edge_world
    operations, _ = _operations(client)
    problems = []
    for path in sorted({path for _, path, _ in operations}):
        for method in METHODS:
            response = client.generic(method, _filled(path, objects), "{}", content_type="application/json")
            problems.append(_problem(response, method, f"{method} {path}"))
            if method == "OPTIONS":
                assert response.status_code == 200 and response["Allow"], path
    assert [p for p in problems if p] == []


def test_no_field_at_the_edge_of_its_range_gets_a_500(edge_world):
    client, objects, bodies = edge_world
    operations, schema = _operations(client)
    problems = []
    for method, path, operation in operations:
        url = _filled(path, objects)
        for name in _body_fields(schema, operation):
            for value in EDGES:
                if name == "vanity_code" and isinstance(value, str | int | float) and value is not True:
                    value = f"{method}{value}"  # one offer's vanity code is not another's: the edge, not a collision
                body = json.dumps({**bodies.get((method, path), {}), name: value})
                response = client.generic(method, url, body, content_type="application/json")
                problems.append(_problem(response, method, f"{method} {path} {name}={value!r:.40}"))
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "query":
                for value in QUERY_EDGES:
                    response = client.generic(
                        method, f"{url}?{urlencode({parameter['name']: value}, errors='surrogatepass')}"
                    )
                    problems.append(
                        _problem(response, method, f"{method} {path}?{parameter['name']}={value!r:.40}")
                    )
            elif parameter["in"] == "path":
                for value in PATH_EDGES["code" if parameter["name"] == "code" else "id"]:
                    edge_url = _filled(path, objects, **{parameter["name"]: value})
                    response = client.generic(method, edge_url, "{}", content_type="application/json")
                    problems.append(
                        _problem(response, method, f"{method} {path} {parameter['name']}={value!r:.40}")
                    )
    assert [p for p in problems if p] == []
