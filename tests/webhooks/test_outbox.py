"""The outbox writes each event and its deliveries in the business transaction, to the subscriptions that want it."""

import pytest
from django.db import transaction
from django_q.models import OrmQ

from coupons.models import Distributor
from coupons.selectors import Owner
from tests import factories
from webhooks import doorbell
from webhooks.models import Delivery, Event
from webhooks.outbox import event_record
from webhooks.routing import route_cache

from .conftest import redeem
from .factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def deliveries_of(event_type: str) -> list[Delivery]:
    return list(Delivery.objects.filter(event__type=event_type).order_by("subscription_id"))


def test_a_rolled_back_redemption_records_no_event_and_rings_no_bell(
    subscription, coupon, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(RuntimeError), transaction.atomic():
        redeem(coupon.code)
        assert Event.objects.filter(type="coupon.redeemed").count() == 1  # written inside, then undone
        raise RuntimeError("the order failed after the redemption")

    assert not Event.objects.exists()
    assert not Delivery.objects.exists()
    assert callbacks == []


def test_a_committed_redemption_records_one_event_and_one_delivery_per_matching_subscription(
    receiver, merchant, coupon, django_capture_on_commit_callbacks
):
    first = SubscriptionFactory(url=receiver.url_for("/a"), merchant=merchant)
    second = SubscriptionFactory(url=receiver.url_for("/b"), format="redcat", events=["coupon.redeemed"])
    SubscriptionFactory(url=receiver.url_for("/c"), events=["coupon.issued"])  # another event

    with django_capture_on_commit_callbacks() as callbacks:
        redeem(coupon.code)

    event = Event.objects.get()
    assert event.type == "coupon.redeemed"
    assert event.data["coupon"]["code"] == coupon.code
    deliveries = deliveries_of("coupon.redeemed")
    assert [d.subscription_id for d in deliveries] == [first.id, second.id]
    assert {d.message_id for d in deliveries} == {f"msg_{event.uuid.hex}"}
    assert {d.status for d in deliveries} == {Delivery.Status.PENDING}
    assert len(callbacks) == 1  # one doorbell for the transaction


def test_many_events_in_one_transaction_ask_for_one_dispatcher_at_most(
    subscription, offer, django_capture_on_commit_callbacks
):
    doorbell.watch_forget()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for _ in range(5):
            event_record(event_type="coupon.redeemed", offer=offer, data={})

    assert Delivery.objects.count() == 5
    assert [task.func() for task in OrmQ.objects.all()] == ["webhooks.tasks.deliveries_send_task"]


def test_an_offer_filter_limits_deliveries_to_its_offers(receiver, offer, coupon):
    other_offer = factories.OfferFactory(site=offer.site, merchant=offer.merchant)
    mine = SubscriptionFactory(url=receiver.url_for("/mine"))
    mine.offers.set([offer])
    SubscriptionFactory(url=receiver.url_for("/other")).offers.set([other_offer])

    redeem(coupon.code)

    assert [d.subscription_id for d in deliveries_of("coupon.redeemed")] == [mine.id]


def test_a_site_filter_limits_deliveries_to_its_site(receiver, offer, coupon):
    mine = SubscriptionFactory(url=receiver.url_for("/mine"), site=offer.site)
    SubscriptionFactory(url=receiver.url_for("/other"), site=factories.SiteFactory(merchant=offer.merchant))

    redeem(coupon.code)

    assert [d.subscription_id for d in deliveries_of("coupon.redeemed")] == [mine.id]


def test_a_merchant_subscription_only_receives_that_merchants_offers(receiver, merchant, coupon):
    mine = SubscriptionFactory(url=receiver.url_for("/mine"), merchant=merchant)
    SubscriptionFactory(url=receiver.url_for("/theirs"), merchant=factories.MerchantFactory())

    redeem(coupon.code)

    assert [d.subscription_id for d in deliveries_of("coupon.redeemed")] == [mine.id]


def test_inactive_subscriptions_and_formats_that_cannot_render_the_event_get_nothing(receiver, coupon):
    SubscriptionFactory(url=receiver.url_for("/off"), active=False)
    # Saved around the validation: growlytics renders only coupon.issued.
    SubscriptionFactory(url=receiver.url_for("/growlytics"), format="growlytics", events=["coupon.redeemed"])

    redeem(coupon.code)

    assert deliveries_of("coupon.redeemed") == []


def test_a_distributor_subscription_only_sees_offers_the_distributor_is_authorised_for(
    receiver, offer, member
):
    distributor = Distributor.objects.create(name="Publisher")
    offer.distributors.add(distributor)
    unauthorised = factories.OfferFactory(site=offer.site, merchant=offer.merchant)
    callback = SubscriptionFactory(
        url=receiver.url_for("/callback"),
        distributor=distributor,
        format="uniqodo_callback",
        events=["coupon.redeemed"],
        params={"code": "code", "orderId": "orderId"},
    )
    authorised_code = factories.CouponFactory(offer=offer, member=member).code
    other_code = factories.CouponFactory(offer=unauthorised, member=member).code

    redeem(authorised_code, owner=Owner(distributor_id=distributor.id))
    redeem(other_code)

    deliveries = deliveries_of("coupon.redeemed")
    assert [(d.subscription_id, d.event.offer_id) for d in deliveries] == [(callback.id, offer.id)]


def test_revoking_a_distributor_takes_effect_at_once_despite_the_route_cache(receiver, offer, member):
    distributor = Distributor.objects.create(name="Publisher")
    offer.distributors.add(distributor)
    SubscriptionFactory(url=receiver.url_for("/d"), distributor=distributor)
    redeem(factories.CouponFactory(offer=offer, member=member).code, order_id="A")
    assert Delivery.objects.count() == 1

    offer.distributors.remove(distributor)
    redeem(factories.CouponFactory(offer=offer, member=member).code, order_id="B")

    assert Delivery.objects.count() == 1


def test_a_subscription_turned_off_elsewhere_gets_nothing_even_while_cached(subscription, offer):
    route_cache.routes()  # warm
    # update() sends no signal: as if another process had turned it off.
    type(subscription).objects.filter(pk=subscription.pk).update(active=False)

    event_record(event_type="coupon.redeemed", offer=offer, data={})

    assert not Delivery.objects.exists()


def test_a_subscription_saved_in_this_process_is_routed_at_once(receiver, offer):
    route_cache.routes()  # warm, with no subscription
    created = SubscriptionFactory(url=receiver.url_for("/new"))

    event_record(event_type="coupon.redeemed", offer=offer, data={})

    assert [d.subscription_id for d in Delivery.objects.all()] == [created.id]


def test_recording_an_event_costs_two_queries_with_subscriptions_and_one_without(
    subscription, offer, django_assert_num_queries
):
    route_cache.routes()  # warm
    with django_assert_num_queries(2):  # the event, the deliveries of the still-active subscriptions
        event_record(event_type="coupon.redeemed", offer=offer, data={})
    with django_assert_num_queries(1):  # the event alone: nobody wants coupon.created
        event_record(event_type="coupon.created", offer=offer, data={})


def test_a_mystery_codes_snapshot_carries_the_drawn_coupon_type(subscription, offer, member):
    offer.coupon_type, offer.discount_value = "mystery", None
    offer.mystery_discounts = [{"coupon_type": "freeShipping", "weight": 1}]
    offer.save()
    coupon = factories.CouponFactory(offer=offer, member=member, discount_type="freeShipping")

    redeem(coupon.code)

    assert Event.objects.get().data["coupon"]["coupon_type"] == "freeShipping"
