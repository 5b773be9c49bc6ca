"""Opening a plain ``http://`` stream without blocking, on a hub's own thread.

A hub that opens thousands of streams spends most of its CPU opening them:
urllib3's pool manager (URL parsing, pools, retries, header checks, then
http.client, whose response head goes through the ``email`` package's
parser) costs about a millisecond per request, and doing it on worker
threads adds a hand-over and a fight for the GIL with the thread that reads.
So for a plain GET on the hub's shared transport, :class:`LeanConnect` does
it all on the hub's thread, a step each time the socket is ready: connect,
send the head urllib3 would send (:func:`plain_head`), read the response
head, parse it (:func:`parse_head`), and hand the socket on as a
:class:`~ssesync._transport._direct.LeanStream` whose body the hub reads.

Anything it does not serve goes to urllib3 as before: TLS, a proxy, a body,
an unusual URL or header value (no head is built), and a redirect (the
request is sent again through urllib3, which follows it with its rules). A
response head it does not find plainly well-formed is parsed by http.client
itself, from the bytes received, so odd heads fail or pass exactly as they do
on the other paths. Host names are resolved on a worker thread (a resolver
may block); numeric addresses right here.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Iterator
from http.client import HTTPException
from typing import Any, Callable, Optional

from urllib3 import BaseHTTPResponse
from urllib3 import exceptions as u3exc
from urllib3.util.connection import allowed_gai_family

from ..exceptions import SSEConnectionError
from ._connect import Attempt, connect_failure
from ._decoding import body_encoding
from ._direct import DirectBody, LeanStream
from ._errors import request_secrets, urllib3_error
from ._heads import HeadReader, PlainRequest, parse_head
from ._protocol import Request

__all__ = ["LeanConnect"]

#: What urllib3 follows (``BaseHTTPResponse.REDIRECT_STATUSES``).
REDIRECT_STATUSES = frozenset(BaseHTTPResponse.REDIRECT_STATUSES)
#: Errors of a send that leave an answer worth reading (as urllib3 does).
_ANSWERED = frozenset({errno.EPIPE, errno.ECONNRESET, errno.EPROTOTYPE})


def _listed_chunked(encodings: Optional[str]) -> bool:
    """Whether ``chunked`` is among the ``Transfer-Encoding``s, as urllib3 decides it.

    (http.client counts a body as chunked only when that is the one value;
    urllib3 skips its check of conflicting lengths when it is any of them.)
    """
    return "chunked" in (part.strip() for part in (encodings or "").lower().split(","))


def _unmatching(lengths: str) -> bool:
    """Whether a (comma-joined) ``Content-Length`` holds different numbers."""
    try:
        return len({int(value) for value in lengths.split(",")}) > 1
    except ValueError:
        return False


Reactor = Any  # ssesync._reactor.Reactor (not imported: the transport sits below the hub)
Done = Callable[[Optional[LeanStream], Optional[SSEConnectionError]], None]


class LeanConnect:
    """One plain-HTTP attempt, stepped on the reactor's thread whenever its socket is ready.

    :param done: called once, on the reactor's thread, with the opened
        stream or the error that ended the attempt.
    :param redirected: called instead of ``done`` with the status and
        ``Location`` of a redirect urllib3 would follow: it follows it, with
        its rules, from there (the request is not sent again).
    """

    def __init__(
        self,
        reactor: Reactor,
        request: Request,
        attempt: Attempt,
        plain: PlainRequest,
        done: Done,
        redirected: Callable[[int, str], None],
    ) -> None:
        self._reactor = reactor
        self._request = request
        self._attempt = attempt
        self._head, self._host, self._port = plain
        self._done: Optional[Done] = done
        self._redirected = redirected
        self._addresses: Iterator[Any] = iter(())
        self._sock: Optional[socket.socket] = None
        self._registered = False
        self._heads = HeadReader()
        self._timer: Any = None
        self._last = 0.0
        self._error: Optional[OSError] = None

    # -- the steps -----------------------------------------------------------------------
    def start(self) -> None:
        """Resolve the host (here if numeric, else on a worker), then connect."""
        family, host = allowed_gai_family(), self._host
        found: list[Any] = []
        try:
            socket.inet_pton(socket.AF_INET, host)  # the common case, without getaddrinfo
            address = (host, self._port)
            found = [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", address)]
        except OSError:
            pass
        try:
            # (ASCII bytes: a str would go through the pure-Python IDNA codec)
            found = found or socket.getaddrinfo(
                host.encode("ascii"), self._port, family, socket.SOCK_STREAM, 0,
                socket.AI_NUMERICHOST,
            )  # fmt: skip
        except (socket.gaierror, UnicodeError):
            resolve = socket.getaddrinfo
            self._reactor.submit(
                resolve, self._host, self._port, family, socket.SOCK_STREAM, done=self._resolved
            )
            return
        self._addresses = iter(found)
        self._next_address()

    @property
    def aborted(self) -> bool:
        """Whether ``close()`` or ``reconnect()`` aborted this attempt (not a later one)."""
        return self._attempt.aborted

    def cancel(self) -> None:
        """``close()`` or ``reconnect()``: end the attempt now (it reports as aborted)."""
        self._fail_connect(OSError("the connection attempt was cancelled"))

    def _resolved(self, future: Any) -> None:
        if self._done is None:
            return
        exc = future.exception()
        if exc is None:
            self._addresses = iter(future.result())
            self._next_address()
        else:
            self._fail_connect(exc if isinstance(exc, OSError) else OSError(str(exc)))

    def _next_address(self) -> None:
        """Connect to the next address; with none left, fail with the last error."""
        self._close_socket()
        for family, kind, proto, _, address in self._addresses:
            sock = socket.socket(family, kind, proto)
            try:
                self._attempt.attach_socket(sock)
                if self._attempt.aborted:
                    raise OSError("the connection attempt was cancelled")
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                code = sock.connect_ex(address)
            except OSError as exc:
                sock.close()
                self._error = exc
                continue
            if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
                sock.close()
                self._error = OSError(code, os.strerror(code))
                continue
            self._sock = sock
            self._watch(selectors.EVENT_WRITE, self._on_connected)
            self._deadline(self._request.timeout[0], self._connect_timed_out)
            return
        self._fail_connect(self._error or OSError("getaddrinfo returned no addresses"))

    def _on_connected(self) -> None:
        sock = self._sock
        assert sock is not None
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._error = OSError(code, os.strerror(code))
            self._next_address()
            return
        self._send()

    def _send(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            sent = sock.send(self._head)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            if exc.errno not in _ANSWERED:
                self._fail_read(exc)
                return
            sent = len(self._head)  # the server may have answered already: read it
        self._head = self._head[sent:]
        self._deadline(self._request.timeout[1], self._read_timed_out)
        if self._head:
            self._watch(selectors.EVENT_WRITE, self._send)
        else:
            self._watch(selectors.EVENT_READ, self._on_readable)

    def _on_readable(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            self._fail_read(exc)
            return
        self._last = time.monotonic()
        try:
            found = self._heads.feed(data)
        except HTTPException as exc:  # an interim head http.client refuses
            self._fail_read(exc)
            return
        if found is not None:
            self._finish(*found)

    def _finish(self, head: bytes, rest: bytes) -> None:
        sock = self._sock
        assert sock is not None
        try:
            parsed = parse_head(head)
        except HTTPException as exc:
            self._fail_read(exc)
            return
        lengths = parsed.headers.get("Content-Length")
        encodings = parsed.headers.get("Transfer-Encoding")
        if lengths and not _listed_chunked(encodings) and _unmatching(lengths):
            # urllib3 refuses these (a request smuggling risk); so do we.
            message = f"Content-Length contained multiple unmatching values ({lengths})"
            self._fail_read(u3exc.InvalidHeader(message))
            return
        self._stop_watching()
        self._sock = None
        location = parsed.headers.get("Location")
        if parsed.status in REDIRECT_STATUSES and location:
            self._cancel_timer()
            sock.close()
            self._done = None
            self._redirected(parsed.status, location)
            return
        body = DirectBody(
            sock, self._request.url, chunked=parsed.chunked, length=parsed.length,
            encoding=body_encoding(parsed.headers), initial=rest,
        )  # fmt: skip
        url, read_timeout = self._request.url, self._request.timeout[1]
        stream = LeanStream(sock, parsed.status, parsed.headers, url, body, read_timeout)
        self._attempt.attach_stream(stream)
        self._report(None, None, stream)

    # -- deadlines and failures ---------------------------------------------------------------
    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _deadline(self, seconds: Optional[float], expired: Callable[[], None]) -> None:
        self._cancel_timer()
        self._last = time.monotonic()
        if seconds is not None:
            self._timer = self._reactor.schedule(seconds, expired)

    def _connect_timed_out(self) -> None:
        self._timer = None
        self._error = socket.timeout("timed out")
        self._next_address()

    def _read_timed_out(self) -> None:
        self._timer = None
        seconds = self._request.timeout[1]
        assert seconds is not None
        left = self._last + seconds - time.monotonic()
        if left > 0:  # bytes came meanwhile: the timeout counts from the last of them
            self._timer = self._reactor.schedule(left, self._read_timed_out)
        else:
            self._fail_read(socket.timeout("timed out"))

    def _fail_connect(self, exc: OSError) -> None:
        reason = connect_failure(exc, self._host, timeout=self._request.timeout[0])
        self._report(urllib3_error(reason, self._request.url, self._secrets()), exc)

    def _fail_read(self, exc: BaseException) -> None:
        self._report(urllib3_error(exc, self._request.url, self._secrets()), exc)

    def _report(
        self,
        error: Optional[SSEConnectionError],
        cause: Optional[BaseException],
        stream: Optional[LeanStream] = None,
    ) -> None:
        done, self._done = self._done, None
        if done is None:
            return  # reported already (a cancel racing a step)
        if error is not None:
            error.__cause__ = error.__cause__ or cause
            self._close_socket()
        else:
            self._cancel_timer()
        done(stream, error)

    def _secrets(self) -> Any:
        return request_secrets(self._request, None)

    # -- the selector --------------------------------------------------------------------------
    def _watch(self, events: int, callback: Callable[[], None]) -> None:
        sock = self._sock
        assert sock is not None
        if self._registered:
            self._reactor.modify(sock, events, callback)
        else:
            self._reactor.register(sock, callback, events)
            self._registered = True

    def _stop_watching(self) -> None:
        if self._registered and self._sock is not None:
            self._reactor.unregister(self._sock)
        self._registered = False

    def _close_socket(self) -> None:
        self._cancel_timer()
        self._stop_watching()
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
