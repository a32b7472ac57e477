"""X-DRY-RUN: a write runs every check inside a transaction that is then rolled back."""

from coupons.errors import invalid

HEADER = "X-DRY-RUN"
RESPONSE_HEADER = "X-Dry-Run"
TRUE = {"true", "1", "yes", "on"}
FALSE = {"false", "0", "no", "off", ""}


def dry_run_requested(request) -> bool:
    """True when the request asks for a dry run; an unreadable value is refused rather than guessed."""
    value = request.headers.get(HEADER)
    if value is None:
        return False
    value = value.strip().lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise invalid("X-DRY-RUN is true or false.", **{HEADER: "invalid"})
