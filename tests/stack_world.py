"""Data for a stack's processes, built through the services: run inside a Django process (Stack.django)."""

from __future__ import annotations

import time
from decimal import Decimal

from django.db import transaction

from coupons import services
from coupons.models import Merchant, Offer, Site
from webhooks.models import Subscription


def world_create(*, codes: int, receiver_urls: list[str], events: list[str], max_per_code: int = 1) -> dict:
    """A merchant with one offer of `codes` issued codes, a redeem-scoped API key and a subscription per URL."""
    merchant = Merchant.objects.create(name="Stack merchant")
    site = Site.objects.create(name="Stack site", merchant=merchant, timezone="Australia/Sydney")
    offer = services.offer_create(
        merchant=merchant, site=site, name="Stack offer", coupon_type="fixedAmount",
        discount_value=Decimal("5.00"), currency="AUD", usage_limit_type="once" if max_per_code == 1 else "multiple",
        max_redemptions_per_code=None if max_per_code == 1 else max_per_code,
    )  # fmt: skip
    offer = Offer.objects.get(pk=offer.pk)
    made: list[str] = []
    # coupons_create draws and stores at most this many a call (one transaction each).
    while len(made) < codes:
        batch = services.coupons_create(offer=offer, count=min(50_000, codes - len(made)))
        made += [coupon.code for coupon in batch]
    _, token = services.api_key_create(scopes=["redeem", "read", "validate"], merchant=merchant, name="stack")
    subscription_ids = [
        Subscription.objects.create(url=url, format="standard", events=events, merchant=merchant).id
        for url in receiver_urls
    ]
    return {"offer_id": offer.id, "codes": made, "api_key": token, "subscription_ids": subscription_ids}


def redemptions_run(*, codes: list[str], rate: float | None = None) -> dict:
    """Redeem each code once through the service, one transaction each as the API would, at `rate` a second."""
    order = services.order_parse(order_value="50.00", currency="AUD")
    started, created = time.monotonic(), 0
    for index, code in enumerate(codes):
        if rate:
            time.sleep(max(started + index / rate - time.monotonic(), 0))
        _, fresh = services.coupon_redeem(code=code, order_id=f"order-{index}", order=order)
        created += fresh
    return {"created": created, "seconds": time.monotonic() - started}


def event_times() -> dict[str, float]:
    """Each delivery's webhook-id and when its event was recorded (epoch seconds)."""
    from webhooks.models import Delivery

    rows = Delivery.objects.values_list("message_id", "event__created_at")
    return {message_id: created_at.timestamp() for message_id, created_at in rows}


def events_record(*, offer_id: int, count: int, batch: int = 500) -> dict:
    """`count` coupon.redeemed events of the offer through the outbox, committed `batch` at a time."""
    from webhooks.outbox import event_record

    offer = Offer.objects.select_related("site").get(pk=offer_id)
    recorded = 0
    while recorded < count:
        with transaction.atomic():
            for _ in range(min(batch, count - recorded)):
                event_record(event_type="coupon.redeemed", offer=offer, data={"n": recorded})
                recorded += 1
    return {"recorded": recorded}


def tick() -> None:
    """A probe schedule's task: one row per run, so a test can count how often a schedule fired."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO schedule_ticks DEFAULT VALUES")
