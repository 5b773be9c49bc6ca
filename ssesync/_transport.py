"""The HTTP edge: send the request, hand back a byte stream, map failures.

The read loop sees only three small things from here: a :class:`Request` it
builds, a :class:`Transport` whose ``open()`` returns a :class:`Stream` (or
raises :class:`~ssesync.SSEConnectionError`), and :func:`check_response`,
which applies the status and content-type rules that every backend shares.
Backend exceptions are translated in exactly one function per backend
(:func:`urllib3_error` here); nothing else in ssesync catches them.

Redaction. A backend's own text quotes whatever it was given: urllib3 and
requests put the whole URL in a parse error (user-info, ``?token=``), a
redirect's ``Location`` in theirs, requests a header value it refused. Every
translated error passes through :func:`presentable_error`, the one place where
such text is made safe to show: user-info and credential query values
become ``***`` (:func:`redact_url`, :func:`redact_text`), so do the request's
own secrets wherever they appear, control characters from a server are
escaped, and a cause chain that would still print a secret in a traceback is
left off. Messages ssesync writes itself name URLs through :func:`redact_url`.

Aborting from another thread. ``close()`` and ``reconnect()`` must unblock a
read even when the server is silent, and also a connection attempt that is
still connecting, shaking hands over TLS or waiting for the response headers.
Each attempt has an :class:`Attempt` object. The sockets our own connection
classes open register with the attempt of the thread that opens them before
they connect (for TLS, a duplicate of the descriptor, since wrapping moves it
to a new socket object), and the response registers once it exists.
``Attempt.abort()`` shuts those sockets down, which makes a blocked
``connect``, handshake or ``recv`` in the reading thread return at once; the
reading thread then closes them itself, so a descriptor is never closed under
a thread that still uses it. With a caller's own pool manager or session only
the response can be registered: an attempt still waiting for headers there
ends at its timeout.

Reading. :func:`body_reader` returns whatever bytes have arrived, never
waiting for a buffer to fill. Bodies that are chunked or run to the end of
the connection are read straight from the socket (:class:`_SocketBody`),
which on Linux also lets the kernel keep the read timeout; both are
described there.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import struct
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.client import HTTPException, HTTPResponse, IncompleteRead
from typing import Any, Callable, Optional, Protocol, Union
from urllib.parse import unquote, unquote_plus, urljoin, urlsplit

import urllib3
from urllib3 import HTTPHeaderDict
from urllib3 import exceptions as u3exc
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family
from urllib3.util.retry import Retry

from ._chunked import ChunkedDecoder, ChunkedEncodingError
from ._retry import parse_retry_after
from ._text import visible
from .exceptions import SSEConnectionError

__all__ = [
    "MAX_REDIRECTS",
    "READ_SIZE",
    "Attempt",
    "Request",
    "Stream",
    "Transport",
    "Urllib3Transport",
    "body_reader",
    "check_response",
    "invalid_target_error",
    "open_transport",
    "presentable_error",
    "proxy_settings",
    "redact_text",
    "redact_url",
    "request_secrets",
]

log = logging.getLogger("ssesync")

#: The most bytes asked for in one read; a read returns whatever has arrived.
READ_SIZE = 65536
#: Redirects followed for one connection attempt before giving up.
MAX_REDIRECTS = 10
#: Statuses worth retrying: the server is overloaded, restarting or throttling.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

Timeout = tuple[Optional[float], Optional[float]]


@dataclass(frozen=True)
class Request:
    """One HTTP request of a source; built afresh for every attempt."""

    method: str
    url: str
    headers: Mapping[str, Union[str, bytes]]
    body: Optional[bytes]
    timeout: Timeout
    #: The connection may go back to the pool after a clean end (keep_connection).
    reuse_connection: bool = False


class Stream(Protocol):
    """An open response: its status and headers, and its body as reads."""

    status: int
    headers: Mapping[str, str]
    #: The final URL, after redirects.
    url: str

    def read(self) -> bytes:
        """The next bytes that have arrived (blocking until some have); ``b""`` at the end."""

    def abort(self) -> None:
        """Make a read blocked in another thread return; safe from any thread."""

    def close(self, reuse: bool = False) -> None:
        """Release the response; ``reuse`` returns a finished connection to the pool."""


class Transport(Protocol):
    """Sends requests; one per source, or one shared by an :class:`~ssesync.SSEClient`."""

    def open(self, request: Request, attempt: Attempt) -> Stream:
        """Send ``request`` and return the response once its headers arrived."""

    def close(self) -> None:
        """Release what the transport owns (its pools)."""


class Attempt:
    """One connection attempt, abortable from any thread (see the module doc).

    Two rules keep an abort from reaching a connection that is not this
    attempt's any more. :meth:`release` detaches everything, and the read
    loop calls it *before* it returns a connection to the pool, where
    another source may take it at once. And an abort in a process forked
    from the one that opened the connection does nothing: the parent still
    reads that socket, and ``shutdown()`` would end it for both.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._aborted = False
        self._released = False
        self._pid = os.getpid()
        self._sockets: list[socket.socket] = []
        self._duplicates: list[socket.socket] = []
        self._stream: Optional[Stream] = None

    @property
    def aborted(self) -> bool:
        return self._aborted

    def attach_socket(self, sock: Optional[socket.socket], duplicate: bool = False) -> None:
        """Shut ``sock`` down on :meth:`abort`.

        :param duplicate: hold a duplicate of the descriptor instead of the
            socket object: TLS wraps a socket by moving its descriptor to a new
            object, which leaves the one registered here detached. Shutting
            down the duplicate still ends the connection. Duplicates are
            closed by :meth:`release`.
        """
        if sock is None:
            return
        if duplicate:
            try:
                sock = socket.fromfd(sock.fileno(), sock.family, sock.type)
            except OSError:
                return
        with self._lock:
            if not self._aborted and not self._released:
                if sock not in self._sockets:
                    self._sockets.append(sock)
                if duplicate:
                    self._duplicates.append(sock)
                return
            aborted = self._aborted
        if aborted:
            _shutdown(sock)
        if duplicate:
            sock.close()

    def release(self) -> None:
        """The attempt is over: forget its sockets and response, close its duplicates."""
        with self._lock:
            self._released = True
            duplicates, self._duplicates = self._duplicates, []
            self._sockets = []
            self._stream = None
        for sock in duplicates:
            sock.close()

    def attach_stream(self, stream: Stream) -> None:
        with self._lock:
            if not self._aborted:
                if not self._released:
                    self._stream = stream
                return
        stream.abort()

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            sockets, self._sockets = self._sockets, []
            stream, self._stream = self._stream, None
        if os.getpid() != self._pid:
            return  # a forked child: the connection is the parent's (see above)
        for sock in sockets:
            _shutdown(sock)
        if stream is not None:
            stream.abort()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass  # already closed, or never connected: nothing to unblock


