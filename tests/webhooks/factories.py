"""factory-boy builders for webhook subscriptions, events and deliveries."""

import factory
from django.utils import timezone

from webhooks.models import Delivery, Event, Subscription


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    url = "http://127.0.0.1:9/hook"
    format = "standard"
    events = factory.LazyFunction(lambda: ["coupon.issued", "coupon.viewed", "coupon.redeemed"])


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    type = "coupon.redeemed"
    data = factory.LazyFunction(lambda: {"sample": True})
    created_at = factory.LazyFunction(timezone.now)


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    event = factory.SubFactory(EventFactory)
    subscription = factory.SubFactory(SubscriptionFactory)
    message_id = factory.LazyAttribute(lambda d: f"msg_{d.event.uuid.hex}")
