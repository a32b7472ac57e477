"""What makes a subscription valid: a safe URL, events its format renders, sane headers and parameters."""

import re
from collections.abc import Iterable, Mapping

from coupons.storable import unstorable
from webhooks.formats import EVENT_TYPES, FORMATS, get_format
from webhooks.signing import SIGNATURE_HEADERS
from webhooks.urls_guard import url_refusal

# RFC 9110 token: the characters a header name may have.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
RESERVED_HEADERS = SIGNATURE_HEADERS | {
    "host", "content-length", "transfer-encoding", "connection", "content-type", "user-agent",
}  # fmt: skip
MAX_HEADERS = 20
MAX_HEADER_VALUE = 1000


def subscription_errors(subscription) -> dict[str, list[str]]:
    """Every problem of a subscription's settings, by field; empty when it can be saved."""
    url, format, events = subscription.url, subscription.format, subscription.events
    http_method, params, headers = subscription.http_method, subscription.params, subscription.headers
    errors: dict[str, list[str]] = {}
    refusal = (
        url_refusal(url) if isinstance(url, str) and url else "Enter the URL that receives the webhooks."
    )
    if refusal:
        errors["url"] = [refusal]
    if format not in FORMATS:
        errors["format"] = [f"Unknown format {format!r}; choose one of {', '.join(FORMATS)}."]
        return errors | _headers_errors(headers)
    problem = _events_problem(events)
    if problem:
        errors["events"] = [problem]
    elif not isinstance(params, Mapping):
        errors["params"] = ['Parameters are an object: {"parameter name": "data item"}.']
    elif any(unstorable(str(name)) for name in params):
        errors["params"] = ["Parameter names may not hold NUL characters or unpaired surrogates."]
    else:
        errors |= _format_errors(format, events, http_method, params)
    return errors | _headers_errors(headers)


def _events_problem(events) -> str | None:
    if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
        return "Events are a list of event types."
    if not events:
        return "Choose at least one event."
    unknown = sorted(set(events) - set(EVENT_TYPES))
    if unknown:
        return f"Unknown event types: {', '.join(unknown)}; choose from {', '.join(EVENT_TYPES)}."
    return None


def _format_errors(format: str, events: Iterable[str], http_method, params: Mapping) -> dict[str, list[str]]:
    """The format's own rule (validate_subscription), its message filed under the field at fault."""
    webhook_format = get_format(format)
    if not isinstance(http_method, str):
        return {"http_method": ["The HTTP method is GET or POST."]}
    try:
        webhook_format.validate_subscription(events, http_method, params)
    except ValueError as error:
        if set(events) - webhook_format.events:
            field = "events"
        elif http_method.upper() not in webhook_format.http_methods:
            field = "http_method"
        else:
            field = "params"
        return {field: [str(error)]}
    return {}


def _headers_errors(headers) -> dict[str, list[str]]:
    if not isinstance(headers, Mapping):
        return {"headers": ['Extra headers are an object: {"Header-Name": "value"}.']}
    if len(headers) > MAX_HEADERS:
        return {"headers": [f"At most {MAX_HEADERS} extra headers."]}
    for name, value in headers.items():
        if not isinstance(name, str) or not HEADER_NAME.match(name):
            return {"headers": [f"{name!r} is not a valid header name."]}
        if name.lower() in RESERVED_HEADERS:
            return {"headers": [f"The {name} header is set by the platform and cannot be replaced."]}
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE or any(c in value for c in "\r\n\0"):
            return {
                "headers": [
                    f"The value of {name} must be text of at most {MAX_HEADER_VALUE} characters on one line."
                ]
            }
    return {}