# The attempt of the thread that is currently inside Transport.open().
_current = threading.local()


def _register_socket(sock: Optional[socket.socket]) -> None:
    attempt: Optional[Attempt] = getattr(_current, "attempt", None)
    if attempt is not None:
        attempt.attach_socket(sock)


def is_interim(status: int) -> bool:
    """Whether ``status`` is an interim response that a final one follows (not 101)."""
    return 100 <= status < 200 and status != 101


class _FinalResponse(HTTPResponse):
    """http.client's response, reading past every interim response.

    http.client skips ``100 Continue`` itself but hands back any other
    interim response, such as ``103 Early Hints``, as if it were final; the
    final response then lies unread behind it. Our connections use this
    class, so urllib3 sees the final response (and follows its redirects).
    """

    def begin(self) -> None:
        super().begin()
        while is_interim(self.status):
            log.debug("skipped an interim %d response", self.status)
            self.headers = None  # type: ignore[assignment]  # begin() reads the next head
            super().begin()


def skip_interim(response: urllib3.BaseHTTPResponse) -> bool:
    """Read past interim responses on a connection that is not ours.

    A caller's pool manager or session has http.client's own response class
    (see :class:`_FinalResponse`), so an interim response arrives here as if
    it were final. The final one follows on the same connection: read its
    head into the same http.client response, and set the urllib3 response
    up again around it. Its redirects are not followed (urllib3 only saw the
    interim status). Returns whether anything was skipped.
    """
    fp = getattr(response, "_fp", None)
    if not is_interim(response.status) or not isinstance(fp, HTTPResponse):
        return False
    while is_interim(fp.status):
        log.debug("skipped an interim %d response", fp.status)
        fp.headers = None  # type: ignore[assignment]
        fp.begin()
    urllib3.HTTPResponse.__init__(
        response,  # type: ignore[arg-type]
        body=fp,
        headers=HTTPHeaderDict(fp.msg.items()),
        status=fp.status,
        version=fp.version,
        reason=fp.reason,
        preload_content=False,
        decode_content=response.decode_content,
        original_response=fp,
        pool=getattr(response, "_pool", None),
        connection=getattr(response, "_connection", None),
        retries=response.retries,
        request_url=getattr(response, "_request_url", None),
        sock_shutdown=getattr(response, "_sock_shutdown", None),
    )
    return True


class _SocketWatcher(HTTPConnection):
    """Registers the connection's socket with the current attempt.

    It is mixed in before urllib3's HTTP and HTTPS connection classes. A new
    socket is registered before it connects, so an abort also ends a TCP
    connect or TLS handshake that hangs (shutting down a socket that is still
    connecting wakes the ``connect()``); a socket reused from the pool is
    registered before the wait for the response headers.
    """

    def _new_conn(self) -> socket.socket:
        attempt: Optional[Attempt] = getattr(_current, "attempt", None)
        if attempt is None:
            return super()._new_conn()
        # urllib3's own _new_conn, with the socket registered before connect().
        try:
            sock = _open_socket(
                self._dns_host, self.port, self.timeout, self.source_address,
                self.socket_options, attempt, isinstance(self, HTTPSConnection),
            )
        except socket.gaierror as exc:
            raise u3exc.NameResolutionError(self.host, self, exc) from exc
        except socket.timeout as exc:
            raise u3exc.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise u3exc.NewConnectionError(
                self, f"Failed to establish a new connection: {exc}"
            ) from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    response_class = _FinalResponse

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        _register_socket(self.sock)
        return super().getresponse(*args, **kwargs)


