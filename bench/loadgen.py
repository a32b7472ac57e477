"""An HTTP load generator on raw asyncio sockets: closed loop (throughput) and open loop (latency at a rate).

Run as its own process so the load does not share a GIL with the server or the driver:
  python bench/loadgen.py JOB.json  ->  prints one JSON line of results
The job names the URL, the API key, the codes to redeem (one request each) and the mode.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

try:
    import uvloop
except ImportError:  # a development install has it; the figures are only higher without
    uvloop = None


@dataclass
class Results:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0

    def summary(self) -> dict:
        ordered = sorted(self.latencies)
        elapsed = self.finished - self.started
        return {
            "requests": len(ordered),
            "elapsed_s": round(elapsed, 3),
            "per_second": round(self.statuses[201] / elapsed, 1) if elapsed else 0.0,
            "statuses": dict(self.statuses),
            "errors": dict(self.errors),
            "p50_ms": percentile(ordered, 0.50),
            "p90_ms": percentile(ordered, 0.90),
            "p99_ms": percentile(ordered, 0.99),
            "max_ms": round(ordered[-1] * 1000, 2) if ordered else None,
        }


def percentile(ordered: list[float], fraction: float) -> float | None:
    if not ordered:
        return None
    return round(ordered[min(int(len(ordered) * fraction), len(ordered) - 1)] * 1000, 2)


class Connection:
    """One keep-alive HTTP/1.1 connection; reopened when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, payload: bytes) -> int:
        for attempt in range(2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(payload)
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                # A keep-alive connection the server had just closed: the request never ran, send it again.
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> int:
        assert self.reader is not None
        status_line = await self.reader.readuntil(b"\r\n")
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split(b" ", 2)[1])
        length, keep_alive, chunked = 0, True, False
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and value == b"close":
                keep_alive = False
            elif name == b"transfer-encoding" and value == b"chunked":
                chunked = True
        if chunked:
            await self._skip_chunks()
        else:
            await self.reader.readexactly(length)
        if not keep_alive:
            self.close()
        return status

    async def _skip_chunks(self) -> None:
        """A body without Content-Length (a keep-alive threaded worker sends such): size lines, then data."""
        assert self.reader is not None
        while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await self.reader.readexactly(size + 2)
        while await self.reader.readuntil(b"\r\n") != b"\r\n":
            pass  # trailers

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def payloads(job: dict) -> list[bytes]:
    """One POST per code: the same JSON body a POS would send."""
    url = urlsplit(job["url"])
    head = (
        f"POST {url.path} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {job['api_key']}\r\n"
        "Content-Type: application/json\r\nConnection: keep-alive\r\n"
    )
    result = []
    for code in job["codes"]:
        body = json.dumps(
            {"code": code, "order_id": f"order-{code}", "order_value": "50.00", "currency": "AUD"}
        ).encode()
        result.append(head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return result


async def one(connection: Connection, payload: bytes, since: float, results: Results) -> None:
    try:
        status = await connection.request(payload)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        connection.close()
        results.errors[type(exc).__name__] += 1
        return
    results.statuses[status] += 1
    results.latencies.append(time.perf_counter() - since)


async def closed_loop(job: dict) -> Results:
    """`concurrency` users, each sending its next request as soon as the last one answered."""
    url = urlsplit(job["url"])
    queue = payloads(job)
    results = Results(started=time.perf_counter())
    deadline = results.started + job["duration"]
    position = iter(range(len(queue)))

    async def user() -> None:
        connection = Connection(url.hostname, url.port)
        for index in position:
            if time.perf_counter() > deadline:
                break
            await one(connection, queue[index], time.perf_counter(), results)
        connection.close()

    await asyncio.gather(*(user() for _ in range(job["concurrency"])))
    results.finished = time.perf_counter()
    return results


async def open_loop(job: dict) -> Results:
    """Requests at a constant `rate`, whatever the answers; latency counts from the planned send time,
    so a stalled server shows up in the figures (no coordinated omission)."""
    url = urlsplit(job["url"])
    queue = payloads(job)[: int(job["rate"] * job["duration"])]
    idle: list[Connection] = []
    results = Results(started=time.perf_counter())
    tasks = []

    async def send(payload: bytes, planned: float) -> None:
        connection = idle.pop() if idle else Connection(url.hostname, url.port)
        await one(connection, payload, planned, results)
        idle.append(connection)

    for index, payload in enumerate(queue):
        planned = results.started + index / job["rate"]
        delay = planned - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(payload, planned)))
    await asyncio.gather(*tasks)
    results.finished = time.perf_counter()
    for connection in idle:
        connection.close()
    return results


def main(path: str) -> int:
    with open(path) as file:
        job = json.load(file)
    runner = open_loop if job["mode"] == "open" else closed_loop
    # uvloop's sockets and transports cost about half of asyncio's: the generator shares the cores it measures.
    results = uvloop.run(runner(job)) if uvloop else asyncio.run(runner(job))
    print(json.dumps(results.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
