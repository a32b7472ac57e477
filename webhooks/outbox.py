"""Transactional outbox: services record events and their deliveries inside their own transaction."""

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webhooks.models import Delivery, Event, Subscription


def subscriptions_matching(*, event_type: str, offer) -> list[Subscription]:
    """Active subscriptions that want this event of this offer and whose format renders it."""
    from webhooks.formats import FORMATS

    owner = Q(merchant__isnull=True, distributor__isnull=True)
    if offer is not None:
        owner |= Q(merchant_id=offer.merchant_id) | Q(distributor__offers=offer)
    candidates = (
        Subscription.objects.filter(owner, active=True)
        .filter(Q(site__isnull=True) | Q(site_id=getattr(offer, "site_id", None)))
        .prefetch_related("offers")
        .distinct()
    )
    matching = []
    for subscription in candidates:
        format_class = FORMATS.get(subscription.format)
        if (
            format_class is None
            or event_type not in format_class.events
            or event_type not in subscription.events
        ):
            continue
        offer_ids = {o.id for o in subscription.offers.all()}
        if offer_ids and (offer is None or offer.id not in offer_ids):
            continue
        matching.append(subscription)
    return matching


def event_record(*, event_type: str, offer, data: dict) -> Event:
    """Write the event and one pending delivery per matching subscription, then ring the doorbell on commit."""
    now = timezone.now()
    event = Event.objects.create(type=event_type, offer=offer, data=data, created_at=now)
    subscriptions = subscriptions_matching(event_type=event_type, offer=offer)
    if subscriptions:
        Delivery.objects.bulk_create(
            [
                Delivery(event=event, subscription=s, message_id=f"msg_{event.uuid.hex}", next_attempt_at=now)
                for s in subscriptions
            ]
        )
        transaction.on_commit(_kick_sender)
    return event


def _kick_sender() -> None:
    from webhooks.tasks import deliveries_kick

    deliveries_kick()
