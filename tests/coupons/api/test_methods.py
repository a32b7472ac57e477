"""OPTIONS describes an endpoint, HEAD is a GET without its body, and a method outside a view's scopes is refused."""

import pytest
from rest_framework.views import APIView

from coupons.api.auth import HasApiKey
from coupons.models import ApiKey, Coupon
from tests.coupons.api.conftest import assert_error, client_for


@pytest.mark.parametrize(
    "path, allowed",
    [
        ("/api/v1/codes/redeem", "POST, OPTIONS"),
        ("/api/v1/offers/{offer}/coupons/", "GET, POST, HEAD, OPTIONS"),
        ("/api/v1/offers/{offer}/", "GET, PATCH, HEAD, OPTIONS"),
        ("/api/v1/webhooks/subscriptions/", "GET, POST, HEAD, OPTIONS"),
    ],
)
def test_options_names_the_endpoint_and_its_methods(api, offer, path, allowed):
    response = api.options(path.format(offer=offer.id))
    assert response.status_code == 200, response.content[:300]
    assert response["Allow"] == allowed
    body = response.json()
    assert body["methods"] == allowed.split(", ")
    assert body["schema"] == "/api/schema/"


def test_options_needs_a_key_but_no_scope(make_client, merchant, offer):
    assert_error(client_for(None).options("/api/v1/codes/redeem"), 401, "unauthenticated")
    reader = make_client(merchant=merchant, scopes=["read"])
    assert reader.options("/api/v1/codes/redeem").status_code == 200


def test_head_answers_the_get_without_a_body(api, offer):
    get, head = api.get(f"/api/v1/offers/{offer.id}/"), api.head(f"/api/v1/offers/{offer.id}/")
    assert head.status_code == 200 and head.content == b""
    assert head["Content-Type"] == get["Content-Type"]


def test_head_needs_the_scope_of_the_get(make_client, merchant, offer):
    issuer = make_client(merchant=merchant, scopes=["issue"])
    assert_error(issuer.get(f"/api/v1/offers/{offer.id}/"), 403, "forbidden")
    assert issuer.head(f"/api/v1/offers/{offer.id}/").status_code == 403


def test_head_never_mints_a_code_on_the_create_or_retrieve_get(api, offer):
    offer.external_id = "EXT"
    offer.save()
    query = f"applicationId={offer.merchant_id}&campaignId={offer.id}&externalCampaignId=EXT&identifier=c-1"
    response = api.head(f"/api/v1/customer_engagement/coupon?{query}")
    assert response.status_code == 405
    assert not Coupon.objects.exists()


def test_a_method_missing_from_a_views_scope_map_is_refused():
    class View(APIView):
        required_scope = {"GET": "read"}

        def get(self, request): ...

        def delete(self, request): ...

    class Request:
        def __init__(self, method):
            self.method, self.auth = method, ApiKey(scopes=list(ApiKey.SCOPES))

    permission, view = HasApiKey(), View()
    # PUT has no handler: the permission lets it through to DRF's 405; DELETE has one but no scope.
    for method, allowed in [
        ("GET", True),
        ("HEAD", True),
        ("OPTIONS", True),
        ("DELETE", False),
        ("PUT", True),
    ]:
        assert permission.has_permission(Request(method), view) is allowed, method


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"])
def test_the_schema_and_docs_pages_answer_every_method_without_a_500(client, db, method):
    for path in ("/api/schema/", "/api/docs/", "/healthz", "/readyz"):
        response = client.generic(method, path)
        assert response.status_code < 500, (method, path, response.content[:200])
