"""close() and reconnect() through a caller's pool manager or session, at every step.

A caller's ``pool_manager=`` or ``session=`` opens connections with
urllib3's own classes, not ours, so their sockets are seen through the
audit events of ``socket.connect`` and ``http.client.send``
(``_connect.sockets_watched``). A close() or reconnect() must then end a
TCP connect that hangs, a TLS handshake the server never answers, and the
wait for a response head, new connection or reused, as promptly as on our
own pools: not at the connect or read timeout.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
import requests
import urllib3

from ssesync import EventSource
from tests.helpers import WAIT, reader_threads

PROMPT = 1.0  # seconds; the timeouts below are far longer
TIMEOUT = (30, 30)

TRANSPORTS: dict[str, Callable[[], dict[str, Any]]] = {
    "session": lambda: {"session": requests.Session()},
    "pool_manager": lambda: {"pool_manager": urllib3.PoolManager(cert_reqs="CERT_NONE")},
}


@pytest.fixture
def silent_head() -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads requests and never answers; and what it has read."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()
    received: list[bytes] = []
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            held.append(conn)
            conn.settimeout(WAIT)
            received.append(conn.recv(65536))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/s", received
    finally:
        stop.set()
        thread.join(WAIT)
        listener.close()
        for conn in held:
            conn.close()


def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def close_promptly(source: EventSource) -> None:
    started = time.monotonic()
    assert source.close()
    assert time.monotonic() - started < PROMPT
    assert reader_threads() == []


@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("step", ["tcp-connect", "tls-handshake"])
def test_close_ends_a_connect_through_a_foreign_pool(
    transport: str, step: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("blackhole" if step == "tcp-connect" else "silent_tls")
    source = EventSource(url, timeout=TIMEOUT, **TRANSPORTS[transport]()).start()
    time.sleep(0.3)  # let the reader block in connect() or the handshake
    close_promptly(source)


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_close_and_reconnect_end_the_wait_for_a_head_through_a_foreign_pool(
    transport: str, silent_head: tuple[str, list[bytes]]
) -> None:
    url, received = silent_head
    errors: list[BaseException] = []
    source = EventSource(url, timeout=TIMEOUT, retry_delay=0, **TRANSPORTS[transport]())
    source.on_error(lambda _source, exc: errors.append(exc))
    source.start()
    until(lambda: len(received) == 1)
    source.reconnect()  # drops the silent connection: a new request at once
    until(lambda: len(received) == 2)
    close_promptly(source)
    assert errors == []  # neither the reconnect nor the close is an error


@pytest.fixture
def answers_once() -> Iterator[tuple[str, list[bytes]]]:
    """A keep-alive server: one short answer, then silence on the same connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    held: list[socket.socket] = []

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        held.append(conn)
        received.append(conn.recv(65536))
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        received.append(conn.recv(65536))  # the next request: never answered

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/s", received
    finally:
        listener.close()
        for conn in held:
            conn.shutdown(socket.SHUT_RDWR)
        thread.join(WAIT)
        for conn in held:
            conn.close()


@pytest.mark.skipif(
    sys.version_info < (3, 10), reason="http.client raises its send audit event from 3.10"
)
def test_close_ends_the_wait_for_a_head_on_a_reused_session_connection(
    answers_once: tuple[str, list[bytes]],
) -> None:
    url, received = answers_once
    session = requests.Session()
    assert session.get(url).text == "ok"  # the connection goes back to the session's pool
    source = EventSource(url, timeout=TIMEOUT, session=session).start()
    until(lambda: len(received) == 2)  # sent on the same connection (no new connect)
    time.sleep(0.05)  # let it block waiting for the status line
    close_promptly(source)
