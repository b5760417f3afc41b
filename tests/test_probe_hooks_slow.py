"""A receiver cannot hold a webhook worker: an attempt ends within `webhooks_timeout_seconds` in
all, however slowly the answer trickles in, and the answer's body is never read (a receiver
streaming gigabytes neither fills the worker's memory nor holds it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from talktime.config import Settings
from talktime.ops import webhooks
from talktime.ops.clock import now_us

from ops_helpers import make_account


@contextmanager
def tarpit(
    answer: bytes, delay: float = 0.0, head: bytes = b"", then_forever: bytes = b""
) -> Iterator[str]:
    """A loopback HTTP server sending `head` at once, then `answer` one byte every `delay`
    seconds, then `then_forever` again and again; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                conn.sendall(head)
                for byte in answer:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(delay)
                while then_forever and not stop.is_set():
                    conn.sendall(then_forever)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hooks"
    finally:
        stop.set()
        server.close()


def _settings(timeout: float) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url="sqlite://", webhooks_allow_private=True, webhooks_timeout_seconds=timeout
    )


def test_headers_trickled_a_byte_at_a_time_time_out_within_the_attempts_timeout() -> None:
    with tarpit(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000, delay=0.2) as url:
        started = time.monotonic()
        result = webhooks._post(url, b"{}", {}, _settings(1.0))
        took = time.monotonic() - started
    assert result.outcome == "timeout"
    assert result.response_code is None
    assert took < 3, f"the attempt took {took:.1f} s with a 1 s timeout"


def test_a_trickled_body_after_a_2xx_is_a_success_without_waiting_for_it() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
    with tarpit(b"x" * 1000, delay=0.2, head=head) as url:
        started = time.monotonic()
        result = webhooks._post(url, b"{}", {}, _settings(1.0))
        took = time.monotonic() - started
    assert (result.outcome, result.response_code) == ("ok", 200)
    assert took < 0.9


def test_a_receiver_streaming_an_endless_body_is_not_read() -> None:
    head = b"HTTP/1.1 500 Oops\r\nContent-Length: 100000000000\r\n\r\n"
    with tarpit(b"", head=head, then_forever=b"x" * 65536) as url:
        started = time.monotonic()
        result = webhooks._post(url, b"{}", {}, _settings(2.0))
        took = time.monotonic() - started
    assert (result.outcome, result.response_code) == ("http_error", 500)
    assert took < 1.5


def test_a_delivery_to_a_tarpit_logs_a_timeout_and_is_retried(engine: sa.Engine) -> None:
    account = make_account(engine)
    url = engine.url.render_as_string(hide_password=False)
    settings = Settings(  # type: ignore[call-arg]
        database_url=url, webhooks_allow_private=True, webhooks_timeout_seconds=0.5
    )
    with tarpit(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 100, delay=0.1) as hook:
        endpoint = webhooks.create_endpoint(engine, settings, account, hook)
        now = now_us()
        with engine.begin() as conn:
            webhooks.record_event(conn, account, "balance.low", {}, now=now)
        [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
        started = time.monotonic()
        assert webhooks.deliver(engine, settings, delivery["id"], now=now) == "pending"
        assert time.monotonic() - started < 3
    [delivery] = webhooks.list_deliveries(engine, account, endpoint.id)
    [attempt] = delivery["attempt_log"]
    assert attempt["outcome"] == "timeout"
    assert delivery["next_attempt_at"] is not None
