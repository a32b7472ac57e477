"""Idempotency-Key on POST: the first answer to a key and body is stored with the write and replayed."""

import hashlib
import io
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.response import Response

from coupons.errors import ApplicationError, invalid
from coupons.models import ApiKey, IdempotencyRecord

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEPT_HEADERS = ("Location", "Content-Type")
PENDING = 0  # status of a record whose request is still running (never visible outside its transaction)


class IdempotentReplay(Exception):
    """The request repeats an earlier one: answer with the stored response instead of running it."""

    def __init__(self, record: IdempotencyRecord):
        super().__init__(record.key)
        self.record = record

    def response(self) -> HttpResponse:
        """The stored bytes, as first sent (less any secret), with the stored headers."""
        headers = {**(self.record.response_headers or {}), REPLAYED_HEADER: "true"}
        return HttpResponse(
            bytes(self.record.response_content), status=self.record.status_code, headers=headers
        )


def idempotency_begin(request, api_key: ApiKey) -> IdempotencyRecord | None:
    """Claim the request's Idempotency-Key, or raise IdempotentReplay / idempotency_conflict.

    Runs inside the request's transaction: the claim is a row under a unique (api key, key)
    constraint, so a concurrent request with the same key waits on it and then replays.
    """
    key = _key_of(request)
    if key is None:
        return None
    request_hash = _request_hash(request)
    records = IdempotencyRecord.objects.filter(api_key=api_key, key=key)
    records.filter(created_at__lt=_oldest_kept()).delete()  # an expired key is free again
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                api_key=api_key, key=key, request_hash=request_hash, status_code=PENDING
            )
    except IntegrityError:
        pass
    _replay(records.select_for_update().get(), request_hash)


def idempotency_replay_stored(request, api_key: ApiKey) -> None:
    """Before the request's transaction: a key whose answer is already stored replays it (or conflicts) at
    once, with no write lock taken and none of the request's checks run again (its codes may exist by now)."""
    key = _key_of(request)
    if key is None:
        return
    record = IdempotencyRecord.objects.filter(
        api_key=api_key, key=key, created_at__gte=_oldest_kept()
    ).first()
    if record is not None:  # a claim still running is never visible outside its own transaction
        _replay(record, _request_hash(request))


def _key_of(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is not None and (not 0 < len(key) <= 255 or not key.isprintable() or not key.isascii()):
        raise invalid("Idempotency-Key is 1 to 255 printable ASCII characters.", **{HEADER: "invalid"})
    return key


def _replay(record: IdempotencyRecord, request_hash: str):
    if record.request_hash != request_hash:
        raise ApplicationError(
            "idempotency_conflict",
            "This Idempotency-Key was already used with another request; use a new key.",
            fields={HEADER: ["reused"]},
        )
    raise IdempotentReplay(record)


def idempotency_finish(
    record: IdempotencyRecord, response: Response, secret_fields: tuple[str, ...] = ()
) -> None:
    """Store the answer with the write; answers that did nothing (bad input, not found) free the key.

    The stored answer is the rendered bytes. `secret_fields` (a signing secret, shown once) are left out
    of what is stored, so a replay answers the same without them and no secret rests in this table.
    """
    if not _kept(response.status_code):
        record.delete()
        return
    response.render()  # as Django would just after; it also settles the Content-Type stored below
    content, data = response.content, response.data
    if isinstance(data, dict) and any(name in data for name in secret_fields):
        redacted = {name: value for name, value in data.items() if name not in secret_fields}
        content = response.accepted_renderer.render(
            redacted, response.accepted_media_type, response.renderer_context
        )
    record.status_code = response.status_code
    record.response_content = content
    record.response_headers = {name: response[name] for name in KEPT_HEADERS if name in response}
    record.save(update_fields=["status_code", "response_content", "response_headers"])


def idempotency_records_purge(*, now: datetime | None = None) -> int:
    """Delete records past IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=_oldest_kept(now)).delete()
    return deleted


def _kept(status_code: int) -> bool:
    # Successes and business refusals (409: the request ran and was refused) are replayed; a 4xx
    # that ran nothing is not, so the client can fix its request and retry with the same key.
    return status_code < 400 or status_code == 409


def _oldest_kept(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def _request_hash(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b"\n" + request.get_full_path().encode() + b"\n")
    digest.update(request_body(request._request))
    return digest.hexdigest()


def request_body(django_request) -> bytes:
    """The raw body, read once and kept for the parsers.

    Like HttpRequest.body without its global size check: ApiErrorMiddleware already held the
    body to the view's own limit (a CSV upload may exceed DATA_UPLOAD_MAX_MEMORY_SIZE).
    """
    if not hasattr(django_request, "_body"):
        django_request._body = django_request.read()
        django_request._stream = io.BytesIO(django_request._body)
    return django_request._body
