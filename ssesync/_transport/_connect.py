"""Abortable connection attempts, and the urllib3 pools whose connections are.

``close()`` and ``reconnect()`` must unblock a read even when the server is
silent, and also a connection attempt that is still connecting, shaking
hands over TLS or waiting for the response headers. Each attempt has an
:class:`Attempt` object. The sockets our own connection classes open register
with the attempt of the thread that opens them before they connect (for TLS,
a duplicate of the descriptor, since wrapping moves it to a new socket
object), and the response registers once it exists. ``Attempt.abort()``
shuts those sockets down, which makes a blocked ``connect``, handshake or
``recv`` in the reading thread return at once; the reading thread then closes
them itself, so a descriptor is never closed under a thread that still uses
it. A caller's own pool manager or session has connection classes of its
own; their sockets are registered from the audit events of the connect and
the send (``_watch.sockets_watched``, docs/guide/transports.rst).
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
from typing import Any, Optional, Union
from urllib.parse import unquote

import urllib3
from urllib3 import exceptions as u3exc
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.connection import allowed_gai_family

from ._errors import redact_text, redact_url, url_secrets
from ._pool_queue import LightQueue
from ._protocol import Stream
from ._response import _FinalResponse

__all__ = [
    "Attempt", "build_pool_manager", "connect_failure", "duplicate_socket", "proxy_settings",
    "registers_sockets",
]

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

    def attach_socket(
        self, sock: Optional[socket.socket], duplicate: bool = False
    ) -> Optional[socket.socket]:
        """Shut ``sock`` down on :meth:`abort`; returns what was registered, if anything.

        :param duplicate: hold a duplicate of the descriptor instead of the
            socket object: TLS wraps a socket by moving its descriptor to a new
            object, which leaves the one registered here detached. Shutting
            down the duplicate still ends the connection. Duplicates are
            closed by :meth:`release`.
        """
        if sock is None:
            return None
        if duplicate:
            sock = duplicate_socket(sock)
            if sock is None:
                return None
        with self._lock:
            if not self._aborted and not self._released:
                if sock not in self._sockets:
                    self._sockets.append(sock)
                if duplicate:
                    self._duplicates.append(sock)
                return sock
            aborted = self._aborted
        if aborted:
            _shutdown(sock)
        if duplicate:
            sock.close()
        return None

    def detach_socket(self, sock: socket.socket) -> None:
        """No longer shut ``sock`` down on :meth:`abort`; close it if it is a duplicate."""
        with self._lock:
            if sock in self._sockets:
                self._sockets.remove(sock)
            duplicate = sock in self._duplicates
            if duplicate:
                self._duplicates.remove(sock)
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


def duplicate_socket(sock: socket.socket) -> Optional[socket.socket]:
    """A second socket object on a duplicate of ``sock``'s descriptor, or ``None``.

    Both descriptors share one open file, and with it the non-blocking flag:
    a new socket object sets that flag by the default timeout
    (:func:`socket.setdefaulttimeout`), so the original's own mode is set
    again, or its blocking ``connect()`` would fail with ``EINPROGRESS``.
    """
    try:
        copy = socket.fromfd(sock.fileno(), sock.family, sock.type)
    except OSError:
        return None
    try:
        copy.settimeout(sock.gettimeout())
    except OSError:
        copy.close()
        return None
    return copy


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except (OSError, ValueError, AttributeError):
        pass  # already closed, or never connected: nothing to unblock


# The attempt of the thread that is currently inside Transport.open().
_current = threading.local()


def _let_go(connection: Any) -> None:
    """A connection going back to the pool: unregister it from the attempt it was registered with.

    urllib3 returns connections inside ``urlopen()`` (a redirect it
    followed) and inside a read (the end of a body meant for reuse), while
    the attempt goes on; another source may take the connection from the
    pool at once, and an abort of this attempt must not reach it there
    (see :class:`Attempt`).
    """
    attempt: Optional[Attempt] = getattr(connection, "_registered_with", None)
    if attempt is not None:
        registered: list[socket.socket] = connection._registered
        connection._registered, connection._registered_with = [], None
        for sock in registered:
            attempt.detach_socket(sock)


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
        self._registered: list[socket.socket] = []
        self._registered_with: Optional[Attempt] = attempt
        try:
            sock = _open_socket(
                self._dns_host, self.port, self.timeout, self.source_address,
                self.socket_options, attempt, isinstance(self, HTTPSConnection),
                self._registered,
            )
        except OSError as exc:
            raise connect_failure(exc, self.host, self, self.timeout) from exc
        sys.audit("http.client.connect", self, self.host, self.port)
        return sock

    response_class = _FinalResponse
    _sent_close = False

    def request(
        self, method: str, url: str, body: Any = None, headers: Any = None, **options: Any
    ) -> None:
        self._sent_close = _says_close(headers)
        super().request(method, url, body=body, headers=headers, **options)

    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        attempt: Optional[Attempt] = getattr(_current, "attempt", None)
        registered = attempt.attach_socket(self.sock) if attempt is not None else None
        if registered is not None:
            if getattr(self, "_registered_with", None) is not attempt:
                self._registered, self._registered_with = [], attempt
            self._registered.append(registered)
        response = super().getresponse(*args, **kwargs)
        if self._sent_close:
            # We said we would close this connection: urllib3 would drain a
            # redirect's body (waiting for all of it) and then send the next
            # request on it. Close it instead; the next request opens anew.
            self._sent_close = False
            if type(response) is urllib3.HTTPResponse:
                response.__class__ = _ClosingResponse
        return response


def _says_close(headers: Any) -> bool:
    """Whether request ``headers`` have a ``Connection`` header with ``close`` in it."""
    for name, value in (headers or {}).items():
        if len(name) == 10 and name.lower() in ("connection", b"connection"):
            text = value if isinstance(value, bytes) else str(value).encode("latin-1", "replace")
            if b"close" in text.lower():
                return True
    return False


class _ClosingResponse(urllib3.HTTPResponse):
    """The response to a request that said ``Connection: close``.

    urllib3 drains a redirect before it follows it, to reuse the connection;
    this one is closed instead (no wait for its body), and goes back to the
    pool closed. (A class rather than a function set on the response: that
    would tie the response to itself, for the garbage collector to free.)
    """

    def drain_conn(self) -> None:
        self.close()  # the connection too
        self.release_conn()


def _open_socket(
    host: str,
    port: int,
    timeout: Any,
    source_address: Optional[tuple[str, int]],
    options: Any,
    attempt: Attempt,
    tls: bool,
    registered: list[socket.socket],
) -> socket.socket:
    """Connect to ``host``, as urllib3 does, registering each socket first (in ``registered``)."""
    host = host.strip("[]")
    error: Optional[OSError] = None
    for family, kind, proto, _, address in socket.getaddrinfo(
        host, port, allowed_gai_family(), socket.SOCK_STREAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            attached = attempt.attach_socket(sock, duplicate=tls)
            if attached is not None:
                registered.append(attached)
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


def connect_failure(
    exc: OSError, host: str, connection: Any = None, timeout: Any = None
) -> u3exc.HTTPError:
    """The urllib3 error for a connect that failed with ``exc``, as urllib3 raises it.

    Both connect paths (urllib3's, through :class:`_SocketWatcher`, and the
    hub's own in ``_lean``) report their failures through this, so that
    :func:`~ssesync._transport._errors.urllib3_error` words them alike.
    """
    reason: u3exc.HTTPError
    if isinstance(exc, socket.gaierror):
        reason = u3exc.NameResolutionError(host, connection, exc)
    elif isinstance(exc, socket.timeout):
        reason = u3exc.ConnectTimeoutError(
            connection, f"Connection to {host} timed out. (connect timeout={timeout})"
        )
    else:
        reason = u3exc.NewConnectionError(
            connection, f"Failed to establish a new connection: {exc}"
        )
    reason.__cause__ = exc
    return reason


_WatchedHTTPConnection = _SocketWatcher


class _WatchedHTTPSConnection(_SocketWatcher, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection
    QueueCls = LightQueue  # type: ignore[assignment]

    def _put_conn(self, conn: Any) -> None:
        _let_go(conn)
        super()._put_conn(conn)


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection
    QueueCls = LightQueue  # type: ignore[assignment]

    def _put_conn(self, conn: Any) -> None:
        _let_go(conn)
        super()._put_conn(conn)


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
        # CERT_NONE alone: urllib3 matches no hostname then. (assert_hostname
        # too would reach plain HTTP connections on urllib3 before 2.4, whose
        # pool manager does not strip it for http://, and fail there.)
        kwargs["cert_reqs"] = "CERT_NONE"
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


def registers_sockets(manager: urllib3.PoolManager) -> bool:
    """Whether the connections of ``manager`` register their sockets, as ours do."""
    classes = getattr(manager, "pool_classes_by_scheme", None) or {}
    return classes.get("http") is _WatchedHTTPPool and classes.get("https") is _WatchedHTTPSPool


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
        reason = redact_text(str(exc), url_secrets(proxy))
        raise ValueError(f"invalid proxy URL {redact_url(proxy)}: {reason}") from None
    if parsed.auth is None:
        return proxy, None
    user, _, password = parsed.auth.partition(":")
    credentials = f"{unquote(user)}:{unquote(password)}"
    headers: dict[str, str] = urllib3.make_headers(proxy_basic_auth=credentials)
    return parsed._replace(auth=None).url, headers
