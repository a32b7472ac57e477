"""Business actions on webhook subscriptions and deliveries; the admin, the API and the tasks call these."""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from coupons import events as coupon_events
from coupons.errors import ApplicationError
from coupons.models import Coupon, Distributor, Member, MemberProfile, Merchant, Offer, Site
from coupons.selectors import Owner, offers_visible_to
from webhooks import doorbell, retries
from webhooks.formats import EVENT_TYPES, FORMATS
from webhooks.models import Delivery, Event, Subscription, new_signing_secret
from webhooks.outbox import deliveries_add
from webhooks.redaction import headers_unredacted, url_unredacted
from webhooks.validation import subscription_errors

SUBSCRIPTION_FIELDS = {
    "name",
    "url",
    "format",
    "events",
    "http_method",
    "params",
    "headers",
    "active",
    "site",
    "offers",
    "merchant",
    "distributor",
}
ROTATION_GRACE = timedelta(hours=24)
PURGE_BATCH = 1000


# --- subscriptions -------------------------------------------------------------------------------


def subscription_create(
    *, merchant: Merchant | None = None, distributor: Distributor | None = None, **fields
) -> Subscription:
    """A new subscription with a fresh signing secret (read it from the result: it is shown only now).

    Without a merchant or distributor it receives the events of every offer (staff only).
    """
    subscription = Subscription(merchant=merchant, distributor=distributor)
    return _subscription_save(subscription, fields)


def subscription_update(*, subscription: Subscription, **fields) -> Subscription:
    """Change a subscription; turning it back on clears why it was disabled.

    A URL or header value sent back as shown (masked) keeps what is stored rather than the mask.
    """
    subscription.refresh_from_db()
    if isinstance(fields.get("url"), str):
        fields["url"] = url_unredacted(fields["url"], subscription.url)
    if isinstance(fields.get("headers"), dict):
        fields["headers"] = headers_unredacted(fields["headers"], subscription.headers)
    changed = {name for name in fields if name != "offers"} | {"updated_at"}
    if fields.get("active") and not subscription.active:
        subscription.disabled_reason, subscription.disabled_at, subscription.failing_since = "", None, None
        subscription.consecutive_failures, subscription.circuit_failed_probes = 0, 0
        subscription.circuit_opened_at, subscription.circuit_probe_at = None, None
        changed |= {"disabled_reason", "disabled_at", "failing_since", "consecutive_failures",
                    "circuit_failed_probes", "circuit_opened_at", "circuit_probe_at"}  # fmt: skip
    # Only the fields changed are written, so a secret rotated meanwhile is not put back.
    return _subscription_save(subscription, fields, update_fields=changed)


def _subscription_save(subscription: Subscription, fields: dict, *, update_fields=None) -> Subscription:
    """Check (outside any transaction: the URL check resolves DNS), then write the row and its offers."""
    unknown = set(fields) - SUBSCRIPTION_FIELDS
    if unknown:
        raise ApplicationError(
            "invalid_request",
            "Unknown subscription fields.",
            fields={name: ["unknown"] for name in sorted(unknown)},
        )
    offers = _offer_ids(fields.pop("offers", None))
    if isinstance(fields.get("events"), list):
        fields["events"] = list(dict.fromkeys(fields["events"]))  # each event once, in the order given
    for name, value in fields.items():
        setattr(subscription, name, value)
    if isinstance(subscription.http_method, str):
        subscription.http_method = subscription.http_method.upper()
    _subscription_check(subscription, offers)
    with transaction.atomic():
        subscription.save(update_fields=update_fields)
        if offers is not None:
            subscription.offers.set(offers)
    return subscription


def _offer_ids(offers) -> list[int] | None:
    """Offers as given by the admin (objects) or the API (ids)."""
    if offers is None:
        return None
    return sorted({offer.pk if isinstance(offer, Offer) else offer for offer in offers})


def _subscription_check(subscription: Subscription, offers) -> None:
    errors = subscription_errors(subscription) | subscription_scope_errors(subscription, offers)
    if errors:
        first = next(iter(errors.values()))[0]
        raise ApplicationError("invalid_request", first, fields=errors)


