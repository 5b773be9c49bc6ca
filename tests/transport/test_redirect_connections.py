"""A redirect on our own pools: followed on a new connection, without waiting for its body.

Our requests say ``Connection: close``. urllib3 follows a redirect by
reading its body to the end and sending the next request on the same
connection, which RFC 9112 forbids after ``close`` (Node's server answers
such a request with 400) and which waits for as long as the server takes
over that body; requests does the same. A redirect that answers a
``Connection: close`` request is closed instead of drained, on our
connections (``_connect._SocketWatcher``) and through a caller's session
(``_requests._close_redirect``).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ssesync import EventSource
from tests.helpers import WAIT

EVENT = b"data: hello\n\n"


class RedirectingServer:
    """``/start`` redirects to ``/sse`` on a kept-open connection; logs (connection, request)."""

    def __init__(self, redirect_body: str) -> None:
        self.redirect_body = redirect_body
        self.requests: list[tuple[int, str]] = []
        self.release = threading.Event()  # ends a held redirect body
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/start"

    def serve(self) -> None:
        number = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            number += 1
            self._sockets.append(conn)
            thread = threading.Thread(target=self._answer, args=(conn, number), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _answer(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(WAIT)
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(4096)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                line = head.split(b"\r\n", 1)[0].decode()
                self.requests.append((number, line))
                if line.startswith("GET /start"):
                    self._redirect(conn)
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                        b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT)
                    )
        except OSError:
            return

    def _redirect(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /sse\r\n"
        if self.redirect_body == "empty":
            conn.sendall(head + b"Content-Length: 0\r\n\r\n")
        else:  # a chunked body whose end comes only when released
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nmoved\r\n")
            self.release.wait(WAIT)
            conn.sendall(b"0\r\n\r\n")

    def __enter__(self) -> RedirectingServer:
        thread = threading.Thread(target=self.serve, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self._stop.set()
        for sock in self._sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(WAIT)
        for sock in self._sockets:
            sock.close()
        self._listener.close()


@pytest.fixture(params=["empty", "held"])
def redirecting(request: pytest.FixtureRequest) -> Iterator[RedirectingServer]:
    with RedirectingServer(request.param) as server:
        yield server


@pytest.mark.parametrize("transport", ["ours", "session"])
def test_a_redirect_is_followed_on_a_new_connection_at_once(
    redirecting: RedirectingServer, transport: str
) -> None:
    options: dict[str, Any] = {"session": requests.Session()} if transport == "session" else {}
    source = EventSource(redirecting.url, reconnect=False, timeout=(WAIT, WAIT), **options)
    with source:
        event = next(iter(source))
        released = redirecting.release.is_set()  # (set only when the test ends)
    assert event.data == "hello"
    assert not released  # a held redirect body was not waited for
    (first, start), (second, sse) = redirecting.requests
    assert (start, sse) == ("GET /start HTTP/1.1", "GET /sse HTTP/1.1")
    assert first != second  # not sent on the connection we said we would close