def _open_socket(
    host: str,
    port: int,
    timeout: Any,
    source_address: Optional[tuple[str, int]],
    options: Any,
    attempt: Attempt,
    tls: bool,
) -> socket.socket:
    """Connect to ``host``, as urllib3 does, registering each socket first."""
    host = host.strip("[]")
    error: Optional[OSError] = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, allowed_gai_family(), socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            attempt.attach_socket(sock, duplicate=tls)
            if attempt.aborted:
                raise OSError("the connection attempt was cancelled")
            for option in options or ():
                sock.setsockopt(*option)
            if timeout is None or isinstance(timeout, (int, float)):
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(address)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError("getaddrinfo returned no addresses")


_WatchedHTTPConnection = _SocketWatcher


class _WatchedHTTPSConnection(_SocketWatcher, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


def open_transport(
    *,
    pool_manager: Any = None,
    session: Any = None,
    verify: Any = True,
    cert: Any = None,
    proxy: Any = None,
    ca_certs: Any = None,
    ssl_context: Any = None,
    maxsize: int = 1,
) -> Transport:
    """The transport a source's options ask for, after checking them.

    :param maxsize: connections kept per host by a pool built here.

    :raises TypeError: an option of the wrong type (the message names it).
    :raises ValueError: an option with a wrong value, such as a proxy URL
        that is not ``http://`` or ``https://``.
    """
    if not isinstance(verify, (bool, str)):
        raise TypeError(
            f"verify must be True, False or a CA bundle path, not {type(verify).__name__}"
        )
    if cert is not None and not (
        isinstance(cert, str)
        or (isinstance(cert, (tuple, list)) and len(cert) == 2
            and all(isinstance(part, str) for part in cert))
    ):  # fmt: skip
        raise TypeError("cert must be a PEM path or a (cert, key) pair of paths")
    if proxy is not None:
        if not isinstance(proxy, str):
            raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
        if urlsplit(proxy).scheme.lower() not in ("http", "https"):
            raise ValueError(f"proxy must be an http:// or https:// URL, not {redact_url(proxy)!r}")
    if ca_certs is not None and not isinstance(ca_certs, str):
        raise TypeError(f"ca_certs must be a path, not {type(ca_certs).__name__}")
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")
    if pool_manager is not None and not isinstance(pool_manager, urllib3.PoolManager):
        raise TypeError(
            "pool_manager must be a urllib3.PoolManager or ProxyManager, "
            f"not {type(pool_manager).__name__}"
        )
    if session is not None:
        if pool_manager is not None:
            raise ValueError("give either session= or pool_manager=, not both")
        if not callable(getattr(session, "send", None)):
            raise TypeError(f"session must be a requests.Session, not {type(session).__name__}")
        from ._requests import RequestsTransport

        return RequestsTransport(
            session,
            verify=None if verify is True else verify,
            cert=cert if cert is None or isinstance(cert, str) else (cert[0], cert[1]),
            proxy=proxy,
        )
    return Urllib3Transport(
        pool_manager,
        verify=verify,
        cert=cert,
        proxy=proxy,
        ca_certs=ca_certs,
        ssl_context=ssl_context,
        maxsize=maxsize,
    )


def build_pool_manager(
    *,
    verify: Union[bool, str] = True,
    cert: Union[str, tuple[str, str], None] = None,
    proxy: Optional[str] = None,
    ca_certs: Optional[str] = None,
    ssl_context: Optional[ssl.SSLContext] = None,
    maxsize: int = 1,
) -> urllib3.PoolManager:
    """A pool manager with abortable connections and the TLS options users expect.

    :param verify: ``True`` to verify server certificates (the default),
        ``False`` to skip verification, or the path of a CA bundle.
    :param cert: a client certificate: a path to a PEM file with the key, or a
        ``(cert, key)`` pair of paths.
    :param proxy: an ``http://`` or ``https://`` proxy URL; user-info in it
        (``http://user:password@proxy:3128``) is sent as ``Proxy-Authorization``.
    :param ca_certs: a CA bundle path (the same as a path given as ``verify``).
    :param ssl_context: an :class:`ssl.SSLContext` to use as it is.
    :raises ValueError: for a proxy URL that cannot be used (its message
        never shows the proxy's credentials).
    """
    kwargs: dict[str, Any] = {"maxsize": maxsize, "block": False}
    if ssl_context is not None:
        kwargs["ssl_context"] = ssl_context
    if verify is False:
        kwargs["cert_reqs"] = "CERT_NONE"
        kwargs["assert_hostname"] = False
    else:
        kwargs["cert_reqs"] = "CERT_REQUIRED"
        bundle = verify if isinstance(verify, str) else ca_certs
        if bundle is not None:
            kwargs["ca_certs"] = bundle
    if cert is not None:
        if isinstance(cert, str):
            kwargs["cert_file"] = cert
        else:
            kwargs["cert_file"], kwargs["key_file"] = cert
    manager: urllib3.PoolManager
    if proxy is not None:
        proxy_url, proxy_headers = proxy_settings(proxy)
        manager = urllib3.ProxyManager(proxy_url, proxy_headers=proxy_headers, **kwargs)
    else:
        manager = urllib3.PoolManager(**kwargs)
    manager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}
    return manager


