"""Every API operation has a stable, readable operationId (a generated client's method name), named in the view."""

import re

from django.urls import path
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from coupons.api.base import ApiView

OPERATION_IDS = {
    ("GET", "/api/v1/codes/{code}"): "getCode",
    ("POST", "/api/v1/codes/{code}/view"): "viewCode",
    ("POST", "/api/v1/codes/redeem"): "redeemCode",
    ("POST", "/api/v1/codes/validate"): "validateCode",
    ("GET", "/api/v1/customer_engagement/coupon"): "issueCustomerEngagementCoupon",
    ("GET", "/api/v1/jobs/{job_id}/"): "getJob",
    ("GET", "/api/v1/keys/"): "listApiKeys",
    ("POST", "/api/v1/keys/"): "createApiKey",
    ("GET", "/api/v1/keys/{key_id}/"): "getApiKey",
    ("POST", "/api/v1/keys/{key_id}/revoke"): "revokeApiKey",
    ("GET", "/api/v1/members/"): "listMembers",
    ("POST", "/api/v1/members/"): "createMember",
    ("GET", "/api/v1/members/{member_id}/"): "getMember",
    ("GET", "/api/v1/members/{member_id}/coupons/"): "listMemberCoupons",
    ("GET", "/api/v1/members/{member_id}/redemptions/"): "listMemberRedemptions",
    ("GET", "/api/v1/offers/"): "listOffers",
    ("POST", "/api/v1/offers/"): "createOffer",
    ("GET", "/api/v1/offers/{offer_id}/"): "getOffer",
    ("PATCH", "/api/v1/offers/{offer_id}/"): "updateOffer",
    ("POST", "/api/v1/offers/{offer_id}/codes/import"): "importCodes",
    ("GET", "/api/v1/offers/{offer_id}/coupons/"): "listCoupons",
    ("POST", "/api/v1/offers/{offer_id}/coupons/"): "createCoupons",
    ("GET", "/api/v1/offers/{offer_id}/coupons.csv"): "exportCouponsCsv",
    ("POST", "/api/v1/offers/{offer_id}/issue"): "issueCoupon",
    ("GET", "/api/v1/offers/{offer_id}/stats/"): "getOfferStats",
    ("GET", "/api/v1/redemptions/"): "listRedemptions",
    ("GET", "/api/v1/redemptions/{redemption_id}/"): "getRedemption",
    ("POST", "/api/v1/redemptions/{redemption_id}/rollback"): "rollbackRedemption",
    ("GET", "/api/v1/webhooks/attempts/"): "listWebhookAttempts",
    ("GET", "/api/v1/webhooks/deliveries/"): "listWebhookDeliveries",
    ("GET", "/api/v1/webhooks/deliveries/{delivery_id}/"): "getWebhookDelivery",
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/replay"): "replayWebhookDelivery",
    ("POST", "/api/v1/webhooks/deliveries/{delivery_id}/retry"): "retryWebhookDelivery",
    ("GET", "/api/v1/webhooks/subscriptions/"): "listWebhookSubscriptions",
    ("POST", "/api/v1/webhooks/subscriptions/"): "createWebhookSubscription",
    ("GET", "/api/v1/webhooks/subscriptions/{subscription_id}/"): "getWebhookSubscription",
    ("PATCH", "/api/v1/webhooks/subscriptions/{subscription_id}/"): "updateWebhookSubscription",
    ("DELETE", "/api/v1/webhooks/subscriptions/{subscription_id}/"): "deleteWebhookSubscription",
    ("POST", "/api/v1/webhooks/subscriptions/{subscription_id}/recover"): "recoverWebhookDeliveries",
    ("POST", "/api/v1/webhooks/subscriptions/{subscription_id}/rotate-secret"): "rotateWebhookSecret",
    ("POST", "/api/v1/webhooks/subscriptions/{subscription_id}/test"): "sendWebhookTestEvent",
}


def test_every_operation_has_its_stable_readable_id(client, db):
    schema = client.get("/api/schema/?format=json").json()
    found = {
        (method.upper(), route): operation["operationId"]
        for route, operations in schema["paths"].items()
        for method, operation in operations.items()
    }
    assert found == OPERATION_IDS
    assert all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z0-9]*)+", name) for name in found.values())
    assert len(set(found.values())) == len(found)


class UnnamedApi(ApiView):
    required_scope = "read"

    @extend_schema(summary="An operation someone forgot to name", responses={200: None})
    def get(self, request):
        return Response()


def test_an_operation_without_an_id_is_a_schema_warning_so_the_schema_check_fails(db):
    GENERATOR_STATS.reset()
    try:
        with GENERATOR_STATS.silence():
            SchemaGenerator(patterns=[path("api/v1/unnamed/", UnnamedApi.as_view())]).get_schema(public=True)
        assert any("names no operation_id" in warning for warning in GENERATOR_STATS._warn_cache)
    finally:
        GENERATOR_STATS.reset()
