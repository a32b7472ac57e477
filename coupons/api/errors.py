"""One exception handler turning business, validation and HTTP errors into the spec's error body."""
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from coupons.errors import ApplicationError

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


def error_response(error: ApplicationError, headers: dict | None = None) -> Response:
    return Response(error.as_body(), status=error.status, headers=headers)


def exception_handler(exc, context):
    """Map every error the API can raise to {"error": {code, message, fields}}."""
    if isinstance(exc, ApplicationError):
        headers = {"Retry-After": str(exc.retry_after)} if getattr(exc, "retry_after", None) else None
        return error_response(exc, headers)
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
        body = ApplicationError("invalid_request", "The request is not valid.", fields=_plain(fields)).as_body()
        return Response(body, status=status.HTTP_400_BAD_REQUEST, headers=_headers(response))
    code, message = next(((c, m) for kind, (c, m) in DRF_CODES.items() if isinstance(exc, kind)), ("error", None))
    body = {"error": {"code": code, "message": message or str(exc.detail), "fields": {}}}
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
