"""Pagination: page numbers for small lists, cursors for long ones that grow while they are read."""

import re

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, PageNumberPagination

from coupons.errors import invalid

MAX_PAGE_SIZE = 500
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_POSITION = re.compile(r"-?[0-9]{1,18}")  # within a bigint whatever the database


class PagePagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE


class IdCursorPagination(CursorPagination):
    """Pages follow an opaque `cursor` along the id: no COUNT(*), and rows inserted between two page reads
    neither repeat a row nor skip one.

    The view's `cursor_ordering` ("-id" newest first, or "id") names the order.
    """

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    ordering = "-id"

    def get_ordering(self, request, queryset, view):
        return (getattr(view, "cursor_ordering", self.ordering),)

    def decode_cursor(self, request):
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is None:
            return None
        # DRF's decoding skips characters outside base64 ("%%%" would read as the first page) and answers a
        # malformed cursor 404 as if the list did not exist; and the position goes into a query on the id.
        try:
            cursor = super().decode_cursor(request) if _BASE64.fullmatch(encoded) else None
        except NotFound:
            cursor = None
        if cursor is None or not _POSITION.fullmatch(cursor.position or "0"):
            raise invalid("This cursor is not one a page of this list gave.", cursor="invalid")
        return cursor


class CursorOrPagePagination(IdCursorPagination):
    """Cursor pages for long lists that used to be paged by number: `?page=` still answers a numbered page
    (with its `count`), so clients written for it keep working; without it the list follows `cursor`."""

    def paginate_queryset(self, queryset, request, view=None):
        self.numbered = PagePagination() if PagePagination.page_query_param in request.query_params else None
        if self.numbered is not None:
            return self.numbered.paginate_queryset(queryset, request, view)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        if self.numbered is not None:
            return self.numbered.get_paginated_response(data)
        return super().get_paginated_response(data)

    def get_paginated_response_schema(self, schema):
        answer = super().get_paginated_response_schema(schema)
        count = {"type": "integer", "description": "Only in a page asked for by `page` number."}
        answer["properties"] = {"count": count, **answer["properties"]}
        return answer

    def get_schema_operation_parameters(self, view):
        page = {
            "name": PagePagination.page_query_param,
            "required": False,
            "in": "query",
            "deprecated": True,
            "description": "A page by number (COUNT(*) and shifting pages on long lists); follow `next` instead.",
            "schema": {"type": "integer"},
        }
        return [*super().get_schema_operation_parameters(view), page]
