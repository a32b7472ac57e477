"""Log formats (readable lines in development, one JSON object a line in production) and the request id filter."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from config.request_id import current_request_id

# Defence in depth: code never logs these on purpose, but an exception message or a third-party library
# might echo a header or a body. API keys (ck_), signing secrets (whsec_), webhook signatures (v1,<base64>)
# and bearer tokens are masked before a record is written anywhere.
_SECRETS = re.compile(
    r"\b(?P<keep>ck_|whsec_|v1,|Bearer\s+)[A-Za-z0-9+/=_-]{8,}",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _SECRETS.sub(lambda m: m.group("keep") + "[redacted]", text)


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id`: the current request's or task's, else the one on record.request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id()
        if request_id is None:
            request_id = getattr(getattr(record, "request", None), "request_id", None)
        if request_id is None and record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            # gunicorn logs after the response left: the id is the one the response carries.
            request_id = record.args.get("{x-request-id}o")
        record.request_id = request_id if request_id and request_id != "-" else "-"
        return True


class TextFormatter(logging.Formatter):
    """`2026-01-01 12:00:00,000 INFO coupons.api [id] message`: for people reading a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            RequestIdFilter().filter(record)
        return redact(super().format(record))


# Attributes every LogRecord has; anything else was passed in `extra` and goes into the JSON object.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}
# Objects Django passes in `extra` that have no place in a log line (and may hold headers).
_SKIPPED = {"request", "server_time", "status_code"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line with time, level, logger, message and request id, for log collectors."""

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            RequestIdFilter().filter(record)
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if record.request_id == "-" else record.request_id,
        }
        status = getattr(record, "status_code", None)
        if status is not None:
            entry["status"] = status
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _SKIPPED and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | type(None)) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def _access_fields(atoms: Mapping) -> dict:
    """The fields of an access log line, for collectors that filter on them."""
    return {
        "remote_addr": atoms.get("h"),
        "method": atoms.get("m"),
        "path": atoms.get("U"),
        "status": int(atoms["s"]) if str(atoms.get("s", "")).isdigit() else atoms.get("s"),
        "bytes": atoms.get("B"),
        "duration_ms": atoms.get("M"),
        "user_agent": atoms.get("a"),
    }


def logging_config(*, fmt: str, level: str) -> dict:
    """The one LOGGING dict: the web processes, the cluster and gunicorn (config/gunicorn.py) all use it."""
    formatter = "json" if fmt == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "config.logging.RequestIdFilter"}},
        "formatters": {
            "text": {"()": "config.logging.TextFormatter"},
            "json": {"()": "config.logging.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": formatter, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            # gunicorn's access and error logs through the same handler and format.
            "gunicorn.access": {"handlers": ["console"], "level": level, "propagate": False},
            "gunicorn.error": {"handlers": ["console"], "level": level, "propagate": False},
            # runserver's request lines (make run), in the same format rather than Django's own.
            "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        },
    }
