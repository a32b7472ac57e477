"""The HTTP client deliveries go out with: a pooled session per thread, guarded pinned addresses, a hard deadline."""

import contextlib
import ipaddress
import re
import socket
import threading
import time
from dataclasses import dataclass

import requests
from requests_hardened.ip_filter import InvalidIPAddress
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from webhooks.formats import Rendered
from webhooks.urls_guard import GuardedAdapter, address_refusal, private_urls_allowed

EXCERPT_BYTES = 1024
# A longer answer is not read to its end: the connection is dropped instead of kept alive.
DRAIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class HttpResult:
    """What came back (or why nothing did), and when, on the monotonic clock."""

    started: float
    finished: float
    status_code: int | None = None
    excerpt: str = ""
    error: str = ""
    retry_after: str | None = None
    location: str | None = None

    @property
    def duration_ms(self) -> int:
        return max(int((self.finished - self.started) * 1000), 0)


# --- the whole-request deadline ------------------------------------------------------------------
# Connect and read timeouts bound each socket operation, so a receiver that trickles its answer a
# byte at a time could hold a sender for ever. The deadline shuts the socket down when the whole
# request has taken too long, which ends whatever read is waiting on it.

_current = threading.local()


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "Deadline":
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()
        _current.deadline = None
        with self._lock:
            self._connection = None

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.expired:
                self._cut()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            self._cut()

    def _cut(self) -> None:
        sock = getattr(self._connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                sock.shutdown(socket.SHUT_RDWR)


class _DeadlineAware:
    """Connections that tell the sending thread's deadline which socket to cut."""

    def connect(self) -> None:
        super().connect()
        self._attach_deadline()

    def request(self, *args, **kwargs):
        self._attach_deadline()
        return super().request(*args, **kwargs)

    def _attach_deadline(self) -> None:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self)


class _HTTPConnection(_DeadlineAware, HTTPConnection):
    pass


class _HTTPSConnection(_DeadlineAware, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


class DeliveryAdapter(GuardedAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


# --- sessions and sending --------------------------------------------------------------------------

_sessions = threading.local()


def session() -> requests.Session:
    """This thread's session: keep-alive connections to receivers are reused across deliveries."""
    current = getattr(_sessions, "session", None)
    if current is None:
        current = requests.Session()
        current.trust_env = False  # a proxy from the environment would connect around the address check
        current.mount("http://", DeliveryAdapter(https=False))
        current.mount("https://", DeliveryAdapter(https=True))
        _sessions.session = current
    return current


def send(request: Rendered, *, connect_timeout: float, total_timeout: float) -> HttpResult:
    """Send one request; never raises: a failure comes back as the result's error."""
    started = time.monotonic()
    status_code, excerpt, retry_after, location = None, "", None, None
    deadline = Deadline(total_timeout)
    try:
        with deadline:
            response = session().request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                timeout=(connect_timeout, total_timeout),
                allow_redirects=False,
                stream=True,
            )
            with response:
                status_code = response.status_code
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                excerpt = _read_excerpt(response)
        error = f"Timed out: no complete answer within {total_timeout:g} s." if deadline.expired else ""
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome to record, never a crash
        error = _describe(exc, deadline, connect_timeout)
    return HttpResult(
        started=started,
        finished=time.monotonic(),
        status_code=status_code,
        excerpt=excerpt,
        error=error,
        retry_after=retry_after,
        location=location,
    )


def _read_excerpt(response: requests.Response) -> str:
    head = b""
    read = 0
    for chunk in response.iter_content(8192):
        if len(head) < EXCERPT_BYTES:
            head += chunk[: EXCERPT_BYTES - len(head)]
        read += len(chunk)
        if read > DRAIN_BYTES:
            break
    return head.decode("utf-8", errors="replace")


def _describe(error: Exception, deadline: Deadline, connect_timeout: float) -> str:
    # The read timeout is the whole deadline too, so whichever fires first, the deadline has passed.
    if deadline.expired or isinstance(error, requests.ReadTimeout):
        return f"Timed out: no complete answer within {deadline.seconds:g} s."
    if isinstance(error, InvalidIPAddress):
        return f"Refused: {_refusal_reason(str(error))}."
    if isinstance(error, requests.ConnectTimeout):
        return f"Timed out connecting (after {connect_timeout:g} s)."
    if isinstance(error, requests.ConnectionError):
        return f"Connection failed: {_innermost(error)}"
    if isinstance(error, requests.RequestException):
        return f"Request failed: {_innermost(error)}"
    return f"Unexpected error: {type(error).__name__}: {error}"[:1000]


def _refusal_reason(text: str) -> str:
    # requests-hardened's own filter names only the address; ours names the reason.
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return text
    return address_refusal(ip, allow_private=private_urls_allowed()) or f"{ip} is not allowed"


def _innermost(error: Exception) -> str:
    reason = error.args[0] if error.args else error
    reason = getattr(reason, "reason", reason)
    text = str(reason)
    # Drop urllib3's "<urllib3.connection.HTTPConnection object at 0x...>: " prefixes.
    return re.sub(r"<[^>]+>: ", "", text)[:1000]