def subscription_scope_errors(subscription: Subscription, offers) -> dict[str, list[str]]:
    """The site and offers (objects or ids) a subscription filters on must exist and be its owner's."""
    errors = {}
    site = subscription.site
    if site is not None and subscription.merchant_id and site.merchant_id != subscription.merchant_id:
        errors["site"] = ["The site belongs to another merchant."]
    if offers:
        owner = Owner(merchant_id=subscription.merchant_id, distributor_id=subscription.distributor_id)
        ids = set(_offer_ids(offers))
        foreign = ids - set(offers_visible_to(owner).filter(pk__in=ids).values_list("pk", flat=True))
        if foreign:
            errors["offer_ids"] = [f"Unknown offers: {', '.join(map(str, sorted(foreign)))}."]
    return errors


def subscription_delete(*, subscription: Subscription) -> None:
    """Remove a subscription with its delivery log."""
    subscription.delete()


def subscription_rotate_secret(*, subscription: Subscription, now: datetime | None = None) -> str:
    """A new signing secret; the old one keeps signing too for 24 hours so receivers can switch over."""
    now = now or timezone.now()
    secret = new_signing_secret()
    with transaction.atomic():
        locked = Subscription.objects.select_for_update().get(pk=subscription.pk)
        Subscription.objects.filter(pk=locked.pk).update(
            secret=secret,
            previous_secret=locked.secret,
            previous_secret_expires_at=now + ROTATION_GRACE,
            updated_at=now,
        )
    subscription.refresh_from_db()
    return secret


def subscription_send_test_event(*, subscription: Subscription, event_type: str | None = None) -> Delivery:
    """Send a sample of one event the subscription receives (sample data, marked "test": true)."""
    chosen = event_type or _first_event(subscription)
    if chosen not in set(subscription.events) & FORMATS[subscription.format].events:
        raise ApplicationError(
            "invalid_request",
            f"This subscription does not receive {chosen}.",
            fields={"event_type": ["invalid"]},
        )
    _require_active(subscription)
    now = timezone.now()
    with transaction.atomic():
        event = Event.objects.create(
            type=chosen, offer=None, data=sample_event_data(subscription, chosen, now), created_at=now
        )
        return deliveries_add(event, [subscription.id], now=now, manual=True)[0]


def _first_event(subscription: Subscription) -> str:
    wanted = set(subscription.events) & FORMATS[subscription.format].events
    return next((e for e in EVENT_TYPES if e in wanted), "")


def sample_event_data(subscription: Subscription, event_type: str, now: datetime) -> dict:
    """The snapshot a real event of this type carries, built from sample objects that are never saved."""
    site = subscription.site or Site(name="Sample site", timezone=settings.TIME_ZONE)
    offer = Offer(
        id=0, name="Sample offer", merchant_id=subscription.merchant_id or 0, site=site, coupon_type="percentage",
        discount_value=Decimal("10.00"), currency="AUD", start_date=now - timedelta(days=1),
        finish_date=now + timedelta(days=30), expiry_type="relative", expiry_value=30, expiry_unit="day",
    )  # fmt: skip
    member = Member(id=0)
    profile = MemberProfile(
        member=member, member_no="SAMPLE0000001", external_id="sample-customer", email="sample@example.com"
    )
    coupon = Coupon(
        id=0, code="SAMPLECODE", offer=offer, member=member, issued_at=now, updated_at=now,
        expires_at=now + timedelta(days=30), session_id="sample-session",
    )  # fmt: skip
    if event_type == "coupon.created":
        data = coupon_events.event_base(offer) | {"coupons": [coupon_events.coupon_snapshot(coupon, profile)]}
    else:
        redemption = coupon_events.redemption_snapshot(
            redemption_id=0, order_id="SAMPLE-ORDER", order_value=Decimal("100.00"), currency="AUD",
            discount_amount=Decimal("10.00"), redeemed_at=now, location=None, merchant_id=offer.merchant_id,
            distributor_id=subscription.distributor_id,
        )  # fmt: skip
        failed = event_type == "coupon.redemption_failed"
        data = coupon_events.coupon_event_data(
            coupon,
            profile=profile,
            redemption=redemption if event_type in ("coupon.redeemed", "coupon.redemption_failed") else None,
            error={"code": "already_redeemed", "message": "This code has already been redeemed."}
            if failed
            else None,
        )
    return data | {"test": True}


# --- deliveries ----------------------------------------------------------------------------------


