"""The delivery HTTP client: a hard whole-request deadline, answer excerpts, errors as outcomes."""

import socket
import threading
import time
from contextlib import contextmanager

import pytest

from webhooks.client import EXCERPT_BYTES, send
from webhooks.formats import Rendered


@contextmanager
def trickling_server(first_line: bytes, drip: bytes, every: float = 0.1, drips: int = 100):
    """A raw socket server answering one request a few bytes at a time, never finishing quickly."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            try:
                connection.sendall(first_line)
                for _ in range(drips):
                    if stop.wait(every):
                        return
                    connection.sendall(drip)
            except OSError:
                return  # the client cut the connection, as it should

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()
        thread.join(timeout=5)


def post(url: str, **timeouts) -> object:
    return send(Rendered("POST", url, {"Content-Type": "application/json"}, b"{}"), **timeouts)


def test_headers_trickled_byte_by_byte_are_cut_off_at_the_whole_request_deadline():
    # Each drip arrives well within the read timeout, so only a total deadline can stop it.
    with trickling_server(b"HTTP/1.1 200 OK\r\n", b"X-Slow: 1\r\n") as url:
        started = time.monotonic()
        result = post(url, connect_timeout=1, total_timeout=0.6)

    assert 0.5 <= time.monotonic() - started < 1.5
    assert result.error == "Timed out: no complete answer within 0.6 s."


def test_a_body_trickled_forever_is_cut_off_at_the_whole_request_deadline():
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
    with trickling_server(head, b"x") as url:
        started = time.monotonic()
        result = post(url, connect_timeout=1, total_timeout=0.6)

    assert time.monotonic() - started < 1.5
    assert result.error.startswith("Timed out")


def test_only_the_first_kilobyte_of_an_answer_is_kept(httpserver):
    httpserver.expect_request("/big").respond_with_data("é" * 5000)

    result = post(httpserver.url_for("/big"), connect_timeout=1, total_timeout=5)

    assert result.status_code == 200 and result.error == ""
    assert len(result.excerpt.encode()) <= EXCERPT_BYTES
    assert result.excerpt.startswith("éé")


def test_a_refused_connection_is_an_error_not_an_exception():
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again before the request

    result = post(f"http://127.0.0.1:{port}/", connect_timeout=1, total_timeout=2)

    assert result.status_code is None
    assert result.error.startswith("Connection failed:") and "refused" in result.error.lower()


@pytest.mark.parametrize("url", ["http://169.254.169.254/", "http://[fe80::1]/"])
def test_link_local_addresses_are_refused_before_connecting(url):
    result = post(url, connect_timeout=1, total_timeout=2)

    assert result.error.startswith("Refused:") and "link-local" in result.error
    assert result.duration_ms < 1000


def test_a_server_that_accepts_tcp_and_never_finishes_tls_is_cut_at_the_whole_request_deadline():
    # The connect timeout is longer than the deadline: only the deadline can end a stalled handshake.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        started = time.monotonic()
        result = post(f"https://127.0.0.1:{port}/hook", connect_timeout=5, total_timeout=0.6)
        elapsed = time.monotonic() - started

    assert 0.5 <= elapsed < 1.5
    assert result.status_code is None and result.error == "Timed out: no complete answer within 0.6 s."


def test_an_address_refused_by_the_guard_is_never_connected_to(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False

    result = post("http://127.0.0.1:9/hook", connect_timeout=1, total_timeout=2)

    assert result.status_code is None and result.error == "Refused: 127.0.0.1 is a loopback address."


def test_a_name_resolving_to_a_refused_address_is_never_connected_to(settings):
    settings.WEBHOOKS_ALLOW_PRIVATE_URLS = False

    result = post("http://localhost:9/hook", connect_timeout=1, total_timeout=2)

    assert result.status_code is None and result.error.startswith("Refused: ")
    assert "loopback" in result.error


def test_send_works_from_code_that_already_runs_an_event_loop(httpserver):
    import asyncio

    httpserver.expect_request("/hook").respond_with_data("ok")

    async def caller():
        return post(httpserver.url_for("/hook"), connect_timeout=1, total_timeout=2)

    results = []
    # A thread of its own runs the caller's loop (the test runner's thread may already run one).
    thread = threading.Thread(target=lambda: results.append(asyncio.run(caller())))
    thread.start()
    thread.join(timeout=10)
    assert [result.status_code for result in results] == [200]