def proxy_settings(proxy: str) -> tuple[str, Optional[dict[str, str]]]:
    """A proxy URL without its user-info, and the ``Proxy-Authorization`` made of it.

    urllib3's :class:`~urllib3.ProxyManager` ignores credentials in the URL,
    where users (and ``HTTPS_PROXY``) put them. An unusable URL — a typo in
    the port, a scheme urllib3 cannot proxy through — raises
    :class:`ValueError` at once, with the credentials left out.
    """
    try:
        parsed = urllib3.util.parse_url(proxy)
        if parsed.scheme not in ("http", "https"):
            scheme = parsed.scheme or "(none)"
            raise ValueError(f"unsupported scheme {scheme}, expected http:// or https://")
        if not parsed.host:
            raise ValueError("no host")
    except ValueError as exc:  # urllib3's LocationParseError is a ValueError too
        reason = redact_text(str(exc), _url_secrets(proxy))
        raise ValueError(f"invalid proxy URL {redact_url(proxy)}: {reason}") from None
    if parsed.auth is None:
        return proxy, None
    user, _, password = parsed.auth.partition(":")
    credentials = f"{unquote(user)}:{unquote(password)}"
    headers: dict[str, str] = urllib3.make_headers(proxy_basic_auth=credentials)
    return parsed._replace(auth=None).url, headers


#: Read bodies straight from the connection's socket (see :func:`body_reader`).
#: Tests turn it off to run urllib3's public path too.
FAST_READS = True
#: Let a plain TCP socket wait with the kernel's receive timeout instead of
#: Python's (see :class:`_SocketBody`). Only on 64-bit Linux, where the
#: ``timeval`` it takes is two longs; elsewhere Python's timeout stays.
KERNEL_READ_TIMEOUT = sys.platform == "linux" and struct.calcsize("@l") == 8


def body_reader(
    response: urllib3.BaseHTTPResponse,
    url: str,
    *,
    reuse: bool = False,
    read_timeout: Optional[float] = None,
) -> Callable[[], bytes]:
    """A function returning the next bytes of the body, ``b""`` at its end.

    The public path is urllib3's ``read1``: whatever has arrived, without
    waiting for a buffer to fill. Under it lie urllib3's and http.client's
    bookkeeping and a buffered reader, for each read; servers often send one
    event per read, and then those layers cost more than the event. So when
    the body simply runs to the end of the connection, or is chunked, and is
    not compressed, we read the socket ourselves (:class:`_SocketBody`) and
    strip chunked framing with :class:`~ssesync._chunked.ChunkedDecoder`.
    That needs private attributes of http.client's response; whenever they
    are not there as expected — another http.client, a mocked response, a
    body already being read — the public path is used. A connection meant
    for reuse keeps the public path too, so http.client's own bookkeeping of
    the body stays exact.
    """
    body = None if reuse or not FAST_READS else _SocketBody.of(response, read_timeout)
    if body is None:
        read1 = response.read1

        def read_public() -> bytes:
            try:
                # decode_content: requests opens its responses without it.
                return read1(READ_SIZE, decode_content=True) or b""
            except (u3exc.HTTPError, HTTPException, OSError) as exc:
                error = urllib3_error(exc, url)
                raise error from error.__cause__

        return read_public

    if not body.chunked:

        def read_until_close() -> bytes:
            try:
                return body.recv(READ_SIZE)
            except (HTTPException, OSError, ValueError) as exc:
                error = urllib3_error(exc, url)
                raise error from error.__cause__

        return read_until_close

    decoder = ChunkedDecoder()
    feed = decoder.feed

    def read_chunked() -> bytes:
        try:
            # The last chunk often arrives with the last event, and the
            # server may keep the connection open after it: once the decoder
            # has stopped (complete, or broken after payload it returned),
            # the socket is not read again.
            while not decoder.stopped:
                data = body.recv(READ_SIZE)
                if not data:
                    raise IncompleteRead(b"")
                payload = feed(data)
                if payload:
                    return payload
            return feed(b"")  # b"" at the end, or the pending framing error
        except ChunkedEncodingError as exc:
            log.debug("invalid chunked body: %s", exc)
            raise invalid_chunked_error(url) from exc
        except (HTTPException, OSError, ValueError) as exc:
            error = urllib3_error(exc, url)
            raise error from error.__cause__

    return read_chunked


