"""Transactional outbox: services record events and their deliveries inside their own transaction."""

from django.db import connection
from django.utils import timezone

from coupons.prepared import PreparedInsert
from webhooks import doorbell
from webhooks.models import Delivery, Event, Subscription
from webhooks.routing import route_cache, subscription_ids_matching

_INSERT_EVENT = PreparedInsert(Event)  # every redemption records one


def event_record(*, event_type: str, offer, data: dict) -> Event:
    """Write the event and one pending delivery per matching subscription; the dispatcher wakes on commit."""
    now = timezone.now()
    event = _INSERT_EVENT.save(Event(type=event_type, offer=offer, data=data, created_at=now))
    candidates = [route for route in route_cache.routes() if route.wants(event_type, offer)]
    if not candidates:
        return event
    if any(route.distributor_id is not None for route in candidates):
        subscription_ids = subscription_ids_matching(event_type=event_type, offer=offer)
        if subscription_ids:
            deliveries_add(event, subscription_ids, now=now)
    elif _deliveries_insert_confirmed(event, [route.id for route in candidates], now):
        doorbell.dispatcher_ensure_on_commit()
    return event


def _deliveries_insert_confirmed(event: Event, subscription_ids: list[int], now) -> int:
    """deliveries_add for the subscriptions among these still there and active, in one INSERT ... SELECT.

    The same rows as subscription_ids_matching then deliveries_add (for subscriptions of no distributor),
    with one statement where those take three: this runs on every redemption. On PostgreSQL the same
    statement rings the doorbell (pg_notify, delivered only if the transaction commits).
    """
    quote = connection.ops.quote_name
    delivery, subscription = Delivery._meta, Subscription._meta
    columns = ("event_id", "subscription_id", "message_id", "status", "attempts", "next_attempt_at", "manual",
               "last_error", "created_at")  # fmt: skip
    when = connection.ops.adapt_datetimefield_value(now)
    insert = (
        f"INSERT INTO {quote(delivery.db_table)} ({', '.join(quote(c) for c in columns)})"
        f" SELECT %s, {quote('id')}, %s, %s, %s, %s, %s, %s, %s FROM {quote(subscription.db_table)}"
        f" WHERE {quote('active')} AND {quote('id')} IN ({', '.join(['%s'] * len(subscription_ids))})"
        f" ORDER BY {quote('id')}"
    )
    params = [event.pk, message_id_for(event), Delivery.Status.PENDING, 0, when, False, "", when]
    with connection.cursor() as cursor:
        if doorbell.notifies():
            cursor.execute(
                f"WITH written AS ({insert} RETURNING 1), counted AS (SELECT count(*) AS n FROM written)"
                f" SELECT n, CASE WHEN n > 0 THEN pg_notify('{doorbell.CHANNEL}', '')::text END FROM counted",
                [*params, *subscription_ids],
            )
            return cursor.fetchone()[0]
        cursor.execute(insert, [*params, *subscription_ids])
        return cursor.rowcount


def message_id_for(event: Event) -> str:
    """The webhook-id of an event's message: the same for every subscription, every retry and a replay."""
    return f"msg_{event.uuid.hex}"


def deliveries_add(event: Event, subscription_ids: list[int], *, now, manual: bool = False) -> list[Delivery]:
    """Pending deliveries of an event, due now; the dispatcher is rung for when the transaction commits."""
    deliveries = Delivery.objects.bulk_create(
        [
            Delivery(
                event=event,
                subscription_id=subscription_id,
                message_id=message_id_for(event),
                next_attempt_at=now,
                created_at=now,
                manual=manual,
            )
            for subscription_id in subscription_ids
        ]
    )
    doorbell.ring()
    return deliveries
