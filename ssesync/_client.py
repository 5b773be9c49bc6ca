"""SSEClient / SSEConnection: the shape of aiosonic's SSE client, synchronous.

An :class:`SSEClient` holds one connection pool (or a ``requests.Session``)
and default options; :meth:`SSEClient.connect` opens an :class:`SSEConnection`
eagerly, so the response has been received and checked when it returns. An
:class:`SSEConnection` is an :class:`~ssesync.EventSource` in every other way:
iterate it, or give it handlers and start it.
"""

from __future__ import annotations

import inspect
import threading
import weakref
from typing import Any

from ._source import EventSource
from ._transport import Transport, Urllib3Transport, open_transport

__all__ = ["SSEClient", "SSEConnection"]

#: Options that shape the transport; a connect() given any of them gets its own.
_TRANSPORT_OPTIONS = frozenset(
    {"pool_manager", "session", "verify", "cert", "proxy", "ca_certs", "ssl_context"}
)
#: Every option connect() takes: those of EventSource.
_OPTIONS = frozenset(
    name for name in inspect.signature(EventSource.__init__).parameters
    if name not in ("self", "url") and not name.startswith("_")
)  # fmt: skip
#: Connections one client keeps open to the same host before opening extra ones.
POOL_SIZE = 10


class SSEConnection(EventSource):
    """An event stream opened by :meth:`SSEClient.connect`; an open :class:`EventSource`."""


class SSEClient:
    """A connection pool and default options for the streams it opens.

    :param defaults: any :class:`~ssesync.EventSource` option, used by every
        :meth:`connect` unless it gives its own. Transport options
        (``pool_manager``, ``session``, ``verify``, ``cert``, ``proxy``,
        ``ca_certs``, ``ssl_context``) shape the client's shared pool.

    Leaving ``with SSEClient() as client:`` closes every connection it made,
    then its pool.
    """

    def __init__(self, **defaults: Any) -> None:
        unknown = sorted(set(defaults) - _OPTIONS)
        if unknown:
            raise TypeError(f"unknown SSEClient option(s): {', '.join(unknown)}")
        transport_options = {k: defaults.pop(k) for k in list(defaults) if k in _TRANSPORT_OPTIONS}
        self._defaults = defaults
        self._lock = threading.Lock()
        self._connections: weakref.WeakSet[SSEConnection] = weakref.WeakSet()
        self._closed = False
        self._transport: Transport = open_transport(**transport_options, maxsize=POOL_SIZE)
        # The pool belongs to this client, unless the caller gave one.
        self._owns_pool = not {"pool_manager", "session"} & set(transport_options)
        # Check every default now, not at the first connect(): a source
        # built with them (and the client's transport) checks them all.
        EventSource("http://localhost/", **defaults, _transport=self._transport)

    def connect(self, url: str, **options: Any) -> SSEConnection:
        """Open a stream and return it once its response has been checked.

        Takes every :class:`~ssesync.EventSource` option. With
        ``reconnect=False`` a failure raises
        :class:`~ssesync.SSEConnectionError` here; with ``reconnect=True``
        (the default) it retries with the configured delays first.
        """
        if self._closed:
            raise RuntimeError("this SSEClient is closed")
        merged = {**self._defaults, **options}
        if not _TRANSPORT_OPTIONS.intersection(options):
            merged["_transport"] = self._transport
        connection = SSEConnection(url, **merged)
        with self._lock:
            self._connections.add(connection)
        connection._open_now()
        return connection

    def close(self) -> None:
        """Close every connection this client opened, then its pool."""
        with self._lock:
            self._closed = True
            connections = list(self._connections)
        for connection in connections:
            connection.close()
        if self._owns_pool:
            assert isinstance(self._transport, Urllib3Transport)
            self._transport.pool_manager.clear()

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