class _SocketBody:
    """Reads a response body straight from its connection's socket.

    http.client reads the status line and headers through a buffered reader,
    which may already hold the first bytes of the body. The first read takes
    exactly those: ``peek`` shows what is buffered (making at most one read of
    the socket if nothing is), and reading back no more than it showed takes
    it from the buffer. From then on the buffer stays empty, and each read is
    one ``recv`` of the socket.

    A socket with a timeout makes Python wait in ``poll()`` before every
    ``recv``: two system calls, and two hand-overs of the GIL, per read. On
    Linux a plain TCP socket is therefore switched, after that first read, to
    blocking mode with the same timeout set as the kernel's ``SO_RCVTIMEO``;
    its expiry surfaces as :class:`BlockingIOError`, which
    :func:`urllib3_error` reports as a read timeout. TLS sockets keep
    Python's timeout: on a blocking socket the ssl module retries a read the
    kernel timed out instead of reporting it.
    """

    __slots__ = ("_reader", "_sock", "_timeout", "chunked", "recv")

    def __init__(
        self, reader: Any, sock: socket.socket, chunked: bool, read_timeout: Optional[float]
    ) -> None:
        self._reader = reader
        self._sock = sock
        self._timeout = read_timeout
        self.chunked = chunked
        #: ``recv(size)``: the first read drains the buffered reader, then
        #: this becomes the socket's own ``recv``.
        self.recv: Callable[[int], bytes] = self._first_recv

    @classmethod
    def of(
        cls, response: urllib3.BaseHTTPResponse, read_timeout: Optional[float]
    ) -> Optional[_SocketBody]:
        """The socket reader for a fresh body, or ``None`` if it must be read the public way."""
        encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding != "identity":
            return None
        fp = getattr(response, "_fp", None)  # the http.client.HTTPResponse
        if not isinstance(fp, HTTPResponse):
            return None
        if fp.chunked:
            if fp.chunk_left is not None:
                return None  # its chunk reading has begun
        elif fp.length is not None or not fp.will_close:
            return None  # a length to count down: leave it to http.client
        reader = getattr(fp, "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if not isinstance(sock, socket.socket) or not callable(getattr(reader, "peek", None)):
            return None
        return cls(reader, sock, bool(fp.chunked), read_timeout)

    def _first_recv(self, size: int) -> bytes:
        buffered = self._reader.peek(1)
        data: bytes = self._reader.read(min(len(buffered), size)) if buffered else b""
        if len(buffered) <= size:
            self.recv = self._sock.recv
            self._use_kernel_timeout()
        return data

    def _use_kernel_timeout(self) -> None:
        sock, timeout = self._sock, self._timeout
        if not KERNEL_READ_TIMEOUT or type(sock) is not socket.socket:
            return
        if timeout is None or not 0 < timeout < 2**31:
            return  # no timeout: the socket already blocks without poll()
        seconds = int(timeout)
        micros = max(1, int((timeout - seconds) * 1_000_000)) if timeout != seconds else 0
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", seconds, micros)
            )
            sock.settimeout(None)
        except OSError:  # e.g. shut down by an abort meanwhile: keep Python's timeout
            log.debug("cannot set SO_RCVTIMEO; keeping the socket timeout", exc_info=True)


class ResponseStream:
    """A urllib3 response as a :class:`Stream`, read by :func:`body_reader`.

    Pooled connections. A source that does not keep its connection sends
    ``Connection: close`` and must never let the connection serve another
    request. But once urllib3's public path reads a body to its end, urllib3
    hands the connection back to its pool at once, open (http.client only
    looks at the response's headers to decide that it persists), before
    :meth:`close` runs; on a shared pool (an :class:`~ssesync.SSEClient`'s,
    ``pool_manager=``, a session's) the next request could then be sent on a
    connection the server is about to close, or is still busy with. So the
    response's pool is held back while it is read: :meth:`close` closes the
    connection first and only then returns it, closed, to the pool.
    """

    __slots__ = ("_pool", "_response", "headers", "read", "status", "url")

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        url: str,
        reuse: bool,
        read_timeout: Optional[float] = None,
    ) -> None:
        self._response = response
        self._pool = None
        if not reuse and hasattr(response, "_pool"):
            self._pool, response._pool = response._pool, None
        self.read = body_reader(response, url, reuse=reuse, read_timeout=read_timeout)
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        # urllib3 keeps the path (or a relative Location) of the last request.
        self.url: str = urljoin(url, response.url) if response.url else url

    def abort(self) -> None:
        try:
            self._response.shutdown()
        except (ValueError, RuntimeError, OSError, AttributeError):
            pass  # released, closed or not a socket: nothing is blocked on it

    def close(self, reuse: bool = False) -> None:
        response = self._response
        try:
            if not reuse or self._pool is not None:
                response.close()  # closes the connection too, while it is ours
            if self._pool is not None:
                response._pool, self._pool = self._pool, None  # type: ignore[attr-defined]
            response.release_conn()
        except (u3exc.HTTPError, HTTPException, OSError, ValueError):
            log.debug("error while closing a response", exc_info=True)


