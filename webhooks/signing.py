"""Standard Webhooks signatures: webhook-id, webhook-timestamp and one v1 signature per live secret."""

from datetime import UTC, datetime
from functools import lru_cache

from standardwebhooks import Webhook

SIGNATURE_HEADERS = frozenset({"webhook-id", "webhook-timestamp", "webhook-signature"})


@lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    return Webhook(secret)


def signature_headers(
    *, message_id: str, body: bytes, secrets: list[str], sent_at: datetime
) -> dict[str, str]:
    """The three headers a `standardwebhooks` receiver verifies; during a rotation both keys sign."""
    moment = datetime.fromtimestamp(int(sent_at.timestamp()), tz=UTC)
    payload = body.decode()
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": " ".join(_signer(s).sign(message_id, moment, payload) for s in secrets),
    }
