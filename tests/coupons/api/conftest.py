"""API test fixtures: keys for a merchant, another merchant and a distributor, and clients carrying them."""

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from coupons import services
from coupons.models import ApiKey, Distributor, Merchant
from tests import factories


def client_for(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def make_client(db) -> Callable[..., APIClient]:
    """A client whose key belongs to the given merchant and/or distributor, with the given scopes."""

    def make(
        merchant: Merchant | None = None,
        distributor: Distributor | None = None,
        scopes: list[str] | None = None,
    ) -> APIClient:
        _, token = services.api_key_create(
            merchant=merchant, distributor=distributor, scopes=scopes or list(ApiKey.SCOPES)
        )
        client = client_for(token)
        client.token = token
        return client

    return make


@pytest.fixture
def api(make_client, merchant) -> APIClient:
    """The merchant's client, with every scope."""
    return make_client(merchant=merchant)


@pytest.fixture
def other_api(make_client) -> APIClient:
    """Another merchant's client, with every scope."""
    return make_client(merchant=factories.MerchantFactory())


@pytest.fixture
def coupon(offer):
    return factories.CouponFactory(offer=offer)


def assert_error(response, status: int, code: str) -> dict:
    """The response has this status and the spec's error body with this code."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = response.json()
    assert set(body) == {"error"}
    assert {"code", "message", "fields"} <= set(body["error"])
    assert isinstance(body["error"]["fields"], dict)
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]
