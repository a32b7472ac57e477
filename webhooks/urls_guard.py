"""Keep webhooks away from the platform's own network (SSRF): the URL at save, the resolved address at send."""

import ipaddress
import socket
import time
from urllib.parse import urlsplit

from django.conf import settings
from requests_hardened.ip_filter import EXTRA_BLOCKED_NET_RANGES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The private ranges WEBHOOKS_ALLOW_PRIVATE_URLS opens (development receivers, containers, tests).
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network) for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
)
DEFAULT_PORTS = {"http": 80, "https": 443}


class UnsafeURL(ValueError):
    """A URL the platform refuses to send webhooks to; the message says why."""


def private_urls_allowed() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE_URLS)


def address_refusal(ip: IPAddress, *, allow_private: bool) -> str | None:
    """Why a webhook may not be sent to this address, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if ip.is_link_local:
        return f"{ip} is a link-local address (such as the cloud metadata service 169.254.169.254)"
    if ip.is_loopback:
        return None if allow_private else f"{ip} is a loopback address"
    if any(ip in network for network in PRIVATE_NETWORKS):
        return None if allow_private else f"{ip} is a private network address"
    if ip.is_unspecified or ip.is_multicast:
        return f"{ip} is not a unicast address"
    if (
        ip.is_reserved
        or ip.is_private
        or not ip.is_global
        or getattr(ip, "is_site_local", False)
        or any(ip in network for network in EXTRA_BLOCKED_NET_RANGES)
    ):
        return f"{ip} is a reserved address"
    return None


def url_refusal(url: str, *, allow_private: bool | None = None) -> str | None:
    """Why this URL may not receive webhooks (scheme, host, every address it resolves to), or None."""
    allow_private = private_urls_allowed() if allow_private is None else allow_private
    if any(c.isspace() or not c.isprintable() for c in url):
        return "The URL may not contain spaces or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "This is not a valid URL."
    if parts.scheme not in DEFAULT_PORTS:
        return "Only http:// and https:// URLs can receive webhooks."
    host = parts.hostname
    if not host:
        return "The URL has no host name."
    try:
        addresses = resolve(host, port or DEFAULT_PORTS[parts.scheme])
    except UnsafeURL as error:
        return str(error)
    for ip in addresses:
        refusal = address_refusal(ip, allow_private=allow_private)
        if refusal:
            hint = (
                ""
                if allow_private or "link-local" in refusal
                else " (allowed only with WEBHOOKS_ALLOW_PRIVATE_URLS)"
            )
            return f"Webhooks cannot be sent to {host}: {refusal}{hint}."
    return None


def resolve_ahead(url) -> None:
    """Resolve a URL's host now, before a save opens its write transaction: the save's check reuses the answer."""
    if isinstance(url, str) and url:
        url_refusal(url)


def url_check(url: str) -> None:
    refusal = url_refusal(url)
    if refusal:
        raise UnsafeURL(refusal)


# A save resolves its URL's host before its write transaction opens (the API's before_transaction) and checks
# it again inside: the second check reuses the first answer for this long, so no DNS look-up runs while the
# transaction (SQLite's write lock) is held. Sending never uses this: it resolves and pins the address itself.
RESOLVED_KEPT_SECONDS = 10.0
_resolved: dict[tuple[str, int], tuple[float, list[IPAddress]]] = {}


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address a host name (or IP literal) stands for."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    kept = _resolved.get((host, port))
    if kept is not None and time.monotonic() - kept[0] < RESOLVED_KEPT_SECONDS:
        return kept[1]
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise UnsafeURL(f"The host name {host} could not be resolved; check the URL.") from None
    # Scope ids (fe80::1%eth0) are not part of the address.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if len(_resolved) > 1000:
        _resolved.clear()
    _resolved[(host, port)] = (time.monotonic(), addresses)
    return addresses