class Urllib3Transport:
    """Sends requests through a :class:`urllib3.PoolManager`.

    :param pool_manager: a caller's manager (kept open when we close), or
        ``None`` to build one from ``tls`` options (closed with us).
    """

    def __init__(
        self, pool_manager: Optional[urllib3.PoolManager] = None, **tls: Any
    ) -> None:
        self._owns_pool = pool_manager is None
        self._proxy: Optional[str] = tls.get("proxy") if pool_manager is None else None
        self.pool_manager = pool_manager if pool_manager is not None else build_pool_manager(**tls)
        self._retries = Retry(
            total=None,
            connect=0,
            read=0,
            redirect=MAX_REDIRECTS,
            status=0,
            other=0,
            raise_on_redirect=True,
            raise_on_status=False,
            respect_retry_after_header=False,
        )

    def open(self, request: Request, attempt: Attempt) -> Stream:
        connect, read = request.timeout
        _current.attempt = attempt
        try:
            response = self.pool_manager.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                preload_content=False,
                redirect=True,
                retries=self._retries,
                timeout=urllib3.Timeout(connect=connect, read=read),
            )
        except (u3exc.HTTPError, HTTPException, OSError) as exc:
            error = urllib3_error(exc, request.url, request_secrets(request, self._proxy))
            raise error from error.__cause__
        except ValueError as exc:  # e.g. a redirect to an unparsable Location
            error = invalid_target_error(request.url, exc, request_secrets(request, self._proxy))
            raise error from error.__cause__
        finally:
            _current.attempt = None
        try:
            skip_interim(response)  # a caller's pool: see _FinalResponse
        except (HTTPException, OSError) as exc:
            response.release_conn()
            error = urllib3_error(exc, request.url, request_secrets(request, self._proxy))
            raise error from error.__cause__
        stream = ResponseStream(response, request.url, request.reuse_connection, read)
        attempt.attach_stream(stream)
        return stream

    def close(self) -> None:
        if self._owns_pool:
            self.pool_manager.clear()


def urllib3_error(
    exc: BaseException, url: str, secrets: Iterable[str] = ()
) -> SSEConnectionError:
    """Translate a urllib3 / socket failure into a presentable :class:`SSEConnectionError`.

    Raise the result ``from error.__cause__``: see :func:`presentable_error`.

    :param secrets: the request's own secrets (:func:`request_secrets`).
    """
    return presentable_error(_urllib3_error(exc, url), exc, url, secrets)


def _urllib3_error(exc: BaseException, url: str) -> SSEConnectionError:
    """The translation itself; its messages may still quote backend text."""
    where = redact_url(url)
    if isinstance(exc, u3exc.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, u3exc.ResponseError):
            return SSEConnectionError(
                f"too many redirects (more than {MAX_REDIRECTS}) for {where}",
                url=where,
                retryable=False,
            )
        if reason is not None:
            return _urllib3_error(reason, url)
    # BlockingIOError: the kernel's receive timeout expired (see _SocketBody).
    if isinstance(exc, (u3exc.ReadTimeoutError, socket.timeout, BlockingIOError)):
        return SSEConnectionError(f"read timed out on {where}", url=where)
    if _is_invalid_chunked(exc):
        return invalid_chunked_error(url)
    # Most specific first: in urllib3 2 a NewConnectionError is a ConnectTimeoutError.
    if isinstance(exc, u3exc.NameResolutionError):
        return SSEConnectionError(f"cannot resolve the host of {where}", url=where)
    if isinstance(exc, u3exc.NewConnectionError):
        return SSEConnectionError(f"cannot connect to {where}: {_cause_text(exc)}", url=where)
    if isinstance(exc, u3exc.ConnectTimeoutError):
        return SSEConnectionError(f"connecting to {where} timed out", url=where)
    if isinstance(exc, u3exc.SSLError):
        verify_failed = "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
            exc.__context__, ssl.SSLCertVerificationError
        )
        return SSEConnectionError(
            f"TLS error with {where}: {_cause_text(exc)}",
            url=where,
            retryable=not verify_failed,
        )
    if isinstance(exc, u3exc.ProxyError):
        return SSEConnectionError(f"proxy error for {where}: {_cause_text(exc)}", url=where)
    if isinstance(exc, (u3exc.LocationValueError, u3exc.URLSchemeUnknown)):
        return SSEConnectionError(f"invalid URL {where}: {exc}", url=where, retryable=False)
    if isinstance(exc, (u3exc.ProtocolError, HTTPException, OSError)):
        return SSEConnectionError(f"connection to {where} broke: {_cause_text(exc)}", url=where)
    return SSEConnectionError(f"HTTP error with {where}: {exc}", url=where)


