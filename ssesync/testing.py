"""A threaded loopback Server-Sent Events server for tests.

SSE clients are mostly about failure handling: reconnecting after a dropped
connection, resuming with ``Last-Event-ID``, surviving odd chunk boundaries.
Those cases need a server whose every byte and every disconnect is under the
test's control, so this module implements HTTP/1.1 by hand on plain sockets
instead of going through :mod:`http.server`.  Each accepted connection gets its
own thread that reads one request and passes a :class:`StreamConnection` to a
test-supplied handler; blocking code in handlers is therefore natural and one
slow stream never delays another.  Handlers often wait (``pause``, ``stall``)
for far longer than a test lasts, so :meth:`SSEServer.stop` sets a shared
:class:`threading.Event` that those waits watch and shuts every client socket
down, which wakes anything blocked in ``recv``/``send``; only then can it join
every thread and guarantee none outlives the server.  :meth:`StreamConnection.drop`
sets ``SO_LINGER`` to zero before closing because that makes the kernel send a
TCP RST instead of an orderly FIN: the client then sees a genuine connection
reset, which is the failure a clean close cannot simulate.
"""

from __future__ import annotations

import contextlib
import http
import re
import socket
import ssl
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Literal, TypedDict
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "EventSpec",
    "Handler",
    "Headers",
    "RecordedRequest",
    "SSEServer",
    "StreamConnection",
    "Then",
    "format_event",
]

Handler = Callable[["StreamConnection"], object]
"""A route handler: called once per connection, in that connection's thread."""

Then = Literal["end", "drop", "stall", "half_close"]
"""How a shortcut handler finishes after its last piece (see :class:`StreamConnection`)."""

_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_POLL = 0.1  # seconds between liveness checks while waiting on a client
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINGER_FORMAT = "HH" if sys.platform == "win32" else "ii"


class EventSpec(TypedDict, total=False):
    """The keys :meth:`SSEServer.events` accepts: the keyword arguments of :func:`format_event`.

    ``events()`` takes plain mappings so that untyped ``dict`` literals in
    tests type-check; annotate with this type to have mypy check the keys.
    """

    data: str
    event: str
    id: str
    retry: int
    comment: str


