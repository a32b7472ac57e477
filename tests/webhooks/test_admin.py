"""The webhook admin through the Django test client: secret shown once, health, and every action."""

import re
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from tests import factories
from webhooks import retries
from webhooks.models import Attempt, Delivery, Subscription

from .factories import DeliveryFactory, EventFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = reverse("admin:webhooks_subscription_changelist")
DELIVERIES = reverse("admin:webhooks_delivery_changelist")


def add_form(**changes) -> dict:
    return {
        "name": "Redcat",
        "url": "http://127.0.0.1:9/hook",
        "format": "redcat",
        "events": ["coupon.created", "coupon.redeemed"],
        "http_method": "POST",
        "params": "{}",
        "headers": '{"X-Api-Key": "abc"}',
        "active": "on",
    } | changes


def act(client, url: str, action: str, objects, **extra):
    return client.post(
        url, {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}, follow=True
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def test_adding_a_subscription_shows_its_secret_once_and_never_again(admin_client, merchant):
    response = admin_client.post(reverse("admin:webhooks_subscription_add"), add_form(merchant=merchant.pk))

    assert response.status_code == 200
    subscription = Subscription.objects.get()
    assert subscription.secret in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert (subscription.merchant, subscription.headers) == (merchant, {"X-Api-Key": "abc"})
    change_page = admin_client.get(reverse("admin:webhooks_subscription_change", args=[subscription.pk]))
    listing = admin_client.get(SUBSCRIPTIONS)
    for page in (change_page, listing):
        assert subscription.secret not in page.content.decode()
        assert subscription.secret[6:] not in page.content.decode()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "link-local"),
        ({"url": "ftp://example.com/"}, "Only http:// and https://"),
        ({"format": "growlytics", "events": ["coupon.redeemed"]}, "cannot send coupon.redeemed"),
        ({"headers": '{"webhook-id": "forged"}'}, "set by the platform"),
    ],
)
def test_an_invalid_subscription_is_refused_on_the_form_with_the_reason(admin_client, changes, message):
    response = admin_client.post(reverse("admin:webhooks_subscription_add"), add_form(**changes))

    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Subscription.objects.exists()


def test_offers_of_another_merchant_are_refused_on_the_form(admin_client, merchant):
    foreign = factories.OfferFactory()

    response = admin_client.post(
        reverse("admin:webhooks_subscription_add"), add_form(merchant=merchant.pk, offers=[foreign.pk])
    )

    assert f"Unknown offers: {foreign.id}." in response.content.decode()
    assert not Subscription.objects.exists()


def test_the_list_shows_each_subscriptions_health_over_recent_attempts(admin_client, subscription):
    delivery = DeliveryFactory(subscription=subscription)
    for status, duration, error in [
        (200, 40, ""),
        (200, 120, ""),
        (500, 900, "The receiver answered HTTP 500."),
    ]:
        Attempt.objects.create(
            delivery=delivery,
            subscription=subscription,
            status_code=status,
            duration_ms=duration,
            error=error,
        )
    Attempt.objects.create(  # too old to count
        delivery=delivery, subscription=subscription, status_code=500, duration_ms=5, error="ancient",
        started_at=retries.clock() - timedelta(days=2),
    )  # fmt: skip

    page = admin_client.get(SUBSCRIPTIONS).content.decode()

    assert "66.7% of 3" in page
    assert "120 ms" in page
    assert "The receiver answered HTTP 500." in page and "ancient" not in page


def test_the_list_costs_the_same_queries_for_one_or_many_subscriptions(
    admin_client, django_assert_max_num_queries
):
    SubscriptionFactory()
    admin_client.get(SUBSCRIPTIONS)  # session and permissions warmed up
    with django_assert_max_num_queries(12) as one:
        admin_client.get(SUBSCRIPTIONS)
    for index in range(20):
        delivery = DeliveryFactory(subscription=SubscriptionFactory(name=f"Receiver {index}"))
        Attempt.objects.create(
            delivery=delivery, subscription=delivery.subscription, status_code=200, duration_ms=10
        )

    with django_assert_max_num_queries(len(one.captured_queries)):
        admin_client.get(SUBSCRIPTIONS)


def test_send_test_event_queues_a_manual_delivery(admin_client, subscription):
    response = act(admin_client, SUBSCRIPTIONS, "send_test_event", [subscription])

    delivery = Delivery.objects.get()
    assert (delivery.subscription, delivery.manual, delivery.event.data["test"]) == (subscription, True, True)
    assert messages_of(response) == ["Test event queued for 1 subscription(s); see Deliveries."]


def test_send_test_event_reports_a_disabled_subscription(admin_client, subscription):
    Subscription.objects.filter(pk=subscription.pk).update(active=False, disabled_reason="410 Gone")

    response = act(admin_client, SUBSCRIPTIONS, "send_test_event", [subscription])

    assert not Delivery.objects.exists()
    assert "The subscription is disabled (410 Gone); turn it on first." in messages_of(response)[0]


def test_rotate_secret_shows_the_new_secret_once_and_keeps_the_old_one_signing(admin_client, subscription):
    old = subscription.secret

    response = act(admin_client, SUBSCRIPTIONS, "rotate_secret", [subscription])

    subscription.refresh_from_db()
    page = response.content.decode()
    assert subscription.secret != old and subscription.secret in page
    assert old not in page
    assert subscription.previous_secret == old and "24 hours" in page


