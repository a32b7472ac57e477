"""Subscriptions, events (what happened, once), deliveries (event x subscription) and attempts."""

import base64
import secrets
import uuid

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from config.request_id import current_request_id
from webhooks.redaction import url_redacted


def new_signing_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def format_choices() -> list[tuple[str, str]]:
    from webhooks.formats import FORMAT_CHOICES

    return FORMAT_CHOICES


class OrderedMappingField(models.JSONField):
    """A JSON object that keeps its keys in the order given: PostgreSQL's jsonb sorts them, so it is stored
    as a list of [key, value] pairs and read back as a dict (in Python, a dict keeps its order)."""

    def get_prep_value(self, value):
        if isinstance(value, dict):
            value = [[key, item] for key, item in value.items()]
        return super().get_prep_value(value)

    def from_db_value(self, value, expression, connection):
        value = super().from_db_value(value, expression, connection)
        if isinstance(value, list) and all(isinstance(pair, list) and len(pair) == 2 for pair in value):
            return {key: item for key, item in value}
        return value


class Subscription(models.Model):
    """A URL that receives chosen coupon events in one vendor's format."""

    class HttpMethod(models.TextChoices):
        POST = "POST", "POST"
        GET = "GET", "GET"

    id = models.AutoField(primary_key=True)
    name = models.CharField(max_length=200, blank=True, default="")
    # Checked by webhooks.urls_guard (scheme, host, resolved addresses) rather than Django's URL syntax
    # rules, which refuse hosts receivers really use (single-label container names, underscores).
    url = models.CharField(max_length=2000, help_text="http:// or https:// URL that receives the webhooks.")
    format = models.CharField(max_length=30, choices=format_choices, default="standard")
    events = models.JSONField(default=list)
    http_method = models.CharField(max_length=4, choices=HttpMethod.choices, default=HttpMethod.POST)
    # The callback's parameters leave in this order, the one the account manager configured.
    params = OrderedMappingField(
        default=dict, blank=True, help_text='Uniqodo callback: {"parameter name": "data item"}'
    )
    headers = models.JSONField(default=dict, blank=True, help_text="Extra request headers.")
    merchant = models.ForeignKey(
        "coupons.Merchant", on_delete=models.CASCADE, null=True, blank=True, related_name="subscriptions"
    )
    distributor = models.ForeignKey(
        "coupons.Distributor", on_delete=models.CASCADE, null=True, blank=True, related_name="subscriptions"
    )
    offers = models.ManyToManyField("coupons.Offer", blank=True, related_name="subscriptions")
    site = models.ForeignKey(
        "coupons.Site", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    secret = models.CharField(max_length=100, default=new_signing_secret, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, default="", editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    active = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=500, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    # Circuit breaker: after WEBHOOKS_CIRCUIT_FAILURES failed attempts in a row the subscription is paused
    # (its deliveries wait, none is dropped) and one probe goes out at circuit_probe_at; a success closes it.
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    circuit_opened_at = models.DateTimeField(null=True, blank=True, editable=False)
    circuit_probe_at = models.DateTimeField(null=True, blank=True, editable=False)
    circuit_failed_probes = models.PositiveSmallIntegerField(default=0, editable=False)
    # The one dispatcher sending this subscription's deliveries, so its in-flight cap holds across clusters.
    dispatch_token = models.UUIDField(null=True, blank=True, editable=False)
    dispatch_until = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.name or f"{self.format} → {url_redacted(self.url)}"

    def clean(self) -> None:
        from webhooks.validation import subscription_errors

        errors = subscription_errors(self)
        if errors:
            raise ValidationError(errors)

    @property
    def circuit_open(self) -> bool:
        return self.circuit_opened_at is not None

    def circuit_summary(self) -> str:
        """The circuit breaker in words, as the admin shows it."""
        if self.circuit_opened_at is None:
            return "sending"
        since = timezone.localtime(self.circuit_opened_at).strftime("%Y-%m-%d %H:%M:%S %Z")
        probe = (
            timezone.localtime(self.circuit_probe_at).strftime("%Y-%m-%d %H:%M:%S %Z")
            if self.circuit_probe_at
            else "soon"
        )
        return (
            f"paused since {since} after {self.consecutive_failures} failures in a row, next probe at {probe}"
        )

    def signing_secrets(self, now=None) -> list[str]:
        """The current secret, plus the previous one while a rotation's grace period lasts."""
        now = now or timezone.now()
        keys = [self.secret]
        if self.previous_secret and self.previous_secret_expires_at and self.previous_secret_expires_at > now:
            keys.append(self.previous_secret)
        return keys


class Event(models.Model):
    """Something that happened to coupons, with the data snapshot every format renders."""

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=40, db_index=True)
    offer = models.ForeignKey(
        "coupons.Offer", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    data = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The request (or the task it enqueued) that caused the event: its deliveries' attempts answer to it.
    request_id = models.CharField(
        max_length=128, null=True, blank=True, editable=False, default=current_request_id
    )

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.uuid}"


class Delivery(models.Model):
    """One event to one subscription; retries are scheduled here, never in the broker."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.BigAutoField(primary_key=True)
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="deliveries")
    message_id = models.CharField(
        max_length=64, help_text="webhook-id: stable across retries of one message."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, default=timezone.now)
    claimed_until = models.DateTimeField(null=True, blank=True)
    # Who holds the claim: a sender records its outcome only while the claim is still its own.
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    manual = models.BooleanField(
        default=False, help_text="The next attempt was asked for by a person (retry now, replay, recover)."
    )
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due_idx"),
            # A subscription's due deliveries in order: the dispatcher's claim and look for work.
            models.Index(fields=["subscription", "status", "next_attempt_at"], name="delivery_sub_due_idx"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.id} ({self.status})"


class Attempt(models.Model):
    """One HTTP try of a delivery, kept for the log and replay."""

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Scheduled"
        MANUAL = "manual", "Manual"

    id = models.BigAutoField(primary_key=True)
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    # Denormalised from the delivery so a subscription's health is one indexed aggregate.
    subscription = models.ForeignKey(
        Subscription, on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    started_at = models.DateTimeField(default=timezone.now)
    # When the attempt was due (the delivery's next_attempt_at when it was claimed): started_at minus
    # this is how late the dispatcher sent it.
    due_at = models.DateTimeField(null=True, blank=True)
    trigger = models.CharField(max_length=10, choices=Trigger.choices, default=Trigger.SCHEDULED)
    request_method = models.CharField(max_length=4, default="POST")
    request_url = models.TextField(default="")
    request_body = models.TextField(blank=True, default="")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["subscription", "started_at"], name="attempt_sub_started_idx")]

    def __str__(self) -> str:
        return f"Attempt {self.id} ({self.status_code or self.error[:30]})"

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class Dispatcher(models.Model):
    """A dispatcher's lease: at most WEBHOOKS_DISPATCHERS run at once, across every cluster."""

    slot = models.PositiveSmallIntegerField(primary_key=True)
    token = models.UUIDField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slot"]

    def __str__(self) -> str:
        return f"Dispatcher slot {self.slot}"
