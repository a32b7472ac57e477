"""A webhook receiver process on 127.0.0.1 that logs each request's receipt time and webhook-id.

python -m tests.receiver --port 8765 --log received.tsv [--arrivals arrived.tsv] [--delay 0.5] [--status 200]

It runs on asyncio with a minimal HTTP/1.1 keep-alive parser, so it costs the machine it shares with the
sender little: a benchmark measures the sender, not the receiver. `--delay` longer than the sender's
deadline makes a receiver that hangs; `--fail-first N` answers `--fail-status` to the first N requests of
each webhook-id (then `--status`), which is how retries are timed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO


class Receiver:
    def __init__(self, log: IO[str], arrivals: IO[str] | None, options: argparse.Namespace) -> None:
        self.log = log
        self.arrivals = arrivals
        self.delay = options.delay
        self.status = options.status
        self.fail_first = options.fail_first
        self.fail_status = options.fail_status
        self.retry_after = options.retry_after
        self.seen: Counter[str] = Counter()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.time()
                headers = _headers(head)
                if self.arrivals is not None:
                    self.arrivals.write(f"{arrived:.6f}\t{headers.get('webhook-id', '')}\n")
                    self.arrivals.flush()
                length = int(headers.get("content-length") or 0)
                if length:
                    await reader.readexactly(length)
                if self.delay:
                    await asyncio.sleep(self.delay)
                message_id = headers.get("webhook-id", "")
                # Logged before the answer: a sender killed while waiting still counts as delivered
                # here, which is exactly the duplicate a receiver must dedupe on webhook-id.
                self.log.write(f"{time.time():.6f}\t{message_id}\n")
                self.log.flush()
                writer.write(self._answer(message_id))
                await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, message_id: str) -> bytes:
        self.seen[message_id] += 1
        status, extra = self.status, ""
        if self.seen[message_id] <= self.fail_first:
            status = self.fail_status
            if self.retry_after is not None:
                extra = f"Retry-After: {self.retry_after}\r\n"
        return (
            f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n{extra}\r\nok".encode()
        )


def _headers(head: bytes) -> dict[str, str]:
    headers = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return headers


async def _main(options: argparse.Namespace) -> None:
    with open(options.log, "a", encoding="utf-8") as log, contextlib.ExitStack() as files:
        arrivals = (
            files.enter_context(open(options.arrivals, "a", encoding="utf-8")) if options.arrivals else None
        )
        receiver = Receiver(log, arrivals, options)
        server = await asyncio.start_server(receiver.serve, "127.0.0.1", options.port, backlog=256)
        print(f"receiver listening on 127.0.0.1:{options.port}", file=sys.stderr, flush=True)
        async with server:
            await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--arrivals", type=Path, default=None, help="also log each request as it arrives")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument(
        "--fail-first", type=int, default=0, help="answer --fail-status this often per webhook-id"
    )
    parser.add_argument("--fail-status", type=int, default=503)
    parser.add_argument("--retry-after", default=None, help="Retry-After header sent with --fail-status")
    options = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(options))
    return 0


if __name__ == "__main__":
    sys.exit(main())
