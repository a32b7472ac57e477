"""Deliveries sent to a real local HTTP server: outcomes, retries, signatures and what each attempt keeps."""

import json
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from standardwebhooks import Webhook
from werkzeug import Response

from coupons.models import Distributor
from coupons.selectors import Owner
from tests import factories
from webhooks import retries
from webhooks.models import Attempt, Delivery, Subscription
from webhooks.services import subscription_rotate_secret
from webhooks.transport import deliveries_send_due

from .conftest import redeem
from .factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def sent(receiver) -> list:
    return [request for request, _ in receiver.log]


def verify(subscription_secret: str, request, *, json_parse: bool = True):
    return Webhook(subscription_secret).verify(
        request.get_data(as_text=True), dict(request.headers), json_parse=json_parse
    )


def test_a_delivery_that_gets_a_2xx_succeeds_and_keeps_its_attempt(receiver, subscription, coupon):
    receiver.expect_request("/hook", method="POST").respond_with_data("thanks", status=202)
    redeem(coupon.code)

    assert deliveries_send_due() == 1

    (request,) = sent(receiver)
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 1, 202)
    assert delivery.delivered_at is not None and delivery.next_attempt_at is None
    assert delivery.claimed_until is None and delivery.claim_token is None
    body = verify(subscription.secret, request)
    assert (body["type"], body["data"]["coupon"]["code"]) == ("coupon.redeemed", coupon.code)
    attempt = Attempt.objects.get()
    assert (attempt.status_code, attempt.response_excerpt, attempt.error, attempt.trigger) == (
        202, "thanks", "", "scheduled",
    )  # fmt: skip
    assert (attempt.request_method, attempt.request_url) == ("POST", subscription.url)
    assert attempt.request_body == request.get_data(as_text=True)
    assert attempt.duration_ms is not None and attempt.subscription_id == subscription.id


def test_every_request_carries_the_standard_webhooks_headers_user_agent_and_content_type(
    receiver, subscription, coupon, settings
):
    receiver.expect_request("/hook").respond_with_data("ok")
    redeem(coupon.code)

    deliveries_send_due()

    (request,) = sent(receiver)
    delivery = Delivery.objects.get()
    assert request.headers["webhook-id"] == delivery.message_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.headers["User-Agent"] == settings.WEBHOOKS_USER_AGENT
    assert request.headers["Content-Type"] == "application/json"


def test_the_signature_is_exactly_the_one_the_standardwebhooks_library_computes(
    receiver, subscription, coupon
):
    receiver.expect_request("/hook").respond_with_data("ok")
    redeem(coupon.code)

    deliveries_send_due()

    (request,) = sent(receiver)
    timestamp = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=UTC)
    expected = Webhook(subscription.secret).sign(
        request.headers["webhook-id"], timestamp, request.get_data(as_text=True)
    )
    assert request.headers["webhook-signature"] == expected


def test_a_500_is_retried_at_once_with_the_same_webhook_id_then_after_about_five_seconds(
    receiver, subscription, coupon
):
    receiver.expect_request("/hook").respond_with_data("broken", status=500)
    redeem(coupon.code)
    now = retries.clock()

    assert deliveries_send_due(now=now) == 2  # the first attempt and the immediate retry

    first, second = sent(receiver)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == Delivery.objects.get().message_id
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 2, 500)
    assert delivery.last_error == "The receiver answered HTTP 500."
    wait = (delivery.next_attempt_at - now).total_seconds()
    assert 4.0 <= wait <= 6.5
    assert [a.response_excerpt for a in Attempt.objects.order_by("id")] == ["broken", "broken"]


def test_a_retry_that_succeeds_ends_the_delivery_and_the_subscriptions_failing_streak(
    receiver, subscription, coupon
):
    receiver.expect_ordered_request("/hook").respond_with_data("down", status=503)
    receiver.expect_ordered_request("/hook").respond_with_data("down", status=503)
    receiver.expect_ordered_request("/hook").respond_with_data("ok", status=200)
    redeem(coupon.code)
    now = retries.clock()
    deliveries_send_due(now=now)
    subscription.refresh_from_db()
    assert subscription.failing_since == now

    deliveries_send_due(now=Delivery.objects.get().next_attempt_at)

    delivery = Delivery.objects.get()
    subscription.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert subscription.failing_since is None
    assert len({r.headers["webhook-id"] for r in sent(receiver)}) == 1


