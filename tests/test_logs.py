"""Logs never hold a key, secret or signature, even at DEBUG through the paths that handle them."""

import logging

import pytest
from rest_framework.test import APIClient

from config.logging import JsonFormatter, redact
from coupons import services
from coupons.models import ApiKey
from tests.conftest import LEAKS
from tests.factories import CouponFactory
from webhooks.transport import deliveries_send_due

pytestmark = pytest.mark.django_db


def test_a_key_a_secret_and_a_signed_delivery_leave_no_trace_in_debug_logs(offer, httpserver, caplog):
    httpserver.expect_request("/hook").respond_with_data("ok")
    _, token = services.api_key_create(merchant=offer.merchant, scopes=list(ApiKey.SCOPES))
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with caplog.at_level(logging.DEBUG):
        created = api.post(
            "/api/v1/webhooks/subscriptions/",
            {"url": httpserver.url_for("/hook"), "format": "standard", "events": ["coupon.redeemed"]},
            format="json",
        ).json()
        rotated = api.post(f"/api/v1/webhooks/subscriptions/{created['id']}/rotate-secret").json()
        coupon = CouponFactory(offer=offer)
        api.post(
            "/api/v1/codes/redeem",
            {"code": coupon.code, "order_id": "1", "order_value": "50.00", "currency": "AUD"},
            format="json",
        )
        api.get("/api/v1/codes/UNKNOWN")  # a 404 logged by django.request with the request attached
        APIClient().get("/api/v1/offers/", HTTP_AUTHORIZATION="Bearer ck_wrongwrongwrongwrongwrong")
        deliveries_send_due()

    (sent,) = httpserver.log
    signature = sent[0].headers["webhook-signature"]
    assert created["secret"].startswith("whsec_") and signature.startswith("v1,")
    assert len(caplog.records) > 5  # the paths did log, at DEBUG too
    text = "\n".join(f"{r.getMessage()} {r.args} {r.exc_text or ''}" for r in caplog.records)
    for secret in (token, created["secret"], rotated["secret"], *signature.split(" ")):
        assert secret not in text
    assert not LEAKS.search(text)


def test_the_formatters_mask_anything_shaped_like_a_secret_that_reaches_them():
    line = "auth Bearer ck_abcdefghijklmnopqrstuvwx secret whsec_QUJDREVGR0hJSktMTU5P sig v1,K7gNU3sdo+OL0wNhqoVWhr3g6s1xYv72ol/pe/Unols="
    masked = redact(line)
    assert "abcdefghijklmnop" not in masked and "QUJDREVG" not in masked and "K7gNU3" not in masked
    assert masked.count("[redacted]") == 3 and redact("stack_world_create") == "stack_world_create"
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "%s", (line,), None)
    assert "abcdefghijklmnop" not in JsonFormatter().format(record)
