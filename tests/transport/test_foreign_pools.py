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
from urllib3.util.retry import Retry

from ssesync import EventSource
from ssesync._transport import build_pool_manager
from ssesync.testing import SSEServer
from tests.helpers import WAIT, ScriptedServer, endless_stream, reader_threads, request_lines

PROMPT = 1.0  # seconds; the timeouts below are far longer

#: Python 3.9 raises no http.client.send audit event: there the requests of
#: a caller's pool are not watched (see _watch.WATCHED), as before.
needs_send_event = pytest.mark.skipif(
    sys.version_info < (3, 10), reason="a caller's pool is watched from Python 3.10"
)
TIMEOUT = (30, 30)

TRANSPORTS: dict[str, Callable[[], dict[str, Any]]] = {
    "session": lambda: {"session": requests.Session()},
    "pool_manager": lambda: {"pool_manager": urllib3.PoolManager(cert_reqs="CERT_NONE")},
}


@pytest.fixture
def silent_head() -> Iterator[tuple[str, list[bytes]]]:
    """A server that reads requests and never answers; and the request lines it read."""
    received: list[bytes] = []

    def read_only(conn: socket.socket, _number: int) -> None:
        received.extend(request_lines(conn))

    with ScriptedServer(read_only) as server:
        yield server.base + "/s", received


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


@needs_send_event
@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("step", ["tcp-connect", "tls-handshake"])
def test_close_ends_a_connect_through_a_foreign_pool(
    transport: str, step: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("blackhole" if step == "tcp-connect" else "silent_tls")
    source = EventSource(url, timeout=TIMEOUT, **TRANSPORTS[transport]()).start()
    time.sleep(0.3)  # let the reader block in connect() or the handshake
    close_promptly(source)


@needs_send_event
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
    received: list[bytes] = []

    def answer(conn: socket.socket, _number: int) -> None:
        for line in request_lines(conn):
            received.append(line)
            if len(received) == 1:
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    with ScriptedServer(answer) as server:
        yield server.base + "/s", received


@needs_send_event
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


@needs_send_event
@pytest.mark.parametrize("transport", list(TRANSPORTS))
@pytest.mark.parametrize("then", ["hanging-connect", "silent-head", "interim-then-silence"])
def test_close_is_prompt_after_a_redirect_or_an_interim_head_through_a_foreign_pool(
    transport: str, then: str, blackhole: str
) -> None:
    # The redirect's connection closes, and its descriptor number is often
    # the next connection's; after an interim head the final one is awaited.
    def silent(conn: socket.socket, _number: int) -> None:
        for line in request_lines(conn):
            if then == "interim-then-silence" and line.startswith(b"GET /s "):
                conn.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
            elif line.startswith(b"GET /r "):
                target = blackhole if then == "hanging-connect" else "/elsewhere"
                conn.sendall(
                    b"HTTP/1.1 307 Moved\r\nLocation: %s\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n" % target.encode()
                )
                return

    path = "/s" if then == "interim-then-silence" else "/r"
    with ScriptedServer(silent) as server:
        source = EventSource(server.base + path, timeout=TIMEOUT, **TRANSPORTS[transport]())
        source.start()
        time.sleep(0.5)  # past the redirect or the interim head, into the wait
        close_promptly(source)


@needs_send_event
def test_close_ends_a_sessions_connect_retries_at_once(blackhole: str) -> None:
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(max_retries=Retry(connect=3, backoff_factor=0))
    session.mount("http://", adapter)
    source = EventSource(blackhole, timeout=(3, 30), session=session).start()
    time.sleep(0.3)  # the first connect hangs
    close_promptly(source)  # and the retries that urllib3 would make fail at once


def test_the_end_of_a_reused_body_leaves_its_pooled_connection_to_others() -> None:
    # keep_connection=True: at the end of a body with a length urllib3 puts
    # the connection back in our shared pool inside the read, while the last
    # event's handler still runs; a reconnect() then must not reach it.
    body = b"data: last\n\n"

    def answer(conn: socket.socket, _number: int) -> None:
        for line in request_lines(conn):
            if line.startswith(b"GET /s "):
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                time.sleep(0.5)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    pool = build_pool_manager(maxsize=4)  # ours, shared as an SSEClient's is
    in_handler, go_on = threading.Event(), threading.Event()
    answers: list[bytes] = []

    def last(_event: Any) -> None:
        if not in_handler.is_set():
            in_handler.set()
            go_on.wait(WAIT)

    with ScriptedServer(answer) as server:
        source = EventSource(server.base + "/s", keep_connection=True, pool_manager=pool)
        source.on("message", last)
        try:
            source.start()
            assert in_handler.wait(WAIT)
            asking = threading.Thread(
                target=lambda: answers.append(
                    pool.request("GET", server.base + "/slow", retries=False).data
                )
            )
            asking.start()
            time.sleep(0.2)  # the other request waits on the pooled connection
            source.reconnect()
            go_on.set()
            asking.join(WAIT)
        finally:
            go_on.set()
            source.close()
    assert answers == [b"ok"]
