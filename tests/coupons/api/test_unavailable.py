"""A database that is down answers 503 with the error body and Retry-After, never a 500."""

from django import db

from coupons import services
from tests.coupons.api.conftest import assert_error


def test_a_lost_database_connection_answers_503_with_retry_after(api, coupon, monkeypatch):
    def lost(**kwargs):
        raise db.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "coupon_redeem", lost)
    api.raise_request_exception = False
    body = {"code": coupon.code, "order_id": "A1", "order_value": "50.00", "currency": "AUD"}
    response = api.post("/api/v1/codes/redeem", body, format="json")
    assert_error(response, 503, "service_unavailable")
    assert response["Retry-After"] == "5"
