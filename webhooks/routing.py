"""Which active subscriptions want an event: a per-process cache of their filters, confirmed in the database."""

import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q

from webhooks.formats import FORMATS
from webhooks.models import Subscription


@dataclass(frozen=True)
class Route:
    """What the outbox needs to know of an active subscription to decide whether an event goes to it."""

    id: int
    events: frozenset[str]
    merchant_id: int | None
    distributor_id: int | None
    site_id: int | None
    offer_ids: frozenset[int]

    def wants(self, event_type: str, offer) -> bool:
        if event_type not in self.events:
            return False
        if offer is None:
            # An event of no offer goes only to subscriptions that filter on nothing.
            return (
                self.merchant_id is None
                and self.distributor_id is None
                and self.site_id is None
                and not self.offer_ids
            )
        return (
            (self.merchant_id is None or self.merchant_id == offer.merchant_id)
            and (self.site_id is None or self.site_id == offer.site_id)
            and (not self.offer_ids or offer.id in self.offer_ids)
        )


class _RouteCache:
    """The active subscriptions, read at most once every WEBHOOKS_ROUTE_CACHE_SECONDS per process.

    Every redemption asks which subscriptions want it; reading them from the database each time would
    cost queries on the hottest path. Saves in this process drop the cache at once; other processes see
    a change within the cache period. Correctness does not depend on it: the chosen subscriptions are
    checked again (still there, still active, distributor still authorised) in the insert's query.
    """

    def __init__(self) -> None:
        self._routes: tuple[Route, ...] = ()
        self._loaded_at: float | None = None
        self._lock = threading.Lock()

    def routes(self) -> tuple[Route, ...]:
        loaded_at = self._loaded_at
        if loaded_at is None or time.monotonic() - loaded_at > settings.WEBHOOKS_ROUTE_CACHE_SECONDS:
            with self._lock:
                self._routes, self._loaded_at = _routes_load(), time.monotonic()
        return self._routes

    def forget(self) -> None:
        self._loaded_at = None


def _routes_load() -> tuple[Route, ...]:
    rows = list(
        Subscription.objects.filter(active=True).values_list(
            "id", "format", "events", "merchant_id", "distributor_id", "site_id"
        )
    )
    offer_ids: dict[int, set[int]] = {}
    through = Subscription.offers.through.objects.filter(subscription__active=True)
    for subscription_id, offer_id in through.values_list("subscription_id", "offer_id"):
        offer_ids.setdefault(subscription_id, set()).add(offer_id)
    routes = []
    for id_, format_name, events, merchant_id, distributor_id, site_id in rows:
        format_class = FORMATS.get(format_name)
        if format_class is None or not isinstance(events, list):
            continue
        # Only the events the subscriber chose and its format can render.
        wanted = frozenset(e for e in events if isinstance(e, str)) & format_class.events
        routes.append(
            Route(id_, wanted, merchant_id, distributor_id, site_id, frozenset(offer_ids.get(id_, ())))
        )
    return tuple(routes)


route_cache = _RouteCache()


def routes_forget(**kwargs) -> None:
    """Drop this process's cached subscriptions (connected to Subscription saves and deletes)."""
    route_cache.forget()


def subscription_ids_matching(*, event_type: str, offer) -> list[int]:
    """Ids of the active subscriptions that want this event of this offer, as of now."""
    candidates = [route for route in route_cache.routes() if route.wants(event_type, offer)]
    if not candidates:
        return []
    # The cache may be a moment old: confirm the candidates still exist and are active, and that a
    # distributor's subscription only gets offers the distributor is authorised for right now.
    confirmed = Subscription.objects.filter(id__in=[route.id for route in candidates], active=True)
    if any(route.distributor_id is not None for route in candidates):
        confirmed = confirmed.filter(Q(distributor__isnull=True) | Q(distributor__offers=offer))
    # One row per subscription: a distributor is authorised at most once per offer.
    return list(confirmed.order_by("id").values_list("id", flat=True))


def subscriptions_matching(*, event_type: str, offer) -> list[Subscription]:
    """The same, as subscriptions with only their id loaded (for writers that build deliveries in bulk)."""
    ids = subscription_ids_matching(event_type=event_type, offer=offer)
    return list(Subscription.objects.filter(id__in=ids).only("id").order_by("id")) if ids else []
