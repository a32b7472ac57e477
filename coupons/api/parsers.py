"""The API's parsers (JSON that never crashes, raw CSV) and content negotiation for file answers."""

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser

from coupons.errors import invalid
from coupons.storable import unstorable_field


class SafeJSONParser(JSONParser):
    """JSONParser that also refuses what no database stores: deep nesting, NUL and lone surrogates.

    PostgreSQL's text and jsonb refuse NUL, and no UTF-8 encoder takes a lone surrogate (JSON's `"\\ud800"`);
    refused here, once, every field of every endpoint answers 400 naming the top-level field instead of a 500.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None
        field = unstorable_field(data)
        if field is not None:
            raise invalid(
                "Text may not hold NUL characters or unpaired UTF-16 surrogates.",
                **{field: "invalid_character"},
            )
        return data


class CsvBodyParser(BaseParser):
    """A `text/csv` body, handed over as raw bytes (the import decodes and checks it)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """For views that answer a file: errors are JSON whatever the client's Accept header asks for."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
