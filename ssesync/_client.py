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
from typing import Any, Optional

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
        ``ca_certs``, ``ssl_context``) shape the client's shared pool; a
        :meth:`connect` given some of its own gets a transport of the
        client's transport options with those replaced.

    Leaving ``with SSEClient() as client:`` closes every connection it made,
    then its pool.
    """

    def __init__(self, **defaults: Any) -> None:
        unknown = sorted(set(defaults) - _OPTIONS)
        if unknown:
            raise TypeError(f"unknown SSEClient option(s): {', '.join(unknown)}")
        transport_options = {k: defaults.pop(k) for k in list(defaults) if k in _TRANSPORT_OPTIONS}
        self._defaults = defaults
        self._transport_options = transport_options
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
        transport = self._connection_transport(
            {name: merged.pop(name) for name in _TRANSPORT_OPTIONS if name in options}
        )
        if transport is None:
            merged["_transport"] = self._transport
        else:
            merged.update(transport)
        connection = SSEConnection(url, **merged)
        with self._lock:
            self._connections.add(connection)
        connection._open_now()
        return connection

    def _connection_transport(self, given: dict[str, Any]) -> Optional[dict[str, Any]]:
        """The transport options of one connect(): ``None`` to share the client's.

        They are the client's, with those that connect() gives replacing
        them: ``connect(url, verify=False)`` on a client with a proxy still
        goes through the proxy. A combination that cannot hold both — the
        client's ``session=`` and a ``pool_manager=`` of connect()'s, or a
        client's pool manager and a ``proxy=`` of connect()'s — raises
        :class:`ValueError` naming both sides, rather than dropping one.
        """
        merged = {**self._transport_options, **given}
        if merged == self._transport_options:
            return None
        theirs = ", ".join(f"{name}=" for name in sorted(given))
        client = ", ".join(f"{name}=" for name in sorted(self._transport_options))
        if merged.get("session") is not None and merged.get("pool_manager") is not None:
            raise ValueError(
                f"connect({theirs}) cannot be combined with this SSEClient's {client}: "
                "give either session= or pool_manager=, not both"
            )
        try:  # the same checks as a source's (pool_manager= with proxy=, ...)
            open_transport(**merged).close()
        except ValueError as exc:
            raise ValueError(f"connect({theirs}) with this SSEClient's {client}: {exc}") from None
        return merged

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
