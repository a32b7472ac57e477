"""The platform's own format: every event, its snapshot sent as is."""

from typing import Any

from .base import EVENT_TYPES, EventMessage, WebhookFormat, utc_z


class Standard(WebhookFormat):
    name = "standard"
    label = "Standard"
    events = frozenset(EVENT_TYPES)

    def payload(self, message: EventMessage) -> dict[str, Any]:
        return {
            "id": message.id,
            "type": message.type,
            "timestamp": utc_z(message.created_at, timespec="microseconds"),
            "data": message.data,
        }
