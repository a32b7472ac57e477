"""The base of every API view: scopes, the caller's owner, and dry-run plus idempotency around writes."""

from django.db import transaction
from rest_framework.generics import GenericAPIView
from rest_framework.metadata import BaseMetadata

from coupons.api import dryrun, idempotency
from coupons.api.auth import request_owner
from coupons.errors import invalid
from coupons.selectors import Owner
from coupons.storable import unstorable

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
    event or on-commit task survives) and a POST honours `Idempotency-Key` (the key is claimed and
    the answer stored in the same transaction, and replayed for the same key and body).
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
        # As APIView.dispatch, but the transaction opens only once the request is authenticated, its body
        # read and parsed and the view's slow checks done (before_transaction): SQLite takes its write
        # lock at BEGIN (IMMEDIATE), and every other writer waits for as long as it is held.
        self.args, self.kwargs = args, kwargs
        drf_request = self.initialize_request(request, *args, **kwargs)
        self.request, self.headers = drf_request, self.default_response_headers
        request.after_transaction = []
        try:
            try:
                self.initial(drf_request, *args, **kwargs)
                self._body_read(drf_request)
                if drf_request.method == "POST":
                    idempotency.idempotency_replay_stored(drf_request, drf_request.auth)
                method = drf_request.method.lower()
                handler = getattr(self, method, self.http_method_not_allowed)
                if method not in self.http_method_names:
                    handler = self.http_method_not_allowed
                self.before_transaction(drf_request, *args, **kwargs)
                with transaction.atomic():
                    response = self._handled(handler, drf_request, *args, **kwargs)
                    if self.idempotency_record is not None:
                        idempotency.idempotency_finish(self.idempotency_record, response, self.secret_fields)
                    if self.dry_run:
                        transaction.set_rollback(True)
            except Exception as exc:
                response = self.finalize_response(drf_request, self.handle_exception(exc), *args, **kwargs)
        finally:
            for callback in request.after_transaction:
                callback()
        if self.dry_run:
            response[dryrun.RESPONSE_HEADER] = "true"
        self.response = response
        return response

    def _handled(self, handler, request, *args, **kwargs):
        """The handler's answer, finalized, inside the request's transaction (an error answer included)."""
        try:
            if request.method == "POST":
                self.idempotency_record = idempotency.idempotency_begin(request, request.auth)
            response = handler(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        return self.finalize_response(request, response, *args, **kwargs)

    @staticmethod
    def _body_read(request) -> None:
        # The raw bytes first when an Idempotency-Key will hash them, then the parsed body the handler uses.
        if idempotency.HEADER in request.headers:
            idempotency.request_body(request._request)
        request.data  # noqa: B018 - parse now, outside the transaction

    def before_transaction(self, request, *args, **kwargs) -> None:
        """Slow work a write needs before its transaction opens (a DNS look-up); nothing by default."""

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

    def handle_exception(self, exc):
        if isinstance(exc, idempotency.IdempotentReplay):
            return exc.response()
        return super().handle_exception(exc)
