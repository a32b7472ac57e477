"""OpenAPI: the error body on every operation, the write headers, and the Bearer key scheme."""

from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.pagination import CursorPagination

from coupons.api import dryrun, idempotency
from coupons.api.serializers import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "`invalid_request`: the body, a query parameter or a header is not valid (`fields` says which).",
    401: "`unauthenticated`: no API key, or an invalid or revoked one.",
    403: "`forbidden`: the API key lacks the scope this operation needs.",
    404: "`not_found`: no such object among those the key may see.",
    409: "A business refusal, e.g. `already_redeemed`, `expired`, `min_order_not_met`.",
    413: "`payload_too_large`: the body is larger than the API accepts.",
    422: "`idempotency_conflict`: the Idempotency-Key was used with another request.",
    429: "`rate_limited`: too many unknown codes; see `Retry-After`.",
}


def error_response(status: int, description: str | None = None) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description or ERROR_DESCRIPTIONS[status])


class ApiAutoSchema(AutoSchema):
    """Adds what every operation shares, so each view documents only its own answers."""

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method in getattr(self.view, "write_methods", ()):
            parameters.append(
                OpenApiParameter(
                    dryrun.HEADER,
                    str,
                    OpenApiParameter.HEADER,
                    enum=["true", "false"],
                    description="`true`: run every check and answer as if written, but write nothing.",
                )  # fmt: skip
            )
            if self.method == "POST":
                parameters.append(
                    OpenApiParameter(
                        idempotency.HEADER,
                        str,
                        OpenApiParameter.HEADER,
                        description="Replays the first answer for the same key and body; 422 for another body.",
                    )  # fmt: skip
                )
        return parameters

    def get_operation_id(self) -> str:
        # Reached only when a view's @extend_schema names no operation_id: the generated ones
        # (`v1_offers_coupons.csv_retrieve`) change with the URL and make poor client method names.
        operation_id = super().get_operation_id()
        warn(
            f"{self.method} {self.path} names no operation_id (@extend_schema(operation_id=...)); it gets {operation_id}."
        )
        return operation_id

    def get_paginated_name(self, serializer_name: str) -> str:
        # A list paged by cursor answers another shape (no count) than one paged by number: two components.
        if isinstance(self._get_paginator(), CursorPagination):
            return f"{serializer_name}CursorPage"
        return super().get_paginated_name(serializer_name)

    def _get_response_bodies(self, direction="response"):
        # Hooked here rather than in get_response_serializers, which @extend_schema(responses=...) replaces.
        responses = super()._get_response_bodies(direction)
        for status in self._error_statuses():
            if str(status) not in responses:
                responses[str(status)] = self._get_response_for_code(
                    error_response(status), str(status), ["application/json"], direction
                )
        return responses

    def _error_statuses(self) -> list[int]:
        statuses = [400, 404]
        if getattr(self.view, "required_scope", None) is not None:
            statuses += [401, 403]
        if self.method in getattr(self.view, "write_methods", ()):
            statuses.append(413)
        if self.method == "POST":
            statuses.append(422)
        if getattr(self.view, "counts_unknown_codes", False):
            statuses.append(429)
        return statuses


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "coupons.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>`. Create one with "
            "`manage.py create_api_key` or in the admin.",
        }
