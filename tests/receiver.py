"""A webhook receiver process on 127.0.0.1 that logs each request's receipt time and webhook-id.

python -m tests.receiver --port 8765 --log received.tsv [--delay 0.5] [--status 200]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO


class ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    # The sender opens up to WEBHOOKS_SEND_CONCURRENCY connections per worker at once.
    request_queue_size = 256

    def __init__(self, port: int, log: IO[str], delay: float, status: int) -> None:
        super().__init__(("127.0.0.1", port), Handler)
        self.log = log
        self.log_lock = threading.Lock()
        self.delay = delay
        self.status = status


class Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the sender's connection pool expects.
    protocol_version = "HTTP/1.1"
    server: ReceiverServer

    def do_POST(self) -> None:
        self._receive()

    def do_GET(self) -> None:
        self._receive()

    def _receive(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.server.delay:
            time.sleep(self.server.delay)
        # Logged before the answer: a sender killed while waiting still counts as delivered here,
        # which is exactly the duplicate a receiver must dedupe on webhook-id.
        line = f"{time.time():.6f}\t{self.headers.get('webhook-id', '')}\n"
        with self.server.log_lock:
            self.server.log.write(line)
            self.server.log.flush()
        body = b"ok"
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one line per request in the log file is all the tests read


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds to wait before answering")
    parser.add_argument("--status", type=int, default=200)
    options = parser.parse_args(argv)
    with open(options.log, "a", encoding="utf-8") as log:
        server = ReceiverServer(options.port, log, options.delay, options.status)
        print(f"receiver listening on 127.0.0.1:{options.port}", file=sys.stderr, flush=True)
        try:
            server.serve_forever(poll_interval=0.1)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