def _cause_text(exc: BaseException) -> str:
    """The most telling message of an exception chain (never request headers).

    urllib3 wraps the socket error that matters (``Connection refused``,
    ``Connection reset by peer``) in layers that repeat pool details; below
    an incomplete read lie only its own parsing internals. So the chain is
    walked down to the first socket error or incomplete read, and no further.
    """
    chain: list[BaseException] = []
    inner: Optional[BaseException] = exc
    while inner is not None and len(chain) < 8 and inner not in chain:
        chain.append(inner)
        args = inner.args
        nxt = args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None
        inner = nxt or inner.__cause__ or inner.__context__
    for item in chain:
        if isinstance(item, IncompleteRead):
            return "the server closed the connection in the middle of the stream"
        if isinstance(item, ssl.SSLError):
            return str(item)
        if isinstance(item, OSError) and item.errno is not None:
            return item.strerror or str(item)
    # A status line http.client refused still ends with its CRLF.
    return str(chain[-1]).strip() or type(chain[-1]).__name__


def _is_invalid_chunked(exc: BaseException) -> bool:
    """Whether ``exc`` is http.client's or urllib3's report of a bad chunk size."""
    if isinstance(exc, u3exc.InvalidChunkLength):
        return True
    seen = 0
    inner: Optional[BaseException] = exc
    while inner is not None and seen < 8:
        if isinstance(inner, IncompleteRead) and isinstance(inner.__context__, ValueError):
            return True
        if isinstance(inner, u3exc.InvalidChunkLength):
            return True
        args = inner.args
        nxt = args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None
        inner = nxt or inner.__cause__ or inner.__context__
        seen += 1
    return False


def invalid_chunked_error(url: str) -> SSEConnectionError:
    """The body's chunked framing is broken: the same error on every read path."""
    where = redact_url(url)
    return SSEConnectionError(f"the server sent an invalid chunked body on {where}", url=where)


def invalid_target_error(
    url: str, exc: BaseException, secrets: Iterable[str] = ()
) -> SSEConnectionError:
    """A request urllib3 or requests refused as malformed, e.g. a bad redirect.

    The original message is left out on purpose: http.client quotes the
    offending header value in it, and header values are often credentials.
    Raise the result ``from error.__cause__``, like :func:`urllib3_error`'s.
    """
    where = redact_url(url)
    error = SSEConnectionError(
        f"invalid URL or redirect target while requesting {where}", url=where, retryable=False
    )
    return presentable_error(error, exc, url, secrets)


def check_response(stream: Stream, url: str) -> None:
    """Apply the status and content-type rules to an opened response.

    ``200`` with ``text/event-stream`` passes; everything else raises
    :class:`SSEConnectionError`, marked retryable for ``5xx``, ``408`` and
    ``429`` (with the server's ``Retry-After``). ``204`` is left to the
    caller, for whom it means a clean end.
    """
    status = stream.status
    headers = stream.headers
    where = redact_url(url)
    if status == 200:
        content_type = headers.get("Content-Type") or ""
        if mime_essence(content_type) != "text/event-stream":
            raise SSEConnectionError(
                f"expected Content-Type text/event-stream from {where}, "
                f"got {content_type[:100]!r}",
                status=status,
                headers=headers,
                url=where,
                retryable=False,
            )
        encoding = (headers.get("Content-Encoding") or "identity").strip().lower()
        decodable = ("identity", *urllib3.HTTPResponse.CONTENT_DECODERS)
        if any(part.strip() not in decodable for part in encoding.split(",")):
            raise SSEConnectionError(
                f"{where} sent the stream with Content-Encoding {encoding[:40]!r}, "
                "which urllib3 here cannot decode",
                status=status,
                headers=headers,
                url=where,
                retryable=False,
            )
        return
    if 300 <= status < 400:
        message = f"HTTP {status} redirect from {where} without a usable Location header"
    else:
        message = f"HTTP {status} from {where}"
    raise SSEConnectionError(
        message,
        status=status,
        headers=headers,
        url=where,
        retryable=status >= 500 or status in RETRYABLE_STATUSES,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


_MIME_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def mime_essence(value: str) -> str:
    """The MIME type of a ``Content-Type`` value, lower case, without parameters.

    As the Fetch standard extracts it: of a comma-separated list (a header
    sent twice, or a server's odd value), the last valid type counts, and
    ``*/*`` is not one. Returns ``""`` when there is none.
    """
    essence = ""
    for item in _split_outside_quotes(value):
        mime = item.split(";", 1)[0].strip(" \t\r\n").lower()
        kind, slash, subtype = mime.partition("/")
        valid = slash and _MIME_TOKEN.fullmatch(kind) and _MIME_TOKEN.fullmatch(subtype)
        if valid and mime != "*/*":
            essence = mime
    return essence


def _split_outside_quotes(value: str) -> list[str]:
    if '"' not in value:
        return value.split(",")
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


# -- redaction (see the module doc) ----------------------------------------------------

#: What a redacted credential is shown as.
MASK = "***"
#: Query parameter names that say their value is a credential, also as part of
#: a longer name (``access_token``, ``X-Amz-Signature``, ``apikey``).
_CREDENTIAL_NAME = re.compile(
    r"token|key|secret|pass|pwd|auth|sig|code|cred|sess|jwt|ticket|hmac", re.IGNORECASE
)
# A URL as urllib3 parses one: scheme, //authority, path, ?query, #fragment.
_URL_PARTS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?(?P<authority>//[^/?#\\]*)?"
    r"(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?",
    re.DOTALL,
)
# URLs inside a message: absolute ones, and a path with a query (urllib3
# writes "Max retries exceeded with url: /s?token=..."); punctuation that
# ends a sentence or a clause is not taken as part of the URL.
_URL_IN_TEXT = re.compile(
    r"(?:\b[A-Za-z][A-Za-z0-9+.-]*://|(?<![\w/])/[^\s'\"<>`?]*\?)"
    r"(?:[^\s'\"<>`]*[^\s'\"<>`.,:;!?)\]])?"
)
# Request headers whose values ssesync sets itself, or that are never secret.
_PLAIN_HEADERS = frozenset(
    {"accept", "cache-control", "connection", "content-length", "content-type", "last-event-id"}
)
# Shorter strings are not masked wherever they appear: "1" or "GET" would
# mangle every message, and are no secret anyway.
_MIN_SECRET = 4


def redact_url(url: str) -> str:
    """The URL with its credentials shown as ``***``: safe to log and to show.

    The user-info becomes ``***``, and so does the value of every query
    parameter whose name says it is a credential (``token``, ``api_key``,
    ``X-Amz-Signature``, ...) and every query part without a name (it may be
    a bare token); other parameters stay, to tell streams apart. The fragment
    (where OAuth puts an ``access_token``) is dropped. The URL is read as text,
    not parsed, so a malformed one — a typo in the port — is redacted too,
    and shows the typo.
    """
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:  # pragma: no cover - the pattern matches every string
        return MASK
    authority = parts["authority"] or ""
    if "@" in authority:
        authority = f"//{MASK}@{authority.rpartition('@')[2]}"
    query = parts["query"] or ""
    if len(query) > 1:
        pieces = re.split(r"([&;])", query[1:])
        query = "?" + "".join(_redact_query_part(piece) for piece in pieces)
    return f"{parts['scheme'] or ''}{authority}{parts['path']}{query}"


def _redact_query_part(part: str) -> str:
    if part in ("", "&", ";"):
        return part
    name, equals, _ = part.partition("=")
    if not equals:
        return MASK
    if not name or _CREDENTIAL_NAME.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return part


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted and every one of ``secrets`` masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)


