"""Credentials in receivers' URLs and headers, masked wherever they are shown after being configured."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"
# Query parameters whose values are usually credentials (token=, api_key=, signature=, ...).
SECRET_QUERY_NAMES = ("token", "key", "secret", "pass", "pwd", "auth", "sig", "credential")
SHOWN_TAIL = 4  # a long header value keeps its last characters, enough to tell two tokens apart
SHOWN_TAIL_MIN_LENGTH = 16


def url_redacted(url: str) -> str:
    """The URL with its user-info password (or a lone user name, often a token) and secret-looking query
    values masked: `https://user:****@host/…`."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_secret_name(name) for name, _ in pairs):
            query = urlencode([(n, MASK if _secret_name(n) else v) for n, v in pairs], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_QUERY_NAMES)


def headers_redacted(headers: dict) -> dict:
    """Each header value masked, a long one keeping its last four characters: `****abcd`."""
    return {name: _value_redacted(value) for name, value in (headers or {}).items()}


def _value_redacted(value) -> str:
    text = str(value)
    return MASK + text[-SHOWN_TAIL:] if len(text) >= SHOWN_TAIL_MIN_LENGTH else MASK


def url_unredacted(given: str, stored: str) -> str:
    """What a URL sent back from a masked view means: the stored one when it is that view, unchanged."""
    return stored if stored and given == url_redacted(stored) and given != stored else given


def headers_unredacted(given: dict, stored: dict) -> dict:
    """Headers sent back from a masked view: a value still showing its mask keeps the stored value."""
    stored = stored or {}
    return {
        name: stored[name] if name in stored and value == _value_redacted(stored[name]) else value
        for name, value in given.items()
    }
