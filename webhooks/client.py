"""The HTTP client deliveries go out with: asyncio (aiohttp), guarded pinned addresses, one deadline for all.

One event loop in its own thread sends every request of a dispatcher. The whole request, from the DNS
look-up through connect, TLS, sending and reading the answer, runs under one `asyncio.timeout`, so a
receiver that trickles its TLS handshake or its answer a byte at a time is cut at the deadline.
"""

import asyncio
import ipaddress
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from webhooks.formats import Rendered
from webhooks.urls_guard import address_refusal, private_urls_allowed

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

    @property
    def succeeded(self) -> bool:
        return not self.error and self.status_code is not None and 200 <= self.status_code < 300


class RefusedAddress(OSError):
    """The receiver's host resolves to an address webhooks may not reach (SSRF guard)."""


class GuardedResolver(AbstractResolver):
    """Resolves a host name and keeps only the addresses the platform may send to.

    aiohttp connects to exactly the addresses the resolver returns (TLS is still verified against the
    name), so the address checked is the address used: DNS rebinding cannot swap in another one.
    """

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET):
        found: list[ResolveResult] = await self._resolver.resolve(host, port, family)
        allowed, refusals = [], []
        for entry in found:
            refusal = _refusal(entry["host"])
            (refusals if refusal else allowed).append(refusal or entry)
        if not allowed:
            raise RefusedAddress(refusals[0] if refusals else f"{host} has no address")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()


def _refusal(host: str) -> str | None:
    ip = ipaddress.ip_address(host.split("%")[0])
    return address_refusal(ip, allow_private=private_urls_allowed())


def session_create(concurrency: int) -> aiohttp.ClientSession:
    """A pooled session: keep-alive connections to receivers are reused across deliveries."""
    connector = aiohttp.TCPConnector(
        limit=max(concurrency, 1), limit_per_host=0, resolver=GuardedResolver(), ttl_dns_cache=10
    )
    # No proxy from the environment (it would connect around the address check); no cookies kept.
    return aiohttp.ClientSession(
        connector=connector, trust_env=False, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
    )


async def send_async(
    session: aiohttp.ClientSession, request: Rendered, *, connect_timeout: float, total_timeout: float
) -> HttpResult:
    """Send one request; never raises: a failure comes back as the result's error."""
    started = time.monotonic()
    status_code, excerpt, retry_after, location, error = None, "", None, None, ""
    try:
        async with asyncio.timeout(total_timeout):
            _literal_address_check(request.url)
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout),
            ) as response:
                status_code = response.status
                retry_after = response.headers.get("Retry-After")
                location = response.headers.get("Location")
                excerpt = await _read_excerpt(response)
    except Exception as exc:  # noqa: BLE001 - every failure is an outcome to record, never a crash
        error = describe(exc, connect_timeout=connect_timeout, total_timeout=total_timeout)
    return HttpResult(
        started=started,
        finished=time.monotonic(),
        status_code=status_code,
        excerpt=excerpt,
        error=error,
        retry_after=retry_after,
        location=location,
    )


def _literal_address_check(url: str) -> None:
    # aiohttp connects to an IP literal without asking the resolver: check it here.
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return
    refusal = _refusal(host)
    if refusal:
        raise RefusedAddress(refusal)


async def _read_excerpt(response: aiohttp.ClientResponse) -> str:
    head = b""
    read = 0
    while read <= DRAIN_BYTES:
        chunk = await response.content.read(8192)
        if not chunk:
            break
        if len(head) < EXCERPT_BYTES:
            head += chunk[: EXCERPT_BYTES - len(head)]
        read += len(chunk)
    else:
        response.close()  # not worth reading on: drop the connection rather than reuse it
    return head.decode("utf-8", errors="replace")


def describe(error: BaseException, *, connect_timeout: float, total_timeout: float) -> str:
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return f"Timed out connecting (after {connect_timeout:g} s)."
    if isinstance(error, TimeoutError):
        return f"Timed out: no complete answer within {total_timeout:g} s."
    refused = error if isinstance(error, RefusedAddress) else getattr(error, "os_error", None)
    if isinstance(refused, RefusedAddress):
        return f"Refused: {refused}."
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error
        text = os.strerror(reason.errno) if reason.errno else (reason.strerror or str(reason))
        return f"Connection failed: {error.host}:{error.port}: {text}"[:1000]
    if isinstance(error, aiohttp.ClientError):
        return f"Request failed: {type(error).__name__}: {error}"[:1000]
    return f"Unexpected error: {type(error).__name__}: {error}"[:1000]


