"""One error body for the whole API: the DRF exception handler and a middleware for what DRF never sees."""

import logging

from django import db
from django.conf import settings
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from coupons.errors import ApplicationError

logger = logging.getLogger("coupons.api")

API_PREFIX = "/api/"
DRF_CODES = {
    exceptions.NotAuthenticated: ("unauthenticated", "Authentication credentials were not provided."),
    exceptions.AuthenticationFailed: ("unauthenticated", None),
    exceptions.PermissionDenied: ("forbidden", None),
    exceptions.NotFound: ("not_found", "Not found."),
    exceptions.MethodNotAllowed: ("method_not_allowed", None),
    exceptions.NotAcceptable: ("not_acceptable", None),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", None),
    exceptions.Throttled: ("rate_limited", None),
    exceptions.ParseError: ("invalid_request", None),
}


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def error_response(error: ApplicationError, headers: dict | None = None) -> Response:
    return Response(error.as_body(), status=error.status, headers=headers)


def too_large(limit: int) -> ApplicationError:
    return ApplicationError("payload_too_large", f"The request body exceeds {limit} bytes.")


def exception_handler(exc, context):
    """Map every error the API can raise to {"error": {code, message, fields}}."""
    if isinstance(exc, RequestDataTooBig):
        exc = too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else None
        return error_response(exc, headers)
    if isinstance(exc, SuspiciousOperation | BadRequest):
        return error_response(ApplicationError("invalid_request", "The request is malformed."))
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=getattr(exc, "message_dict", None) or exc.messages)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        body = error_body("invalid_request", "The request is not valid.", _plain(fields))
        return Response(body, status=status.HTTP_400_BAD_REQUEST, headers=_headers(response))
    code, message = next(
        ((c, m) for kind, (c, m) in DRF_CODES.items() if isinstance(exc, kind)), ("error", None)
    )
    body = error_body(code, message or str(exc.detail))
    return Response(body, status=response.status_code, headers=_headers(response))


def _plain(detail):
    """ErrorDetail trees to plain lists and dicts of strings."""
    if isinstance(detail, dict):
        return {str(k): _plain(v) for k, v in detail.items()}
    if isinstance(detail, list):
        return [_plain(v) for v in detail]
    return str(detail)


def _headers(response) -> dict:
    return {k: v for k, v in response.items() if k in ("Retry-After", "WWW-Authenticate", "Allow")}


class ApiErrorMiddleware:
    """Under /api/: unknown paths, oversized bodies and crashes answer the error body, never an HTML page.

    It sits before CommonMiddleware so an API path is never answered with an APPEND_SLASH redirect
    (which Django turns into a 500 for a POST in DEBUG).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return _json_error(_unknown_path(request.path_info))
        limit = body_limit(getattr(match.func, "cls", None))
        if _content_length(request) > limit:
            return _json_error(too_large(limit))
        response = self.get_response(request)
        if response.status_code >= 400 and not _is_json(response):
            # A Django error page (404 from a plain view, 500 from a crash): same status, our body.
            code = {404: "not_found", 405: "method_not_allowed"}.get(response.status_code)
            if code is None:
                code = "invalid_request" if response.status_code < 500 else "server_error"
            return _json_error(
                ApplicationError(code, response.reason_phrase + ".", status=response.status_code)
            )
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not request.path_info.startswith(API_PREFIX):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _json_error(too_large(settings.DATA_UPLOAD_MAX_MEMORY_SIZE))
        if isinstance(exception, SuspiciousOperation | BadRequest):
            return _json_error(ApplicationError("invalid_request", "The request is malformed."))
        if isinstance(exception, Http404):
            return _json_error(ApplicationError("not_found", "Not found."))
        if isinstance(exception, db.OperationalError | db.InterfaceError):
            # The database is restarting or unreachable: nothing was written, the client may retry.
            logger.warning("Database unavailable on %s %s: %s", request.method, request.path, exception)
            response = _json_error(UNAVAILABLE)
            response["Retry-After"] = "5"
            return response
        # Logged without the request's headers, so an API key never reaches a log.
        logger.error("Unhandled error on %s %s", request.method, request.path, exc_info=exception)
        return _json_error(ApplicationError("server_error", "Something went wrong on our side.", status=500))


def body_limit(view_class) -> int:
    """The largest body a view accepts: its own `max_body_bytes`, else DATA_UPLOAD_MAX_MEMORY_SIZE."""
    limit = getattr(view_class, "max_body_bytes", None)
    if callable(limit):
        limit = limit()
    return limit or settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _unknown_path(path: str) -> ApplicationError:
    message = "No API endpoint at this path."
    if not path.endswith("/"):
        try:
            resolve(path + "/")
            message = f"No API endpoint at this path; did you mean {path}/ ?"
        except Resolver404:
            pass
    return ApplicationError("not_found", message)


def _content_length(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _is_json(response: HttpResponse) -> bool:
    return response.get("Content-Type", "").startswith("application/json")


UNAVAILABLE = ApplicationError(
    "service_unavailable", "The service is briefly unavailable; retry in a few seconds.", status=503
)


def _json_error(error: ApplicationError) -> JsonResponse:
    return JsonResponse(error.as_body(), status=error.status)
