"""Webhook API (scope `webhooks`): an owner's subscriptions, its deliveries with their attempts, retries and replays."""

from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.response import Response

from audit.services import audit_record
from coupons.api.base import ApiView
from coupons.api.pagination import CursorOrPagePagination, IdCursorPagination
from coupons.api.serializers import INT32_MAX, CalendarDateTimeField, IsoDateTimeField, OutputSerializer
from coupons.models import Distributor, Merchant
from webhooks import selectors, services
from webhooks.formats import EVENT_TYPES, FORMAT_CHOICES
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.redaction import headers_redacted, url_redacted
from webhooks.urls_guard import resolve_ahead

SCOPE = "webhooks"


# --- shapes ----------------------------------------------------------------------------------------


class StrictSerializer(serializers.Serializer):
    """Refuses keys it does not know, so a misspelt field is an error rather than silently ignored."""

    def read_only_names(self) -> set[str]:
        """Fields the answer shows but a request may not set: named `read_only` rather than `unknown`."""
        return set()

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            read_only = [name for name in unknown if name in self.read_only_names()]
            if unknown:
                raise serializers.ValidationError(
                    {name: ["read_only" if name in read_only else "unknown"] for name in unknown}
                )
        return super().to_internal_value(data)


class SubscriptionInSerializer(StrictSerializer):
    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    url = serializers.CharField(max_length=2000)
    format = serializers.ChoiceField(choices=FORMAT_CHOICES)
    events = serializers.ListField(child=serializers.CharField(max_length=40), max_length=len(EVENT_TYPES))
    http_method = serializers.ChoiceField(choices=["GET", "POST"], required=False)
    params = serializers.DictField(child=serializers.CharField(max_length=40), required=False)
    headers = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True), required=False
    )
    offer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=INT32_MAX), max_length=1000, required=False
    )
    active = serializers.BooleanField(required=False)

    def read_only_names(self) -> set[str]:
        return {*SubscriptionSerializer.Meta.fields, "secret"}

    def validate_http_method(self, value: str) -> str:
        return value.upper()


class CircuitSerializer(serializers.Serializer):
    """The circuit breaker: `open` pauses deliveries (none is dropped) until a probe succeeds."""

    state = serializers.SerializerMethodField()
    paused_since = serializers.DateTimeField(allow_null=True, source="circuit_opened_at")
    next_probe_at = serializers.DateTimeField(allow_null=True, source="circuit_probe_at")
    consecutive_failures = serializers.IntegerField()

    @extend_schema_field(serializers.ChoiceField(choices=["closed", "open"]))
    def get_state(self, subscription: Subscription) -> str:
        return "open" if subscription.circuit_open else "closed"


