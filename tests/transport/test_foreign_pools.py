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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest
import requests
import urllib3

from ssesync import EventSource
from ssesync._transport import build_pool_manager
from ssesync.testing import SSEServer
from tests.helpers import WAIT, endless_stream, reader_threads

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


@pytest.mark.parametrize("transport", list(TRANSPORTS))
def test_a_default_socket_timeout_leaves_a_foreign_pools_blocking_sockets_blocking(
    transport: str, sse_server: SSEServer
) -> None:
    # The registered duplicate of a socket shares its open file, and with it
    # the non-blocking flag a new socket object takes from the default timeout.
    sse_server.route("/s", sse_server.events([{"data": "hi"}]))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(30)
    try:
        source = EventSource(
            sse_server.url_for("/s"), reconnect=False, timeout=None, **TRANSPORTS[transport]()
        )
        with source:
            assert [event.data for event in source] == ["hi"]
    finally:
        socket.setdefaulttimeout(previous)


class _Origin(BaseHTTPRequestHandler):
    """``/redirect``: a kept-alive 307 to the stream elsewhere; ``/slow``: a slow answer."""

    protocol_version = "HTTP/1.1"
    stream_url = ""

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(307)
            self.send_header("Location", self.stream_url)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            time.sleep(0.5)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")


@pytest.mark.parametrize("transport", [*TRANSPORTS, "ours"])
def test_reconnect_leaves_a_redirects_pooled_connection_to_others(
    transport: str, sse_server: SSEServer
) -> None:
    # keep_connection=True: the redirect's connection goes back to the shared
    # pool, where another thread's request takes it. The source's reconnect()
    # must drop its stream only, not that connection. ("ours": a pool of
    # ssesync's own, shared as an SSEClient or a Hub shares theirs.)
    sse_server.route("/stream", lambda conn: endless_stream(conn))
    handler = type("Origin", (_Origin,), {"stream_url": sse_server.url_for("/stream")})
    origin = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    origin.daemon_threads = True
    serving = threading.Thread(target=origin.serve_forever, daemon=True)
    serving.start()
    base = f"http://127.0.0.1:{origin.server_address[1]}"
    if transport == "ours":
        shared: dict[str, Any] = {"pool_manager": build_pool_manager(maxsize=4)}
    else:
        shared = TRANSPORTS[transport]()

    def other() -> str:
        if transport == "session":
            return str(shared["session"].get(f"{base}/slow", timeout=WAIT).text)
        answer = shared["pool_manager"].request(
            "GET", f"{base}/slow", timeout=WAIT, retries=False  # (a retry would hide it)
        )
        return str(answer.data.decode())
    opened = threading.Event()
    source = EventSource(f"{base}/redirect", keep_connection=True, timeout=TIMEOUT, **shared)
    source.on_open(lambda _source: opened.set())
    answers: list[str] = []
    try:
        source.start()
        assert opened.wait(WAIT)
        asking = threading.Thread(target=lambda: answers.append(other()))
        asking.start()
        time.sleep(0.2)  # the other request waits for /slow on the pooled connection
        source.reconnect()
        asking.join(WAIT)
    finally:
        source.close()
        origin.shutdown()
        origin.server_close()
        serving.join(WAIT)
    assert answers == ["ok"]
