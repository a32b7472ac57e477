"""The OpenAPI contract: a valid schema, a docs page served from the installed package, and a schemathesis run."""

import pytest
import schemathesis
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from coupons import jobs
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