def test_410_gone_fails_the_delivery_and_disables_the_subscription_with_a_reason(
    receiver, subscription, coupon
):
    receiver.expect_request("/hook").respond_with_data("gone", status=410)
    redeem(coupon.code)

    deliveries_send_due()

    delivery = Delivery.objects.get()
    subscription.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", 1, None)
    assert subscription.active is False
    assert "410 Gone" in subscription.disabled_reason
    assert subscription.disabled_at is not None
    assert len(sent(receiver)) == 1


def test_a_redirect_is_not_followed_and_counts_as_a_failure(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_response(
        Response("moved", status=302, headers={"Location": receiver.url_for("/elsewhere")})
    )
    receiver.expect_request("/elsewhere").respond_with_data("should never be reached")
    redeem(coupon.code)

    deliveries_send_due(now=retries.clock())

    assert {r.path for r in sent(receiver)} == {"/hook"}
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.last_status_code) == ("pending", 302)
    assert "not followed" in delivery.last_error and "/elsewhere" in delivery.last_error


def test_a_receiver_slower_than_the_whole_request_timeout_is_a_timeout_and_is_retried(
    receiver, subscription, coupon, quick_timeouts
):
    def slow(request):
        time.sleep(0.8)
        return Response("late")

    receiver.expect_request("/hook").respond_with_handler(slow)
    redeem(coupon.code)
    started = time.monotonic()

    deliveries_send_due(now=retries.clock())

    assert time.monotonic() - started < 3.0
    attempts = list(Attempt.objects.order_by("id"))
    assert len(attempts) == 2
    assert [a.error for a in attempts] == ["Timed out: no complete answer within 0.5 s."] * 2
    assert all(a.duration_ms < 800 for a in attempts)
    assert Delivery.objects.get().status == "pending"


def test_a_connection_error_is_recorded_and_retried(subscription, coupon):
    Subscription.objects.filter(pk=subscription.pk).update(url="http://127.0.0.1:9/closed")
    redeem(coupon.code)

    deliveries_send_due(now=retries.clock())

    delivery = Delivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 2
    assert delivery.last_status_code is None
    assert delivery.last_error.startswith("Connection failed:")


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured_on_429_and_503(receiver, subscription, coupon, status):
    receiver.expect_request("/hook").respond_with_data(
        "slow down", status=status, headers={"Retry-After": "120"}
    )
    redeem(coupon.code)
    now = retries.clock()

    deliveries_send_due(now=now)

    # Retry-After is a floor even for the immediate retry, so one attempt only.
    delivery = Delivery.objects.get()
    assert delivery.attempts == 1
    assert 120 <= (delivery.next_attempt_at - now).total_seconds() < 125


def test_retry_after_as_an_http_date_is_honoured(receiver, subscription, coupon):
    redeem(coupon.code)
    now = retries.clock()
    later = format_datetime(now + timedelta(minutes=10), usegmt=True)
    receiver.expect_request("/hook").respond_with_data("busy", status=503, headers={"Retry-After": later})

    deliveries_send_due(now=now)

    wait = (Delivery.objects.get().next_attempt_at - now).total_seconds()
    assert 595 <= wait <= 605