class SubscriptionSerializer(OutputSerializer):
    """A subscription as shown after its creation: credentials in its URL and header values masked."""

    url = serializers.SerializerMethodField()
    headers = serializers.SerializerMethodField()
    offer_ids = serializers.SerializerMethodField()
    circuit = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = ["id", "name", "url", "format", "events", "http_method", "params", "headers", "offer_ids", "active",
                  "disabled_reason", "circuit", "created_at", "updated_at"]  # fmt: skip

    @extend_schema_field(CircuitSerializer)
    def get_circuit(self, subscription: Subscription) -> dict:
        return CircuitSerializer(subscription).data

    def get_offer_ids(self, subscription: Subscription) -> list[int]:
        return sorted(offer.id for offer in subscription.offers.all())

    def get_url(self, subscription: Subscription) -> str:
        return url_redacted(subscription.url)

    @extend_schema_field(serializers.DictField(child=serializers.CharField()))
    def get_headers(self, subscription: Subscription) -> dict:
        return headers_redacted(subscription.headers)


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    """The creating answer: it echoes the URL and headers as sent, with the secret shown this once."""

    url = serializers.CharField()
    headers = serializers.DictField(child=serializers.CharField())
    secret = serializers.CharField(
        required=False, help_text="The whsec_ signing secret: shown in this answer only (not in a replay)."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class SecretSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    secret = serializers.CharField(
        required=False,
        help_text="The new whsec_ signing secret: shown in this answer only (not in a replay).",
    )
    previous_secret_expires_at = serializers.DateTimeField(help_text="Until then the old secret signs too.")


class AttemptSerializer(OutputSerializer):
    class Meta:
        model = Attempt
        fields = ["id", "started_at", "trigger", "request_method", "request_url", "status_code", "duration_ms",
                  "response_excerpt", "error"]  # fmt: skip


class AttemptListedSerializer(AttemptSerializer):
    delivery_id = serializers.IntegerField(read_only=True)
    subscription_id = serializers.IntegerField(source="delivery.subscription_id", read_only=True)

    class Meta(AttemptSerializer.Meta):
        fields = ["id", "delivery_id", "subscription_id", *AttemptSerializer.Meta.fields[1:]]


class DeliverySerializer(OutputSerializer):
    event_id = serializers.UUIDField(source="event.uuid")
    event_type = serializers.CharField(source="event.type")
    attempt_count = serializers.IntegerField(source="attempts")
    attempts = AttemptSerializer(source="attempt_log", many=True)

    class Meta:
        model = Delivery
        fields = ["id", "subscription_id", "event_id", "event_type", "message_id", "status", "attempt_count",
                  "next_attempt_at", "last_status_code", "last_error", "created_at", "delivered_at", "attempts"]  # fmt: skip


class TestEventInSerializer(StrictSerializer):
    event_type = serializers.ChoiceField(
        choices=list(EVENT_TYPES),
        required=False,
        help_text="One event the subscription receives; by default the first of them.",
    )


class RecoverInSerializer(StrictSerializer):
    since = CalendarDateTimeField(help_text="Failed deliveries created from then on are sent again.")


class RecoveredSerializer(serializers.Serializer):
    subscription_id = serializers.IntegerField()
    since = IsoDateTimeField()
    recovered = serializers.IntegerField(help_text="How many failed deliveries will be sent again.")


class DeliveryFilterSerializer(serializers.Serializer):
    subscription = serializers.IntegerField(min_value=1, max_value=INT32_MAX, required=False)
    status = serializers.ChoiceField(choices=Delivery.Status.choices, required=False)
    event_type = serializers.ChoiceField(choices=list(EVENT_TYPES), required=False)


class AttemptFilterSerializer(serializers.Serializer):
    subscription = serializers.IntegerField(min_value=1, max_value=INT32_MAX, required=False)
    delivery = serializers.IntegerField(min_value=1, max_value=2**63 - 1, required=False)


def _valid(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _service_fields(validated: dict) -> dict:
    fields = dict(validated)
    if "offer_ids" in fields:
        fields["offers"] = fields.pop("offer_ids")
    return fields


def _deliveries(queryset: QuerySet[Delivery]) -> QuerySet[Delivery]:
    attempts = Prefetch("attempt_log", queryset=Attempt.objects.order_by("id"))
    return queryset.select_related("event").prefetch_related(attempts)


def _delivery_answer(delivery: Delivery, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(
        DeliverySerializer(_deliveries(Delivery.objects).get(pk=delivery.pk)).data, status=status_code
    )


def _body_or_empty(request):
    # An action whose body is optional: no body (or an empty one) reads as {}.
    return request.data if request.data not in (None, b"", "") else {}


def _url_given(request):
    return request.data.get("url") if isinstance(request.data, dict) else None


class SubscriptionView(ApiView):
    required_scope = SCOPE

    def subscription(self, subscription_id) -> Subscription:
        """The key's own subscription; another owner's answers 404 as if it did not exist."""
        return selectors.subscription_get(owner=self.owner, subscription_id=subscription_id)


# --- subscriptions ---------------------------------------------------------------------------------


class SubscriptionsApi(ApiView):
    required_scope = SCOPE
    secret_fields = ("secret",)

    def before_transaction(self, request, *args, **kwargs) -> None:
        resolve_ahead(_url_given(request))

    @extend_schema(
        operation_id="listWebhookSubscriptions",
        summary="List webhook subscriptions",
        responses={200: SubscriptionSerializer(many=True)},
    )
    def get(self, request):
        subscriptions = selectors.subscriptions_of(self.owner).prefetch_related("offers").order_by("id")
        page = self.paginate_queryset(subscriptions)
        return self.get_paginated_response(SubscriptionSerializer(page, many=True).data)

    @extend_schema(
        operation_id="createWebhookSubscription",
        summary="Create a webhook subscription",
        description="The answer carries the signing secret; it is never shown again.",
        request=SubscriptionInSerializer,
        responses={201: SubscriptionCreatedSerializer},
    )
    def post(self, request):
        fields = _service_fields(_valid(SubscriptionInSerializer, request.data))
        owner = self.owner
        subscription = services.subscription_create(
            merchant=Merchant.objects.filter(pk=owner.merchant_id).first(),
            distributor=Distributor.objects.filter(pk=owner.distributor_id).first(),
            **fields,
        )
        audit_record(api_key=request.auth, action="subscription.create", obj=subscription, changes=fields)
        return Response(SubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED)


class SubscriptionApi(SubscriptionView):
    def before_transaction(self, request, *args, **kwargs) -> None:
        if request.method == "PATCH":
            resolve_ahead(_url_given(request) or self.subscription(kwargs["subscription_id"]).url)

    @extend_schema(
        operation_id="getWebhookSubscription",
        summary="Get a webhook subscription",
        responses={200: SubscriptionSerializer},
    )
    def get(self, request, subscription_id: int):
        return Response(SubscriptionSerializer(self.subscription(subscription_id)).data)

    @extend_schema(
        operation_id="updateWebhookSubscription",
        summary="Change a webhook subscription",
        description="Turning `active` back on clears `disabled_reason`.",
        request=SubscriptionInSerializer,
        responses={200: SubscriptionSerializer},
    )
    def patch(self, request, subscription_id: int):
        subscription = self.subscription(subscription_id)
        fields = _service_fields(_valid(SubscriptionInSerializer, request.data, partial=True))
        subscription = services.subscription_update(subscription=subscription, **fields)
        audit_record(api_key=request.auth, action="subscription.update", obj=subscription, changes=fields)
        return Response(SubscriptionSerializer(self.subscription(subscription.id)).data)

    @extend_schema(
        operation_id="deleteWebhookSubscription",
        summary="Delete a webhook subscription and its delivery log",
        responses={204: None},
    )
    def delete(self, request, subscription_id: int):
        subscription = self.subscription(subscription_id)
        audit_record(api_key=request.auth, action="subscription.delete", obj=subscription)
        services.subscription_delete(subscription=subscription)
        return Response(status=status.HTTP_204_NO_CONTENT)


class SubscriptionRotateSecretApi(SubscriptionView):
    secret_fields = ("secret",)

    @extend_schema(
        operation_id="rotateWebhookSecret",
        summary="Rotate a subscription's signing secret",
        description="The previous secret keeps signing alongside the new one for 24 hours.",
        request=None,
        responses={200: SecretSerializer},
    )
    def post(self, request, subscription_id: int):
        subscription = self.subscription(subscription_id)
        secret = services.subscription_rotate_secret(subscription=subscription)
        audit_record(api_key=request.auth, action="subscription.rotate_secret", obj=subscription)
        body = {"id": subscription.id, "secret": secret,
                "previous_secret_expires_at": subscription.previous_secret_expires_at}  # fmt: skip
        return Response(SecretSerializer(body).data)


class SubscriptionTestApi(SubscriptionView):
    @extend_schema(
        operation_id="sendWebhookTestEvent",
        summary="Send a test event",
        description='A sample of an event the subscription receives (by default the first), marked `"test": true`. '
        "A disabled subscription answers 409 `subscription_disabled`.",
        request=TestEventInSerializer,
        responses={202: DeliverySerializer},
    )
    def post(self, request, subscription_id: int):
        subscription = self.subscription(subscription_id)
        fields = _valid(TestEventInSerializer, _body_or_empty(request))
        delivery = services.subscription_send_test_event(subscription=subscription, **fields)
        audit_record(api_key=request.auth, action="subscription.test_event", obj=subscription,
                     changes={"event_type": delivery.event.type, "delivery_id": delivery.id})  # fmt: skip
        return _delivery_answer(delivery, status.HTTP_202_ACCEPTED)


class SubscriptionRecoverApi(SubscriptionView):
    @extend_schema(
        operation_id="recoverWebhookDeliveries",
        summary="Send again every failed delivery since a time",
        description='As the admin\'s "Recover failed deliveries since …": each failed delivery of the subscription '
        "created at or after `since` goes back to pending and is sent at once (attempts recorded as manual). "
        "A disabled subscription answers 409 `subscription_disabled`.",
        request=RecoverInSerializer,
        responses={202: RecoveredSerializer},
    )
    def post(self, request, subscription_id: int):
        subscription = self.subscription(subscription_id)
        since = _valid(RecoverInSerializer, request.data)["since"]
        count = services.deliveries_recover_failed_since(subscription=subscription, since=since)
        audit_record(api_key=request.auth, action="subscription.recover_failed", obj=subscription,
                     changes={"since": since, "recovered": count})  # fmt: skip
        body = {"subscription_id": subscription.id, "since": since, "recovered": count}
        return Response(RecoveredSerializer(body).data, status=status.HTTP_202_ACCEPTED)


# --- deliveries ------------------------------------------------------------------------------------


class DeliveriesApi(ApiView):
    required_scope = SCOPE
    pagination_class = CursorOrPagePagination

    @extend_schema(
        operation_id="listWebhookDeliveries",
        summary="List webhook deliveries with their attempts",
        parameters=[DeliveryFilterSerializer],
        responses={200: DeliverySerializer(many=True)},
    )
    def get(self, request):
        filters = _valid(DeliveryFilterSerializer, request.query_params)
        deliveries = selectors.deliveries_of(self.owner)
        if "subscription" in filters:
            deliveries = deliveries.filter(subscription_id=filters["subscription"])
        if "status" in filters:
            deliveries = deliveries.filter(status=filters["status"])
        if "event_type" in filters:
            deliveries = deliveries.filter(event__type=filters["event_type"])
        page = self.paginate_queryset(_deliveries(deliveries).order_by("-id"))
        return self.get_paginated_response(DeliverySerializer(page, many=True).data)


class AttemptsApi(ApiView):
    required_scope = SCOPE
    pagination_class = IdCursorPagination

    @extend_schema(
        operation_id="listWebhookAttempts",
        summary="List webhook attempts, newest first",
        description="Every HTTP try of the key's deliveries, paged by `cursor`: follow `next`.",
        parameters=[AttemptFilterSerializer],
        responses={200: AttemptListedSerializer(many=True)},
    )
    def get(self, request):
        filters = _valid(AttemptFilterSerializer, request.query_params)
        attempts = selectors.attempts_of(self.owner).select_related("delivery")
        if "subscription" in filters:
            attempts = attempts.filter(delivery__subscription_id=filters["subscription"])
        if "delivery" in filters:
            attempts = attempts.filter(delivery_id=filters["delivery"])
        page = self.paginate_queryset(attempts)
        return self.get_paginated_response(AttemptListedSerializer(page, many=True).data)


class DeliveryApi(ApiView):
    required_scope = SCOPE

    @extend_schema(
        operation_id="getWebhookDelivery",
        summary="Get a webhook delivery with its attempts",
        responses={200: DeliverySerializer},
    )
    def get(self, request, delivery_id: int):
        return _delivery_answer(selectors.delivery_get(owner=self.owner, delivery_id=delivery_id))


class DeliveryRetryApi(ApiView):
    required_scope = SCOPE

    @extend_schema(
        operation_id="retryWebhookDelivery",
        summary="Send a delivery again now",
        description="A pending or failed delivery is sent at once by the cluster; the attempt is recorded as manual.",
        request=None,
        responses={202: DeliverySerializer},
    )
    def post(self, request, delivery_id: int):
        delivery = selectors.delivery_get(owner=self.owner, delivery_id=delivery_id)
        delivery = services.delivery_retry_now(delivery=delivery)
        audit_record(api_key=request.auth, action="delivery.retry", obj=delivery)
        return _delivery_answer(delivery, status.HTTP_202_ACCEPTED)


class DeliveryReplayApi(ApiView):
    required_scope = SCOPE

    @extend_schema(
        operation_id="replayWebhookDelivery",
        summary="Replay a delivery",
        description='As the admin\'s "Replay": the same message is sent again to the same subscription as a new '
        "delivery (answered here), with the same `webhook-id`, whatever the first delivery's status. A disabled "
        "subscription answers 409 `subscription_disabled`.",
        request=None,
        responses={202: DeliverySerializer},
    )
    def post(self, request, delivery_id: int):
        delivery = selectors.delivery_get(owner=self.owner, delivery_id=delivery_id)
        replay = services.delivery_replay(delivery=delivery)
        audit_record(
            api_key=request.auth, action="delivery.replay", obj=delivery, changes={"replay_id": replay.id}
        )
        return _delivery_answer(replay, status.HTTP_202_ACCEPTED)
