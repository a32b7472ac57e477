"""The API's parsers (JSON that never crashes, raw CSV) and content negotiation for file answers."""

from rest_framework.exceptions import ParseError
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser


class SafeJSONParser(JSONParser):
    """JSONParser that also turns a RecursionError (deeply nested arrays) into a ParseError."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply.") from None


class CsvBodyParser(BaseParser):
    """A `text/csv` body, handed over as raw bytes (the import decodes and checks it)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None) -> bytes:
        return stream.read() if stream is not None else b""


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """For views that answer a file: errors are JSON whatever the client's Accept header asks for."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
