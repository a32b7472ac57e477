"""Webhook test fixtures: a redeemable world, subscriptions pointed at a local receiver, a fresh route cache."""

import pytest

from coupons import services as coupon_services
from tests import factories
from webhooks import retries
from webhooks.client import send
from webhooks.models import Delivery
from webhooks.recording import Sent
from webhooks.rendering import delivery_request
from webhooks.routing import route_cache

from .factories import SubscriptionFactory


@pytest.fixture(autouse=True)
def fresh_routes():
    # Subscriptions of earlier tests were rolled back; never route with their cached copies.
    route_cache.forget()
    yield
    route_cache.forget()


@pytest.fixture
def admin_user(django_user_model, settings):
    # A test password needs no key stretching: the default hasher costs a second per user.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return django_user_model.objects.create_superuser("admin", "admin@example.com", "password")


@pytest.fixture
def receiver(httpserver):
    """The local HTTP server webhooks are sent to (pytest-httpserver)."""
    return httpserver


@pytest.fixture
def subscription(receiver, merchant):
    return SubscriptionFactory(url=receiver.url_for("/hook"), merchant=merchant)


@pytest.fixture
def coupon(offer, member):
    return factories.CouponFactory(offer=offer, member=member, code="REDEEMME1")


def redeem(code: str, order_id: str = "ORDER-1", **kwargs):
    order = coupon_services.order_parse(order_value="100.00", currency="AUD")
    return coupon_services.coupon_redeem(code=code, order_id=order_id, order=order, **kwargs)


@pytest.fixture
def quick_timeouts(settings):
    settings.WEBHOOKS_CONNECT_TIMEOUT = 1.0
    settings.WEBHOOKS_TOTAL_TIMEOUT = 0.5
    return settings


def sent_now(delivery: Delivery) -> Sent:
    """A claimed delivery sent for real, as the dispatcher hands its result to the record."""
    request = delivery_request(delivery, sent_at=retries.clock())
    result = send(request, connect_timeout=2, total_timeout=5)
    return Sent(delivery, request, result, started_at=retries.clock(), finished_at=retries.clock())
