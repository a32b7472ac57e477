"""The doorbell: on PostgreSQL a committed delivery wakes the dispatcher; a rolled-back one never does."""

import threading
import time

import pytest
from django.db import connection, transaction

from tests import factories
from webhooks import doorbell
from webhooks.outbox import event_record

from .factories import SubscriptionFactory


@pytest.fixture
def listening():
    rang = threading.Event()
    listener = doorbell.Listener(rang.set).start()
    time.sleep(0.3)  # LISTEN issued
    yield rang
    listener.stop()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_committed_delivery_rings_the_dispatcher_at_once(listening, receiver):
    SubscriptionFactory(url=receiver.url_for("/hook"))
    offer = factories.OfferFactory()
    with transaction.atomic():
        event_record(event_type="coupon.redeemed", offer=offer, data={})
        assert not listening.wait(0.3)  # nothing before the commit
    assert listening.wait(2)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_delivery_never_rings(listening, receiver):
    SubscriptionFactory(url=receiver.url_for("/hook"))
    offer = factories.OfferFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        event_record(event_type="coupon.redeemed", offer=offer, data={})
        raise RuntimeError("the business change failed")
    assert not listening.wait(0.5)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_event_no_subscription_wants_rings_nothing(listening):
    with transaction.atomic():
        event_record(event_type="coupon.redeemed", offer=factories.OfferFactory(), data={})
    assert not listening.wait(0.5)


@pytest.mark.django_db
def test_only_postgresql_is_listened_to_sqlite_is_polled():
    listener = doorbell.Listener(lambda: None).start()
    try:
        assert doorbell.notifies() is listener.listening is (connection.vendor == "postgresql")
    finally:
        listener.stop()