def test_retry_after_on_a_500_is_ignored(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("oops", status=500, headers={"Retry-After": "3600"})
    redeem(coupon.code)
    now = retries.clock()

    deliveries_send_due(now=now)

    assert (Delivery.objects.get().next_attempt_at - now).total_seconds() < 10


def test_the_retry_schedule_runs_its_course_and_then_fails_the_delivery(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("down", status=500)
    redeem(coupon.code)
    now = retries.clock()
    waits = []
    for _ in range(20):  # bounded: the schedule has nine attempts
        deliveries_send_due(now=now)
        delivery = Delivery.objects.get()
        if delivery.status != "pending":
            break
        waits.append(delivery.next_attempt_at - now)
        now = delivery.next_attempt_at

    assert (delivery.status, delivery.attempts) == ("failed", retries.MAX_ATTEMPTS)
    # The immediate retry happens inside the first run, so seven waits remain, each within ±20 %.
    assert len(waits) == len(retries.RETRY_DELAYS) - 1
    for wait, planned in zip(waits, retries.RETRY_DELAYS[1:], strict=True):
        assert planned * 0.8 <= wait <= planned * 1.2
    assert len(sent(receiver)) == retries.MAX_ATTEMPTS


def test_nothing_is_sent_before_its_time(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("down", status=500)
    redeem(coupon.code)
    now = retries.clock()
    deliveries_send_due(now=now)
    due = Delivery.objects.get().next_attempt_at

    assert deliveries_send_due(now=due - timedelta(milliseconds=1)) == 0
    assert deliveries_send_due(now=due) == 1


def test_during_a_rotation_both_the_new_and_the_previous_secret_sign(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("ok")
    old_secret = subscription.secret
    new_secret = subscription_rotate_secret(subscription=subscription)
    redeem(coupon.code)

    deliveries_send_due()

    (request,) = sent(receiver)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert verify(new_secret, request)["type"] == "coupon.redeemed"
    assert verify(old_secret, request)["type"] == "coupon.redeemed"


def test_after_the_rotation_grace_period_only_the_new_secret_signs(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("ok")
    old_secret = subscription.secret
    subscription_rotate_secret(subscription=subscription, now=retries.clock() - timedelta(hours=25))
    subscription.refresh_from_db()
    redeem(coupon.code)

    deliveries_send_due()

    (request,) = sent(receiver)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    verify(subscription.secret, request)
    with pytest.raises(Exception, match="No matching signature"):
        verify(old_secret, request)


def test_a_uniqodo_get_callback_signs_the_empty_body_and_sends_the_chosen_items_in_the_query(
    receiver, offer, member
):
    distributor = Distributor.objects.create(name="Publisher")
    offer.distributors.add(distributor)
    subscription = SubscriptionFactory(
        url=receiver.url_for("/callback"), distributor=distributor, format="uniqodo_callback",
        events=["coupon.redeemed"], http_method="GET", params={"code": "code", "orderId": "orderId"},
    )  # fmt: skip
    receiver.expect_request("/callback", method="GET").respond_with_data("ok")
    coupon = factories.CouponFactory(offer=offer, member=member, code="45THD2L34K")
    redeem(coupon.code, order_id="447518457", owner=Owner(distributor_id=distributor.id))

    deliveries_send_due()

    (request,) = sent(receiver)
    assert request.query_string.decode() == "code=45THD2L34K&orderId=447518457"
    assert request.get_data() == b""
    verify(subscription.secret, request, json_parse=False)


def test_extra_headers_are_sent_but_never_replace_the_platforms_own(receiver, subscription, coupon, settings):
    # Saved around the validation, as older data might be.
    Subscription.objects.filter(pk=subscription.pk).update(
        headers={"X-Api-Key": "abc", "webhook-id": "forged", "User-Agent": "forged"}
    )
    receiver.expect_request("/hook").respond_with_data("ok")
    redeem(coupon.code)

    deliveries_send_due()

    (request,) = sent(receiver)
    assert request.headers["X-Api-Key"] == "abc"
    assert request.headers["webhook-id"] == Delivery.objects.get().message_id
    assert request.headers["User-Agent"] == settings.WEBHOOKS_USER_AGENT


def test_a_delivery_that_cannot_be_rendered_fails_without_a_request(receiver, subscription, coupon):
    redeem(coupon.code)
    # The subscription changed to a format that cannot render the event waiting for it.
    Subscription.objects.filter(pk=subscription.pk).update(format="growlytics")

    deliveries_send_due()

    delivery = Delivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.last_error.startswith("Could not build the request:")
    assert Attempt.objects.get().error == delivery.last_error
    assert sent(receiver) == []


def test_deliveries_of_a_disabled_subscription_wait_and_others_are_sent(receiver, subscription, coupon):
    receiver.expect_request("/hook").respond_with_data("ok")
    redeem(coupon.code)
    Subscription.objects.filter(pk=subscription.pk).update(active=False)

    assert deliveries_send_due() == 0
    assert Delivery.objects.get().status == "pending"


def test_one_run_drains_a_burst_larger_than_a_batch(receiver, subscription, offer, member, settings):
    settings.WEBHOOKS_SEND_CONCURRENCY = 2  # batches of four
    receiver.expect_request("/hook").respond_with_data("ok")
    for index in range(10):
        redeem(factories.CouponFactory(offer=offer, member=member).code, order_id=f"O-{index}")

    assert deliveries_send_due() == 10

    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    assert len({json.loads(r.get_data())["id"] for r in sent(receiver)}) == 10
