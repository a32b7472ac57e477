"""Text the databases cannot store: NUL (PostgreSQL text and jsonb) and lone surrogates (no UTF-8 encoder)."""


def unstorable(text: str) -> bool:
    """Whether text holds a NUL or a lone surrogate (which only JSON escapes or URL decoding can produce)."""
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable_field(data) -> str | None:
    """The top-level key under which a body holds unstorable text (in a key or a value), else None."""
    if isinstance(data, dict):
        for key, value in data.items():
            if unstorable(key) or _holds_unstorable(value):
                return key if not unstorable(key) else "non_field_errors"
        return None
    return "non_field_errors" if _holds_unstorable(data) else None


def _holds_unstorable(value) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if unstorable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
