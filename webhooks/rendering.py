"""The exact request of a delivery: its format's body, the subscription's headers, the signatures."""

from datetime import datetime

from django.conf import settings

from webhooks.formats import EventMessage, Rendered, get_format
from webhooks.models import Delivery
from webhooks.signing import signature_headers
from webhooks.validation import RESERVED_HEADERS


def delivery_request(delivery: Delivery, *, sent_at: datetime) -> Rendered:
    """Render and sign one delivery as it goes out now."""
    subscription, event = delivery.subscription, delivery.event
    message = EventMessage(id=str(event.uuid), type=event.type, created_at=event.created_at, data=event.data)
    rendered = get_format(subscription.format).render(
        message, url=subscription.url, http_method=subscription.http_method, params=subscription.params
    )
    # Saved headers were checked; a reserved one that slipped in (older data) is still never sent.
    headers = {
        str(name): str(value)
        for name, value in (subscription.headers or {}).items()
        if str(name).lower() not in RESERVED_HEADERS
    }
    headers |= rendered.headers
    headers["User-Agent"] = settings.WEBHOOKS_USER_AGENT
    headers |= signature_headers(
        message_id=delivery.message_id,
        body=rendered.body,
        secrets=subscription.signing_secrets(sent_at),
        sent_at=sent_at,
    )
    return Rendered(rendered.method, rendered.url, headers, rendered.body)