def format_event(
    data: str | None = None,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes:
    """Encode one SSE block, ending with the blank line that dispatches it.

    Every kind of line break in *data* or *comment* starts a new line, because
    a lone ``\\r`` would otherwise end the line on the wire and silently turn
    the rest of the text into an unknown field.  ``event`` and ``id`` cannot be
    split that way, so line breaks in them are rejected.
    """
    lines: list[str] = []
    if comment is not None:
        lines += [f": {line}" if line else ":" for line in _LINE_BREAK.split(comment)]
    for name, value in (("event", event), ("id", id)):
        if value is not None:
            if _LINE_BREAK.search(value):
                raise ValueError(f"SSE {name} must not contain a line break: {value!r}")
            lines.append(_field(name, value))
    if retry is not None:
        lines.append(f"retry: {retry}")
    if data is not None:
        lines += [_field("data", line) for line in _LINE_BREAK.split(data)]
    return "".join(line + "\n" for line in lines).encode("utf-8") + b"\n"


def _field(name: str, value: str) -> str:
    return f"{name}: {value}" if value else f"{name}:"


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers.

    Header names are case-insensitive in HTTP, so tests should not depend on
    how a client spells ``Last-Event-ID``.  A repeated header yields its first
    value, as with :class:`email.message.Message`.
    """

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple(fields)
        self._first: dict[str, tuple[str, str]] = {}
        for name, value in self._fields:
            self._first.setdefault(name.lower(), (name, value))

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._first.values())

    def __len__(self) -> int:
        return len(self._first)

    def __repr__(self) -> str:
        return f"Headers({list(self._fields)!r})"


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it, kept so tests can assert on it.

    ``path`` is the raw (still percent-encoded) path without the query, which
    is also what routes are matched against.  Header values are decoded as
    UTF-8 when valid (SSE clients send non-ASCII ``Last-Event-ID`` that way)
    and as Latin-1 otherwise.
    """

    method: str
    """The request method, e.g. ``"GET"``."""
    path: str
    """The path without the query string, still percent-encoded."""
    query: dict[str, list[str]]
    """The query string, parsed: each name with all its values."""
    target: str
    """The request target exactly as sent (path and query)."""
    headers: Headers
    """The request headers, looked up case-insensitively."""
    body: bytes
    """The request body (empty when there was none)."""
    head: bytes = b""
    """The request line and header lines exactly as received (CRLF-separated)."""

    @property
    def last_event_id(self) -> str | None:
        """The ``Last-Event-ID`` header a reconnecting client sent, if any."""
        return self.headers.get("Last-Event-ID")


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _readline(rfile: BinaryIO, limit: int = _MAX_HEAD) -> bytes:
    line = rfile.readline(limit + 1)
    if len(line) > limit:
        raise _BadRequest(431, "request head too large")
    if not line.endswith(b"\n"):
        raise ConnectionAbortedError("client closed the connection mid-request")
    return line.rstrip(b"\r\n")


def _read_exact(rfile: BinaryIO, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) < size:
        raise ConnectionAbortedError("client closed the connection mid-request")
    return data


def _decode_header(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _read_request(rfile: BinaryIO) -> RecordedRequest:
    request_line = _readline(rfile)
    parts = request_line.split()
    if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
        raise _BadRequest(400, "malformed request line")
    method, target = parts[0].decode("latin-1"), parts[1].decode("latin-1")
    used = len(request_line)
    raw = [request_line]
    fields: list[tuple[str, str]] = []
    while line := _readline(rfile, _MAX_HEAD - used):
        raw.append(line)
        used += len(line) + 2
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip():
            raise _BadRequest(400, "malformed header line")
        fields.append((name.decode("latin-1"), _decode_header(value.strip())))
    headers = Headers(fields)
    url = urlsplit(target)
    return RecordedRequest(
        method=method,
        path=url.path or "/",
        query=parse_qs(url.query, keep_blank_values=True),
        target=target,
        headers=headers,
        body=_read_body(rfile, headers),
        head=b"\r\n".join(raw),
    )


def _read_body(rfile: BinaryIO, headers: Headers) -> bytes:
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = bytearray()
        while size := _chunk_size(_readline(rfile, 1024)):
            if len(body) + size > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
            body += _read_exact(rfile, size)
            if _readline(rfile, 2):
                raise _BadRequest(400, "missing CRLF after chunk data")
        while _readline(rfile):  # skip trailer fields
            pass
        return bytes(body)
    length = headers.get("Content-Length")
    if length is None:
        return b""
    if not re.fullmatch(r"[0-9]+", length):
        raise _BadRequest(400, "invalid Content-Length")
    if int(length) > _MAX_BODY:
        raise _BadRequest(413, "request body too large")
    return _read_exact(rfile, int(length))


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip()
    if not re.fullmatch(rb"[0-9A-Fa-f]+", size):
        raise _BadRequest(400, "invalid chunk size")
    return int(size, 16)


def _head(status: int, defaults: list[tuple[str, str]], headers: Mapping[str, str] | None) -> bytes:
    """Build a response head; headers given by the test replace same-named defaults."""
    extra = dict(headers or {})
    given = {name.lower() for name in extra}
    try:
        reason = http.HTTPStatus(status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in defaults if name.lower() not in given]
    lines += [f"{name}: {value}" for name, value in extra.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _complete_response(status: int, body: bytes, headers: Mapping[str, str] | None) -> bytes:
    defaults = [("Connection", "close")]
    if status != 204 and not 100 <= status < 200:  # RFC 9110: these carry no length
        defaults.insert(0, ("Content-Length", str(len(body))))
    return _head(status, defaults, headers) + body


def _shutdown(sock: socket.socket, how: int) -> None:
    # Call the plain-socket method even for TLS sockets: SSLSocket.shutdown()
    # also discards the TLS state, which would break the owning thread's reads.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, how)


_DISCONNECTS = (ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Channel:
    """An accepted socket that stop() may interrupt from another thread.

    The lock makes "shut down from stop()" and "close from the owner" mutually
    exclusive, so stop() never touches a file descriptor number that was
    already closed and possibly reused by an unrelated socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self._closed = False

    def start_tls(self, context: ssl.SSLContext) -> None:
        with self._lock:
            tls = context.wrap_socket(self.sock, server_side=True, do_handshake_on_connect=False)
            self.sock = tls
        tls.do_handshake()

    def interrupt(self) -> None:
        with self._lock:
            if not self._closed:
                _shutdown(self.sock, socket.SHUT_RDWR)

    def close(self, *, reset: bool = False) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if reset:
                with contextlib.suppress(OSError):
                    linger = struct.pack(_LINGER_FORMAT, 1, 0)
                    self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.sock.close()


class StreamConnection:
    """The server side of one request, handed to a route handler.

    Methods raise the usual socket errors once the client is gone or the
    server is stopping; the server swallows those when they escape the
    handler, so handlers need no error handling of their own.
    """

    def __init__(
        self, channel: _Channel, request: RecordedRequest, stopping: threading.Event
    ) -> None:
        #: The request this connection answers.
        self.request = request
        self._channel = channel
        self._stopping = stopping
        self._lock = threading.RLock()
        self._headers_sent = False
        self._chunked = False
        self._finished = False

    def send_headers(
        self,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        chunked: bool = True,
        content_type: str | None = "text/event-stream",
        first: bytes = b"",
    ) -> None:
        """Send the status line and headers of a streaming response.

        *first*, if given, is body bytes sent exactly as they are in the same
        write as the head, as servers that flush them together do.

        Without chunking the body has no length and ends when the socket
        closes, the framing old SSE servers use.  Defaults (``Content-Type``,
        ``Cache-Control: no-cache``, ``Transfer-Encoding``, ``Connection:
        close``) are left out when *headers* names them, so tests can send
        unusual values.
        """
        defaults = [] if content_type is None else [("Content-Type", content_type)]
        defaults.append(("Cache-Control", "no-cache"))
        if chunked:
            defaults.append(("Transfer-Encoding", "chunked"))
        defaults.append(("Connection", "close"))
        with self._lock:
            self._check_open()
            if self._headers_sent:
                raise RuntimeError("response headers were already sent")
            self._headers_sent = True
            self._chunked = chunked
            self._channel.sock.sendall(_head(status, defaults, headers) + first)

    def send(self, data: bytes | str) -> None:
        """Send one piece of body: one chunk when chunked, so tests own chunk boundaries.

        Default headers are sent first if the handler has not sent any.  An
        empty piece is skipped because an empty chunk would end the body.
        """
        payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        with self._lock:
            if not self._headers_sent:
                self.send_headers()
            self._check_open()
            if payload:
                if self._chunked:
                    payload = b"%X\r\n%s\r\n" % (len(payload), payload)
                self._channel.sock.sendall(payload)

    def event(
        self,
        data: str | None = None,
        *,
        event: str | None = None,
        id: str | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None:
        """Send one event (see :func:`format_event`) as a single piece."""
        self.send(format_event(data, event=event, id=id, retry=retry, comment=comment))

    def pause(self, seconds: float) -> None:
        """Sleep, returning early when the server stops so stop() never waits on it."""
        self._stopping.wait(seconds)

    def send_interim(self, status: int = 103, headers: Mapping[str, str] | None = None) -> None:
        """Send an interim ``1xx`` response (e.g. ``103 Early Hints``) before the real one."""
        if not 100 <= status < 200:
            raise ValueError(f"an interim response has a 1xx status, not {status}")
        with self._lock:
            self._check_open()
            if self._headers_sent:
                raise RuntimeError("response headers were already sent")
            self._channel.sock.sendall(_head(status, [], headers))

    def end(self, last: bytes | str = b"", *, keep_open: bool = False) -> None:
        """Finish the body cleanly (chunk terminator when chunked) and close.

        :param last: a final piece sent in the same write as the terminator,
            as servers that write the last event and end the response at once
            do (Node's ``res.end(data)``).
        :param keep_open: keep the connection open after the body, as a
            keep-alive server does, until the client closes it (or the server
            stops): a client must see the end of a chunked body by itself.
        """
        payload = last.encode("utf-8") if isinstance(last, str) else bytes(last)
        with self._lock:
            if not self._headers_sent:
                self.send_headers()
            self._check_open()
            self._finished = True
            try:
                if self._chunked:
                    if payload:
                        payload = b"%X\r\n%s\r\n" % (len(payload), payload)
                    payload += b"0\r\n\r\n"
                if payload:
                    self._channel.sock.sendall(payload)
                if keep_open:
                    self._wait_for_peer_close()
            finally:
                self._channel.close()

    def respond(
        self, status: int = 200, body: bytes | str = b"", headers: Mapping[str, str] | None = None
    ) -> None:
        """Send a complete non-streaming response with ``Content-Length`` and close."""
        payload = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        with self._lock:
            self._check_open()
            if self._headers_sent:
                raise RuntimeError("response headers were already sent")
            self._headers_sent = self._finished = True
            try:
                self._channel.sock.sendall(_complete_response(status, payload, headers))
            finally:
                self._channel.close()

    def drop(self) -> None:
        """Abort the connection with a TCP RST, leaving the body unterminated."""
        with self._lock:
            self._finished = True
            self._channel.close(reset=True)

    def half_close(self) -> None:
        """Shut down the sending side (the client sees EOF), then wait for the client to leave.

        On TLS this is a bare TCP shutdown without ``close_notify``.
        """
        with self._lock:
            self._check_open()
            self._finished = True
            _shutdown(self._channel.sock, socket.SHUT_WR)
        self._wait_for_peer_close()
        self._channel.close()

    def stall(self) -> None:
        """Send nothing more until the client closes or the server stops."""
        self._wait_for_peer_close()

    def closed_by_peer(self) -> bool:
        """Whether the client has gone away (EOF or reset), without blocking.

        Any bytes the client sent after its request are read and discarded.
        """
        return self._peer_gone(0.0)

    def _wait_for_peer_close(self) -> None:
        while not self._stopping.is_set() and not self._peer_gone(_POLL):
            pass

    def _peer_gone(self, timeout: float) -> bool:
        sock = self._channel.sock
        try:
            sock.settimeout(timeout)
            try:
                return sock.recv(4096) == b""
            finally:
                sock.settimeout(None)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:  # reset, or our own socket already closed
            return True

    def _check_open(self) -> None:
        if self._finished:
            raise RuntimeError(
                "the response is already finished (end, drop, respond or half_close was called)"
            )

    def _finish(self) -> None:
        """Complete whatever the handler left open; a missing response becomes a visible 500."""
        with self._lock:
            if self._finished:
                return
            if self._headers_sent:
                self.end()
            else:
                body = b"test handler returned without sending a response\n"
                self.respond(500, body, {"Content-Type": "text/plain"})


_THEN: dict[str, Callable[[StreamConnection], None]] = {
    "end": StreamConnection.end,
    "drop": StreamConnection.drop,
    "stall": StreamConnection.stall,
    "half_close": StreamConnection.half_close,
}


def _check_then(then: str) -> None:
    if then not in _THEN:
        raise ValueError(f"then must be one of {sorted(_THEN)}, not {then!r}")


def _not_found(conn: StreamConnection) -> None:
    conn.respond(404, b"no route for this path\n", {"Content-Type": "text/plain"})


class SSEServer:
    """Loopback HTTP/1.1 server whose routes run test-written stream handlers.

    Every response is closed after one request, so each reconnect by a client
    is a new connection a test can count and steer with per-route handlers.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.host = host
        self._requested_port = port
        self._ssl_context = ssl_context
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._port = 0
        self._routes: dict[str, list[Handler]] = {}
        self._route_hits: dict[str, int] = {}
        self._requests: list[RecordedRequest] = []
        self._errors: list[BaseException] = []
        self._live: dict[_Channel, threading.Thread] = {}
        self._serial = 0

    def start(self) -> SSEServer:
        """Bind and start accepting in a daemon thread; returns ``self`` for chaining."""
        if self._listener is not None:
            raise RuntimeError("an SSEServer can only be started once")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server(
            (self.host, self._requested_port), family=family, backlog=128
        )
        # Linux wakes accept() when stop() shuts the listener down; the timeout
        # bounds the wait on platforms where it does not.
        listener.settimeout(0.25)
        self._listener = listener
        self._port = listener.getsockname()[1]
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"ssesync-testserver-accept-{self._port}", daemon=True
        )
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, wake and disconnect every handler, and join all server threads.

        Raises :class:`RuntimeError` if a thread is still alive after *timeout*,
        which means a handler blocks in something other than this module's
        waits (use :meth:`StreamConnection.pause` instead of ``time.sleep``).
        """
        listener, acceptor = self._listener, self._acceptor
        if listener is None or acceptor is None or self._stopping.is_set():
            return
        deadline = time.monotonic() + timeout
        self._stopping.set()
        _shutdown(listener, socket.SHUT_RDWR)
        acceptor.join(timeout)
        listener.close()
        with self._cond:
            live = list(self._live.items())
        for channel, _ in live:
            channel.interrupt()
        # A handler may stop the server to simulate it going away; it cannot join itself.
        others = [thread for _, thread in live if thread is not threading.current_thread()]
        for thread in others:
            thread.join(max(0.0, deadline - time.monotonic()))
        stuck = [thread.name for thread in (acceptor, *others) if thread.is_alive()]
        if stuck:
            raise RuntimeError(f"SSEServer threads still running after {timeout}s: {stuck}")

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound port (useful when the server was created with ``port=0``)."""
        if self._listener is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:8123``."""
        scheme = "http" if self._ssl_context is None else "https"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def url_for(self, path: str) -> str:
        """Absolute URL for *path* on this server."""
        return self.url + (path if path.startswith("/") else "/" + path)

    def route(self, path: str, *handlers: Handler) -> None:
        """Serve *path*: connection k uses handler k, and the last handler repeats.

        Routing a path again replaces its handlers and restarts the count, so a
        test can script each reconnect of a client in order.
        """
        if not handlers:
            raise ValueError("route() needs at least one handler")
        with self._cond:
            self._routes[path] = list(handlers)
            self._route_hits[path] = 0

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._cond:
            return list(self._requests)

    def requests_for(self, path: str) -> list[RecordedRequest]:
        """A snapshot of the requests received for *path*."""
        return [request for request in self.requests if request.path == path]

    @property
    def connection_count(self) -> int:
        """Total HTTP requests received; one per connection, as the server never reuses one."""
        with self._cond:
            return len(self._requests)

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> bool:
        """Block until *count* requests have arrived; ``False`` on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._requests) >= count, timeout)

    @property
    def errors(self) -> list[BaseException]:
        """Handler exceptions other than client disconnects, so tests can assert there were none."""
        with self._cond:
            return list(self._errors)

    @staticmethod
    def events(
        events: Iterable[Mapping[str, Any]],
        *,
        chunked: bool = True,
        pause: float = 0.0,
        then: Then = "end",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        resume: bool = False,
    ) -> Handler:
        """Build a handler that streams *events* and then does *then*.

        With ``resume=True`` a reconnecting client gets only the events after
        the one whose ``id`` equals its ``Last-Event-ID`` (all of them if the
        id is absent or unknown), like a server that honours resumption.
        """
        specs = [dict(spec) for spec in events]
        for spec in specs:
            unknown = spec.keys() - EventSpec.__annotations__.keys()
            if unknown:
                raise ValueError(f"unknown event keys {sorted(unknown)}; see EventSpec")
        _check_then(then)

        def handler(conn: StreamConnection) -> None:
            start = 0
            if resume and conn.request.last_event_id is not None:
                ids = [spec.get("id") for spec in specs]
                if conn.request.last_event_id in ids:
                    start = ids.index(conn.request.last_event_id) + 1
            conn.send_headers(status, headers, chunked=chunked)
            for index, spec in enumerate(specs[start:]):
                if index and pause:
                    conn.pause(pause)
                conn.event(**spec)
            _THEN[then](conn)

        return handler

    @staticmethod
    def raw(
        pieces: Iterable[bytes | str],
        *,
        chunked: bool = False,
        pause: float = 0.0,
        then: Then = "end",
        headers: Mapping[str, str] | None = None,
        status: int = 200,
        content_type: str | None = "text/event-stream",
        with_head: bool = False,
    ) -> Handler:
        """Build a handler that sends exactly *pieces*, each as its own write (or chunk).

        With *with_head* (and not *chunked*), the first piece goes out in the
        same write as the response head.
        """
        body = [p.encode("utf-8") if isinstance(p, str) else bytes(p) for p in pieces]
        _check_then(then)
        if with_head and chunked:
            raise ValueError("with_head sends the first piece as it is: not with chunked=True")

        def handler(conn: StreamConnection) -> None:
            first = body[0] if with_head and body else b""
            conn.send_headers(
                status, headers, chunked=chunked, content_type=content_type, first=first
            )
            for index, piece in enumerate(body):
                if first and index == 0:
                    continue
                if index and pause:
                    conn.pause(pause)
                conn.send(piece)
            _THEN[then](conn)

        return handler

    @staticmethod
    def status(
        code: int, *, body: bytes | str = b"", headers: Mapping[str, str] | None = None
    ) -> Handler:
        """Build a handler that sends a complete, non-streaming response."""

        def handler(conn: StreamConnection) -> None:
            conn.respond(code, body, headers)

        return handler

    @staticmethod
    def redirect(location: str | None, code: int = 302) -> Handler:
        """Build a redirect handler; ``location=None`` omits the header, to test broken servers."""
        return SSEServer.status(code, headers={} if location is None else {"Location": location})

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError as exc:
                if not self._stopping.is_set():  # e.g. out of file descriptors
                    self._record_error(exc)
                    self._stopping.wait(_POLL)
                continue
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            channel = _Channel(sock)
            with self._cond:
                if self._stopping.is_set():
                    channel.close()
                    return
                self._serial += 1
                thread = threading.Thread(
                    target=self._serve,
                    args=(channel,),
                    name=f"ssesync-testserver-conn-{self._port}-{self._serial}",
                    daemon=True,
                )
                self._live[channel] = thread
                thread.start()

    def _serve(self, channel: _Channel) -> None:
        try:
            if self._ssl_context is not None:
                channel.start_tls(self._ssl_context)
            try:
                # Close the reader before the handler runs: while a makefile()
                # is open, closing the socket would not release the descriptor.
                with channel.sock.makefile("rb") as rfile:
                    request = _read_request(rfile)
            except _BadRequest as exc:
                body = f"{exc}\n".encode()
                plain = {"Content-Type": "text/plain"}
                channel.sock.sendall(_complete_response(exc.status, body, plain))
                return
            handler = self._dispatch(request)
            self._run(handler, StreamConnection(channel, request, self._stopping))
        except OSError:
            pass  # client vanished before its request was complete, or the TLS handshake failed
        except BaseException as exc:  # a bug in this module; make it visible to the test
            self._record_error(exc)
        finally:
            channel.close()
            with self._cond:
                del self._live[channel]

    def _dispatch(self, request: RecordedRequest) -> Handler:
        with self._cond:
            self._requests.append(request)
            self._cond.notify_all()
            handlers = self._routes.get(request.path)
            if handlers is None:
                return _not_found
            hit = self._route_hits[request.path]
            self._route_hits[request.path] = hit + 1
            return handlers[min(hit, len(handlers) - 1)]

    def _run(self, handler: Handler, conn: StreamConnection) -> None:
        try:
            handler(conn)
            conn._finish()
        except BaseException as exc:
            if isinstance(exc, _DISCONNECTS) or (
                self._stopping.is_set() and isinstance(exc, OSError)
            ):
                return
            self._record_error(exc)
            conn.drop()

    def _record_error(self, exc: BaseException) -> None:
        with self._cond:
            self._errors.append(exc)