def delivery_retry_now(*, delivery: Delivery, now: datetime | None = None) -> Delivery:
    """Send a pending or failed delivery again at once; its attempt is recorded as manual."""
    now = now or retries.clock()
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().select_related("subscription").get(pk=delivery.pk)
        _require_active(locked.subscription)
        if locked.status == Delivery.Status.SUCCEEDED:
            raise ApplicationError(
                "already_succeeded", "This delivery already succeeded; replay it to send the message again."
            )
        if locked.claimed_until and locked.claimed_until > now:
            raise ApplicationError("delivery_in_flight", "This delivery is being sent right now.")
        Delivery.objects.filter(pk=locked.pk).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            manual=True,
            claimed_until=None,
            claim_token=None,
        )
        _probe_now(locked.subscription_id, now)
        doorbell.ring()
    delivery.refresh_from_db()
    return delivery


def delivery_replay(*, delivery: Delivery, now: datetime | None = None) -> Delivery:
    """A new delivery of the same event to the same subscription, with the same webhook-id."""
    now = now or retries.clock()
    _require_active(delivery.subscription)
    with transaction.atomic():
        replay = Delivery.objects.create(
            event_id=delivery.event_id,
            subscription_id=delivery.subscription_id,
            message_id=delivery.message_id,
            next_attempt_at=now,
            created_at=now,
            manual=True,
        )
        _probe_now(delivery.subscription_id, now)
        doorbell.ring()
    return replay


def deliveries_recover_failed_since(
    *, subscription: Subscription, since: datetime, now: datetime | None = None
) -> int:
    """Send again every failed delivery of the subscription created since `since`; returns how many."""
    now = now or retries.clock()
    _require_active(subscription)
    with transaction.atomic():
        count = Delivery.objects.filter(
            subscription=subscription, status=Delivery.Status.FAILED, created_at__gte=since
        ).update(
            status=Delivery.Status.PENDING,
            next_attempt_at=now,
            manual=True,
            claimed_until=None,
            claim_token=None,
        )
        if count:
            _probe_now(subscription.pk, now)
            doorbell.ring()
    return count


def _probe_now(subscription_id: int, now: datetime) -> None:
    """A person asked for a send: a paused subscription probes at once instead of at its next probe time."""
    Subscription.objects.filter(pk=subscription_id, circuit_opened_at__isnull=False).update(
        circuit_probe_at=now
    )


def _require_active(subscription: Subscription) -> None:
    if not subscription.active:
        raise ApplicationError(
            "subscription_disabled",
            f"The subscription is disabled ({subscription.disabled_reason or 'turned off'}); turn it on first.",
        )


# --- housekeeping (scheduled) --------------------------------------------------------------------


def subscriptions_auto_disable(*, now: datetime | None = None) -> int:
    """Disable subscriptions whose deliveries have all failed for WEBHOOKS_AUTO_DISABLE_DAYS; returns how many."""
    now = now or retries.clock()
    days = settings.WEBHOOKS_AUTO_DISABLE_DAYS
    disabled = 0
    for subscription in Subscription.objects.filter(
        active=True, failing_since__lte=now - timedelta(days=days)
    ):
        since = timezone.localtime(subscription.failing_since).strftime("%Y-%m-%d %H:%M %Z")
        disabled += Subscription.objects.filter(pk=subscription.pk, active=True).update(
            active=False,
            disabled_at=now,
            disabled_reason=f"Disabled automatically: every delivery has failed since {since} ({days} days without a success).",
        )
    return disabled


def deliveries_purge(*, now: datetime | None = None) -> int:
    """Delete events older than WEBHOOKS_RETENTION_DAYS with their deliveries and attempts; returns events deleted.

    An event with a delivery still pending is kept whatever its age (a subscription turned back on, a
    paused receiver): its message has not been delivered or given up on yet.
    """
    cutoff = (now or retries.clock()) - timedelta(days=settings.WEBHOOKS_RETENTION_DAYS)
    pending = Delivery.objects.filter(event_id=OuterRef("pk"), status=Delivery.Status.PENDING)
    purged = 0
    while True:
        ids = list(
            Event.objects.filter(created_at__lt=cutoff)
            .exclude(Exists(pending))
            .order_by("id")
            .values_list("id", flat=True)[:PURGE_BATCH]
        )
        if not ids:
            return purged
        with transaction.atomic():
            # Checked again under the delete: a delivery replayed meanwhile keeps its event.
            Event.objects.filter(id__in=ids).exclude(Exists(pending)).delete()
        purged += len(ids)
