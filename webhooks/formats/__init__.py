"""Registry of webhook formats: the format name a subscription stores → the class that renders it."""

from .base import EVENT_TYPES, EventMessage, Rendered, WebhookFormat
from .growlytics import Growlytics
from .hub_events import HubEvents
from .redcat import Redcat
from .standard import Standard
from .uniqodo_callback import UniqodoCallback

FORMATS: dict[str, type[WebhookFormat]] = {
    format_class.name: format_class
    for format_class in (Redcat, HubEvents, UniqodoCallback, Growlytics, Standard)
}

FORMAT_CHOICES: list[tuple[str, str]] = [(name, format_class.label) for name, format_class in FORMATS.items()]


def get_format(name: str) -> WebhookFormat:
    try:
        return FORMATS[name]()
    except KeyError:
        raise ValueError(f"Unknown webhook format {name!r}; choose one of {', '.join(FORMATS)}.") from None


__all__ = [
    "EVENT_TYPES",
    "FORMATS",
    "FORMAT_CHOICES",
    "EventMessage",
    "Rendered",
    "WebhookFormat",
    "get_format",
]