def _url_secrets(url: str) -> list[str]:
    """The user-info and the credential query values of ``url``, as written and decoded."""
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:  # pragma: no cover - the pattern matches every string
        return []
    found: list[str] = []
    authority = parts["authority"] or ""
    if "@" in authority:
        userinfo = authority[2:].rpartition("@")[0]
        found.append(userinfo)
        found.extend(unquote(piece) for piece in userinfo.split(":"))
    for part in re.split(r"[&;]", (parts["query"] or "")[1:]):
        name, equals, value = part.partition("=")
        if not equals:
            found.append(part)
        elif not name or _CREDENTIAL_NAME.search(unquote_plus(name)):
            found.extend((value, unquote_plus(value)))
    return found


def request_secrets(request: Request, proxy: Optional[str] = None) -> list[str]:
    """What must never be shown of ``request``: its URL's and proxy's credentials, header values."""
    found = _url_secrets(request.url)
    if proxy:
        found.extend(_url_secrets(proxy))
    for name, value in request.headers.items():
        if name.lower() in _PLAIN_HEADERS:
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        found.extend((text, text.strip()))
    return found


def _chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    """``exc`` and every exception a traceback of it could print."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        item = pending.pop()
        if item is None or any(item is other for other in seen):
            continue
        seen.append(item)
        yield item
        pending.extend((item.__cause__, item.__context__))


def presentable_error(
    error: SSEConnectionError,
    cause: Optional[BaseException],
    url: str,
    secrets: Iterable[str] = (),
) -> SSEConnectionError:
    """``error`` made safe to show: the one place backend text is redacted.

    Its message gets :func:`redact_text` (with the URL's own credentials and
    ``secrets`` masked) and its control characters escaped. ``cause`` becomes
    its ``__cause__`` only when no exception of that chain would print a
    secret in a traceback; otherwise the chain is left off (urllib3's parse
    errors quote the URL in full), as it is with ``cause=None``, for text
    that may quote secrets ssesync does not know. Raise the result ``from
    error.__cause__``, so that the choice stands.
    """
    known = [*_url_secrets(url), *secrets]
    message = visible(redact_text(error.message, known))
    if message != error.message:
        error = SSEConnectionError(
            message,
            status=error.status,
            headers=error.headers,
            url=error.url,
            retryable=error.retryable,
            retry_after=error.retry_after,
        )
    safe = all(redact_text(str(item), known) == str(item) for item in _chain(cause))
    error.__cause__ = cause if safe else None
    return error
