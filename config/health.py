"""Liveness and readiness probes for load balancers and process supervisors."""

from __future__ import annotations

import time
from functools import cache
from importlib import import_module

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

# A probe must answer before the load balancer gives up on it (typically 2-5 s).
BROKER_TIMEOUT_SECONDS = 2.0


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving requests; touches nothing else, so a database outage never restarts it."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready for traffic: the database answers a query and the task broker answers a ping.

    A failure names the dependency; its error text (host names, addresses) only for a staff user.
    """
    checks: dict[str, dict[str, object]] = {}
    errors: dict[str, str] = {}
    for name, check in (("database", database_check), ("broker", broker_check)):
        started = time.perf_counter()
        error = check()
        checks[name] = {"ok": error is None, "ms": round((time.perf_counter() - started) * 1000, 1)}
        if error is not None:
            errors[name] = error
    if not errors:
        return JsonResponse({"status": "ok", "checks": checks})
    if _is_staff(request):
        for name, error in errors.items():
            checks[name]["error"] = error
        reason = "; ".join(f"{name}: {error}" for name, error in errors.items())
    else:
        reason = "; ".join(errors)
    return JsonResponse({"status": "unavailable", "reason": reason, "checks": checks}, status=503)


def _is_staff(request: HttpRequest) -> bool:
    """Whether the probe comes from a logged-in staff user; the probes run before the session middleware."""
    from django.contrib.auth import get_user

    session_key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
    if not session_key:
        return False
    try:
        request.session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
        return bool(get_user(request).is_staff)
    except Exception:  # noqa: BLE001 - the session store may be the dependency that is down
        return False


def database_check() -> str | None:
    """None when the default database answers SELECT 1, else why not."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        # The broken connection is discarded at the end of this request (CONN_HEALTH_CHECKS and
        # close_if_unusable_or_obsolete), so the next probe reconnects by itself.
        return _first_line(exc)
    return None


def broker_check() -> str | None:
    """None when the django-q2 broker answers: Redis PING when scaled out, else its ORM queue table."""
    if settings.REDIS_URL:
        return _redis_check()
    return _orm_broker_check()


def _redis_check() -> str | None:
    import redis

    try:
        _redis_client().ping()
    except redis.RedisError as exc:
        return _first_line(exc)
    return None


@cache
def _redis_client():
    """One client (and connection pool) per process: a probe every few seconds must not open a socket each time."""
    import redis

    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=BROKER_TIMEOUT_SECONDS,
        socket_timeout=BROKER_TIMEOUT_SECONDS,
    )


def _orm_broker_check() -> str | None:
    from django_q.conf import Conf
    from django_q.models import OrmQ

    try:
        # Reads one index page of the queue table: proves the table is there and readable.
        OrmQ.objects.using(Conf.ORM).values_list("pk").first()
    except DatabaseError as exc:
        return _first_line(exc)
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class HealthCheckMiddleware:
    """Answers the probes before host validation and HTTPS redirects: load balancers probe by bare IP over HTTP."""

    VIEWS = {"/healthz": healthz, "/readyz": readyz}

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest):
        view = self.VIEWS.get(request.path_info)
        if view is None:
            return self.get_response(request)
        response = view(request)
        # CommonMiddleware, which sets it for other pages, never sees these: keep-alive clients need it.
        response["Content-Length"] = str(len(response.content))
        return response
