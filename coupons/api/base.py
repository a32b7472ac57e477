"""The base of every API view: scopes, the caller's owner, and dry-run plus idempotency around writes."""

from django.db import transaction
from rest_framework.generics import GenericAPIView
from rest_framework.metadata import BaseMetadata

from coupons.api import dryrun, idempotency
from coupons.api.auth import request_owner
from coupons.api.parsers import unstorable
from coupons.errors import invalid
from coupons.selectors import Owner

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class EndpointMetadata(BaseMetadata):
    """The answer to OPTIONS: what the endpoint is and which methods and media types it takes.

    Fields are described once, by the OpenAPI schema; DRF's default would build a serializer per view.
    """

    def determine_metadata(self, request, view) -> dict:
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "methods": view.allowed_methods,
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
            "schema": "/api/schema/",
        }


class ApiView(GenericAPIView):
    """A view whose writes each run in one transaction.

    `required_scope` names the scope a method needs (a string, a tuple of alternatives, or a dict
    by method). Writes honour `X-DRY-RUN` (the transaction is rolled back, so no row, webhook
    event or on-commit task survives) and a POST honours `Idempotency-Key` (the answer is stored
    in the same transaction and replayed for the same key and body).
    """

    required_scope: str | tuple | dict | None = None
    metadata_class = EndpointMetadata
    filter_backends = []  # each list filters explicitly, with its query serializer
    write_methods: frozenset[str] = WRITE_METHODS
    dry_run = False
    idempotency_record = None
    service_is_atomic = False  # True: the view's only database work is one service call, atomic or read-only
    secret_fields: tuple[str, ...] = ()  # answer fields shown once: never stored for an idempotent replay

    @property
    def owner(self) -> Owner:
        return request_owner(self.request)

    def dispatch(self, request, *args, **kwargs):
        if request.method not in self.write_methods or not self._request_transaction_needed(request):
            return super().dispatch(request, *args, **kwargs)
        request.after_transaction = []
        try:
            with transaction.atomic():
                response = super().dispatch(request, *args, **kwargs)
                if self.idempotency_record is not None:
                    idempotency.idempotency_finish(self.idempotency_record, response, self.secret_fields)
                if self.dry_run:
                    transaction.set_rollback(True)
        finally:
            for callback in request.after_transaction:
                callback()
        if self.dry_run:
            response[dryrun.RESPONSE_HEADER] = "true"
        return response

    def _request_transaction_needed(self, request) -> bool:
        # A view whose one write is a service that is itself atomic runs it as the outermost transaction
        # (no savepoint around it: two statements fewer on a hot path) unless the request asks for a dry
        # run or an idempotent replay, which need the request's own transaction around everything.
        if not self.service_is_atomic:
            return True
        return dryrun.HEADER in request.headers or idempotency.HEADER in request.headers

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, scope, throttles
        for name, values in request.query_params.lists():
            if unstorable(name) or any(unstorable(value) for value in values):
                raise invalid("Query parameters may not hold NUL characters.", **{name: "invalid_character"})
        if request.method in self.write_methods:
            self.dry_run = dryrun.dry_run_requested(request)
            if request.method == "POST":
                self.idempotency_record = idempotency.idempotency_begin(request, request.auth)

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.IdempotentReplay):
            return exc.response()
        return super().handle_exception(exc)
