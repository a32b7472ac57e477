"""Request ids: taken from X-Request-ID or made here, echoed, logged, and carried into the tasks a request enqueues."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

from django.http import HttpRequest, HttpResponse

HEADER = "X-Request-ID"
# What load balancers and tracing proxies send (UUIDs, hex, Heroku/AWS ids): short, printable, no spaces, so
# a client cannot forge log lines or headers through it. Anything else is replaced, never refused.
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def current_request_id() -> str | None:
    """The id of the request (or of the request that enqueued the running task), None outside both."""
    return _request_id.get()


def request_id_valid(value: str) -> bool:
    return bool(value) and _VALID.fullmatch(value) is not None


def request_id_new() -> str:
    return uuid.uuid4().hex


@contextmanager
def request_id_bound(value: str | None) -> Iterator[None]:
    """Run a block under this request id (a task working for a request, a delivery for its event)."""
    token = _request_id.set(value)
    try:
        yield
    finally:
        _request_id.reset(token)


class RequestIdMiddleware:
    """First in the chain, so every response (probes, redirects, errors) carries the id."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if request_id_valid(incoming) else request_id_new()
        # Django's own request logger runs after the middleware chain, outside the context: it finds the
        # id on the request (config.logging.RequestIdFilter).
        request.request_id = request_id
        with request_id_bound(request_id):
            response = self.get_response(request)
        response[HEADER] = request_id
        if response.status_code >= 400 and not response.streaming:
            _error_body_tag(response, request_id)
        return response


def _error_body_tag(response: HttpResponse, request_id: str) -> None:
    """Put the id into the API's error body, so a client reporting a failure can quote it."""
    if not response.get("Content-Type", "").startswith("application/json"):
        return
    try:
        body = json.loads(response.content)
    except ValueError:
        return
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return
    body["error"]["request_id"] = request_id
    response.content = json.dumps(body).encode()
    if response.has_header("Content-Length"):
        response["Content-Length"] = str(len(response.content))


# django-q2 carries the id in the task package: set at enqueue, bound while the worker runs the task.
_bound: dict[str, Token] = {}


def task_tag(sender, task: dict, **kwargs) -> None:
    request_id = current_request_id()
    if request_id is not None:
        task["request_id"] = request_id


def task_bind(sender, task: dict, **kwargs) -> None:
    _bound[task["id"]] = _request_id.set(task.get("request_id"))


def task_unbind(sender, task: dict, **kwargs) -> None:
    token = _bound.pop(task["id"], None)
    if token is not None:
        _request_id.reset(token)
