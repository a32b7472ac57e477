"""Subscription health and owner scoping, read in aggregate queries."""

from datetime import timedelta

import pytest

from coupons.errors import ApplicationError
from coupons.selectors import STAFF, Owner
from tests import factories
from webhooks import retries
from webhooks.models import Attempt
from webhooks.selectors import delivery_get, subscription_get, subscriptions_health, subscriptions_of

from .factories import DeliveryFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db


def attempts(subscription, *outcomes, age=timedelta(0)):
    delivery = DeliveryFactory(subscription=subscription)
    for status, duration in outcomes:
        Attempt.objects.create(
            delivery=delivery, subscription=subscription, status_code=status, duration_ms=duration,
            error="" if status and status < 300 else f"HTTP {status}", started_at=retries.clock() - age,
        )  # fmt: skip


def test_health_is_the_success_rate_median_duration_and_last_error_of_each_subscription(
    django_assert_num_queries,
):
    even, odd, idle = SubscriptionFactory(), SubscriptionFactory(), SubscriptionFactory()
    attempts(even, (200, 10), (204, 40), (500, 30), (200, 20))
    attempts(odd, (200, 900), (410, 120), (200, 40))
    attempts(idle, (500, 1), age=timedelta(hours=25))  # outside the window

    with django_assert_num_queries(4):
        health = subscriptions_health([even.id, odd.id, idle.id])

    assert (health[even.id].attempts, health[even.id].success_rate, health[even.id].p50_ms) == (4, 0.75, 20)
    assert health[even.id].last_error == "HTTP 500"
    assert (health[odd.id].success_rate, health[odd.id].p50_ms, health[odd.id].last_error) == (
        2 / 3,
        120,
        "HTTP 410",
    )
    assert (health[idle.id].attempts, health[idle.id].success_rate, health[idle.id].p50_ms) == (0, None, None)
    assert health[idle.id].last_error == ""


def test_an_owner_sees_only_its_own_subscriptions_and_deliveries(merchant):
    distributor = factories.DistributorFactory()
    mine = SubscriptionFactory(merchant=merchant)
    theirs = SubscriptionFactory(merchant=factories.MerchantFactory())
    publishers = SubscriptionFactory(distributor=distributor)
    owner = Owner(merchant_id=merchant.id)

    assert list(subscriptions_of(owner)) == [mine]
    assert list(subscriptions_of(Owner(distributor_id=distributor.id))) == [publishers]
    assert set(subscriptions_of(STAFF)) == {mine, theirs, publishers}
    assert subscription_get(owner=owner, subscription_id=str(mine.id)) == mine
    for unknown in (theirs.id, "abc", None, 10**30):
        with pytest.raises(ApplicationError, match="Subscription not found"):
            subscription_get(owner=owner, subscription_id=unknown)
    with pytest.raises(ApplicationError, match="Delivery not found"):
        delivery_get(owner=owner, delivery_id=DeliveryFactory(subscription=theirs).id)