def test_recover_failed_since_asks_for_the_moment_then_sends_those_deliveries_again(
    admin_client, subscription
):
    now = retries.clock()
    recent = DeliveryFactory(subscription=subscription, status="failed", created_at=now - timedelta(hours=2))
    old = DeliveryFactory(subscription=subscription, status="failed", created_at=now - timedelta(days=3))

    asked = act(admin_client, SUBSCRIPTIONS, "recover_failed_since", [subscription])
    assert "Failed deliveries created since" in asked.content.decode()
    assert Delivery.objects.filter(status="pending").count() == 0

    since = (now - timedelta(days=1)).astimezone()
    done = act(
        admin_client, SUBSCRIPTIONS, "recover_failed_since", [subscription],
        apply="1", since_0=since.strftime("%Y-%m-%d"), since_1=since.strftime("%H:%M:%S"),
    )  # fmt: skip

    assert Delivery.objects.get(pk=recent.pk).status == "pending"
    assert Delivery.objects.get(pk=old.pk).status == "failed"
    assert re.match(
        r"1 failed deliveries since .* will be sent again \(1 subscription\(s\)\)\.", messages_of(done)[0]
    )


def test_recover_with_a_bad_date_asks_again(admin_client, subscription):
    response = act(
        admin_client,
        SUBSCRIPTIONS,
        "recover_failed_since",
        [subscription],
        apply="1",
        since_0="soon",
        since_1="10:00",
    )

    assert "Enter a valid date" in response.content.decode()


def test_retry_now_and_its_refusals(admin_client, subscription):
    failed = DeliveryFactory(subscription=subscription, status="failed", next_attempt_at=None)
    succeeded = DeliveryFactory(subscription=subscription, status="succeeded")

    response = act(admin_client, DELIVERIES, "retry_now", [failed, succeeded])

    failed.refresh_from_db()
    assert (failed.status, failed.manual) == ("pending", True)
    assert Delivery.objects.get(pk=succeeded.pk).status == "succeeded"
    assert messages_of(response) == [
        f"{succeeded}: This delivery already succeeded; replay it to send the message again.",
        "1 deliveries will be sent again now.",
    ]


def test_replay_makes_a_new_delivery_of_the_same_message(admin_client, subscription):
    original = DeliveryFactory(subscription=subscription, status="succeeded")

    response = act(admin_client, DELIVERIES, "replay", [original], confirm="yes")

    replay = Delivery.objects.exclude(pk=original.pk).get()
    assert (replay.event_id, replay.message_id, replay.status, replay.manual) == (
        original.event_id, original.message_id, "pending", True,
    )  # fmt: skip
    assert messages_of(response) == ["1 deliveries replayed."]


def test_deliveries_filter_by_status_event_type_offer_subscription_and_search(
    admin_client, subscription, offer
):
    redeemed = DeliveryFactory(
        subscription=subscription, event=EventFactory(type="coupon.redeemed", offer=offer)
    )
    issued = DeliveryFactory(
        subscription=subscription, event=EventFactory(type="coupon.issued"), status="failed"
    )
    elsewhere = DeliveryFactory(event=EventFactory(type="coupon.viewed"))

    def listed(**query) -> set[int]:
        response = admin_client.get(DELIVERIES, query)
        assert response.status_code == 200
        return {d.pk for d in response.context["cl"].result_list}

    assert listed(status__exact="failed") == {issued.pk}
    assert listed(event_type="coupon.redeemed") == {redeemed.pk}
    assert listed(event__offer__id__exact=offer.pk) == {redeemed.pk}
    assert listed(subscription__id__exact=subscription.pk) == {redeemed.pk, issued.pk}
    assert listed(q=elsewhere.message_id) == {elsewhere.pk}


def test_a_delivery_page_shows_its_attempts_and_payload_read_only(admin_client, subscription):
    delivery = DeliveryFactory(
        subscription=subscription, event=EventFactory(data={"coupon": {"code": "SHOWME"}})
    )
    Attempt.objects.create(
        delivery=delivery, subscription=subscription, status_code=503, error="The receiver answered HTTP 503."
    )

    page = admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk])).content.decode()

    assert "SHOWME" in page and "The receiver answered HTTP 503." in page
    assert 'name="_save"' not in page  # nothing to edit


def test_events_and_attempts_are_read_only(admin_client, subscription):
    delivery = DeliveryFactory(subscription=subscription)
    attempt = Attempt.objects.create(delivery=delivery, subscription=subscription, status_code=200)

    assert admin_client.get(reverse("admin:webhooks_event_add")).status_code == 403
    assert admin_client.get(reverse("admin:webhooks_attempt_add")).status_code == 403
    for url in (
        reverse("admin:webhooks_event_change", args=[delivery.event_id]),
        reverse("admin:webhooks_attempt_change", args=[attempt.pk]),
        reverse("admin:webhooks_event_changelist"),
        reverse("admin:webhooks_attempt_changelist"),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert 'name="_save"' not in response.content.decode()


def test_attempts_filter_by_outcome_event_type_and_offer(admin_client, subscription, offer):
    redeemed = DeliveryFactory(
        subscription=subscription, event=EventFactory(type="coupon.redeemed", offer=offer)
    )
    viewed = DeliveryFactory(subscription=subscription, event=EventFactory(type="coupon.viewed"))
    ok = Attempt.objects.create(delivery=redeemed, subscription=subscription, status_code=204)
    refused = Attempt.objects.create(delivery=viewed, subscription=subscription, status_code=302)
    timed_out = Attempt.objects.create(delivery=viewed, subscription=subscription, error="Timed out")

    def listed(**query) -> set[int]:
        response = admin_client.get(reverse("admin:webhooks_attempt_changelist"), query)
        return {a.pk for a in response.context["cl"].result_list}

    assert listed(outcome="succeeded") == {ok.pk}
    assert listed(outcome="failed") == {refused.pk, timed_out.pk}
    assert listed(event_type="coupon.viewed") == {refused.pk, timed_out.pk}
    assert listed(delivery__event__offer__id__exact=offer.pk) == {ok.pk}
