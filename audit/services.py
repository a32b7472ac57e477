"""Recording changes made over the API as AuditEntry rows (admin actions use django.contrib.admin's LogEntry)."""

from __future__ import annotations

import json

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from audit.models import AuditEntry
from config.request_id import current_request_id

# Values never written to the trail: the trail is readable by every admin user.
REDACTED_FIELDS = frozenset({"secret", "previous_secret", "headers", "hashed_key", "token"})


def audit_record(
    *, api_key, action: str, obj: models.Model | None = None, changes: dict | None = None, actor: str = ""
) -> AuditEntry:
    """Record one change made with an API key (or by `actor`, e.g. a command) inside the change's transaction."""
    return AuditEntry.objects.create(
        api_key_id=getattr(api_key, "pk", None),
        actor=actor or (str(api_key) if api_key is not None else "unknown"),
        action=action,
        content_type=ContentType.objects.get_for_model(obj) if obj is not None else None,
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:300] if obj is not None else "",
        changes=_plain(changes or {}),
        request_id=current_request_id() or "",
    )


def _plain(changes: dict) -> dict:
    safe = {}
    for field, value in changes.items():
        if field in REDACTED_FIELDS:
            safe[field] = "[redacted]"
        elif isinstance(value, models.Model):
            safe[field] = value.pk
        elif isinstance(value, list | tuple | set) and any(isinstance(v, models.Model) for v in value):
            safe[field] = [getattr(v, "pk", v) for v in value]
        else:
            safe[field] = value
    return json.loads(json.dumps(safe, cls=DjangoJSONEncoder, default=str))