@dataclass
class _Lane:
    """One subscription's requests on the loop: those ready to go, and how many are in flight."""

    cap: int
    ready: deque = field(default_factory=deque)
    in_flight: int = 0


class Sender:
    """An event loop in a thread of its own that sends requests lane by lane, each lane within its cap.

    Requests are handed over per lane (a subscription); as one ends the next of its lane starts at once,
    on the loop, without waiting for the thread that hands them over. `on_result(job, result)` is called
    in the loop's thread as each request ends.
    """

    def __init__(
        self, *, concurrency: int, connect_timeout: float, total_timeout: float,
        on_result: Callable[[Any, HttpResult], None],
    ) -> None:  # fmt: skip
        self._on_result = on_result
        self._concurrency = concurrency
        self._timeouts = {"connect_timeout": connect_timeout, "total_timeout": total_timeout}
        self._lanes: dict[Any, _Lane] = {}
        self._turns: deque = deque()  # lanes waiting for a free slot of the whole sender, in turn
        self._in_flight = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="webhook-sender", daemon=True)
        self._thread.start()
        self._session = asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(timeout=10)

    async def _open(self) -> aiohttp.ClientSession:
        return session_create(self._concurrency)

    def hand(self, batches: dict[Any, tuple[int, list[tuple[Any, Rendered]]]]) -> None:
        """Queue requests: {lane: (its cap, [(job, request), ...])}; one wake-up of the loop for all."""
        self._loop.call_soon_threadsafe(self._queue, batches)

    def withdraw(self, lane: Any) -> list[Any]:
        """Take back the lane's requests that have not started; returns their jobs."""
        return asyncio.run_coroutine_threadsafe(self._withdraw(lane), self._loop).result(timeout=10)

    async def _withdraw(self, lane: Any) -> list[Any]:
        state = self._lanes.get(lane)
        if state is None:
            return []
        jobs = [job for job, _ in state.ready]
        state.ready.clear()
        return jobs

    def _queue(self, batches: dict[Any, tuple[int, list[tuple[Any, Rendered]]]]) -> None:
        for lane, (cap, requests) in batches.items():
            state = self._lanes.setdefault(lane, _Lane(cap))
            state.cap = cap
            state.ready.extend(requests)
            self._pump(lane)

    def _pump(self, lane: Any) -> None:
        state = self._lanes[lane]
        while state.ready and state.in_flight < state.cap:
            if self._in_flight >= self._concurrency:
                if lane not in self._turns:
                    self._turns.append(lane)
                return
            job, request = state.ready.popleft()
            state.in_flight += 1
            self._in_flight += 1
            self._loop.create_task(self._send(lane, job, request))
        if not state.ready and not state.in_flight:
            del self._lanes[lane]

    async def _send(self, lane: Any, job: Any, request: Rendered) -> None:
        try:
            result = await send_async(self._session, request, **self._timeouts)
        finally:
            self._lanes[lane].in_flight -= 1
            self._in_flight -= 1
        self._on_result(job, result)
        self._pump(lane)
        for _ in range(len(self._turns)):  # a slot of the whole sender came free: the next lane in turn
            if self._in_flight >= self._concurrency:
                break
            waiting = self._turns.popleft()
            if waiting in self._lanes:
                self._pump(waiting)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._session.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def send(request: Rendered, *, connect_timeout: float, total_timeout: float) -> HttpResult:
    """Send one request from synchronous code, on a loop and session of its own.

    The loop runs in a thread of its own, so this works even where the calling thread already runs a loop.
    """

    async def once() -> HttpResult:
        async with session_create(1) as session:
            return await send_async(
                session, request, connect_timeout=connect_timeout, total_timeout=total_timeout
            )

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="webhook-send-once") as pool:
        return pool.submit(asyncio.run, once()).result()
