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
from tests.helpers import WAIT, ScriptedServer, request_lines

EVENT = b"data: hello\n\n"


class RedirectingServer(ScriptedServer):
    """``/start`` redirects to ``/sse`` on a kept-open connection; logs (connection, request)."""

    def __init__(self, redirect_body: str) -> None:
        super().__init__(self._converse)
        self.redirect_body = redirect_body
        self.requests: list[tuple[int, str]] = []
        self.release = threading.Event()  # ends a held redirect body

    @property
    def url(self) -> str:
        return self.base + "/start"

    def _converse(self, conn: socket.socket, number: int) -> None:
        for line in request_lines(conn):
            self.requests.append((number, line.decode()))
            if line.startswith(b"GET /start"):
                self._redirect(conn)
            else:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(EVENT), EVENT)
                )

    def _redirect(self, conn: socket.socket) -> None:
        head = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: /sse\r\n"
        if self.redirect_body == "empty":
            conn.sendall(head + b"Content-Length: 0\r\n\r\n")
        else:  # a chunked body whose end comes only when released
            conn.sendall(head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nmoved\r\n")
            self.release.wait(WAIT)
            conn.sendall(b"0\r\n\r\n")

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        super().__exit__(*exc_info)


@pytest.fixture(params=["empty", "held"])
def redirecting(request: pytest.FixtureRequest) -> Iterator[RedirectingServer]:
    server = RedirectingServer(request.param)
    with server:
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
