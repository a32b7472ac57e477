"""Pagination: page numbers for small lists, cursors for long ones that grow while they are read."""

import re

from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination, PageNumberPagination

from coupons.errors import invalid

MAX_PAGE_SIZE = 500
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
        try:
            cursor = super().decode_cursor(request)
        except NotFound:  # DRF answers a malformed cursor 404, as if the list itself did not exist
            cursor = _BROKEN
        # A cursor is the client's text: its position goes into a query on the id, so it must be an id.
        if cursor is _BROKEN or (cursor is not None and not _POSITION.fullmatch(cursor.position or "0")):
            raise invalid("This cursor is not one a page of this list gave.", cursor="invalid")
        return cursor


_BROKEN = object()
