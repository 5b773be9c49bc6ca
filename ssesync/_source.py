"""EventSource: the facade. Options in, state out, start/close, iteration.

Everything a source does happens in the parts behind it (docs/architecture.rst
draws the pipeline): ``_request``, ``_transport``, ``_parser``, ``_dedupe``
and ``_loop``, driven by ``_drive`` (iteration, a thread) or a ``Hub``, with
events going out through ``_sinks`` to the handlers of ``_handlers``.

Threads and closing. ``close()`` may run in any thread, a handler's
included. It only sets flags, wakes a wait and aborts the attempt in
progress (its sockets are shut down, so a blocked read returns); the driver
notices, stops, and releases the connection in its own thread, so a
descriptor is never closed under a thread still using it. Called from
another thread while the background thread runs, it then joins that
thread, which is what guarantees that no handler runs after it returns
``True``; a ``timeout`` bounds that wait, so a handler that needs a lock the
closing thread holds cannot hang it. No lock is held while user code runs.

No cycles. The driver refers to the loop, never to the source, and the
handler registry refers to the source weakly; only a running background
thread holds the source. So the last reference to an iterated source going
away frees it at once, and with it the connection.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

import urllib3

from ._drive import (
    QueueIterator,
    deliver_all,
    leaving_closes,
    open_until_ready,
    read_into,
    run,
    settle,
    stop_thread,
)
from ._event import Comment, Event, ReadyState
from ._handlers import Handler, HandlerRegistry
from ._loop import ReadLoop, Response
from ._request import (
    DEFAULT_MAX_EVENT_SIZE,
    DEFAULT_TIMEOUT,
    Body,
    HeadersOption,
    Options,
    RequestPlan,
    check_callable,
    check_headers,
    check_seconds,
)
from ._sinks import CallbackSink, Dispatcher, DispatcherSink, IterationSink, QueueSink
from ._transport import TRANSPORT_OPTIONS, Timeout, Transport, open_transport, redact_url

if TYPE_CHECKING:
    from ._hub import Hub

__all__ = ["EventSource"]

log = logging.getLogger("ssesync")

F = TypeVar("F", bound=Callable[..., Any])


class EventSource:
    """A server-sent event stream: iterate it, or start it with handlers.

    The constructor does no I/O; iterating or :meth:`start` connects. Every
    option is a keyword argument, and each is checked here: a wrong one
    raises :class:`TypeError` or :class:`ValueError` naming it.

    :param url: the ``http://`` or ``https://`` URL of the stream.
    :param method: the HTTP method; the body is re-sent on every reconnect.
    :param headers: extra request headers (:attr:`headers`: change them to
        apply from the next connection, or :meth:`reconnect` at once), or a
        callable returning them, called before every connection.
    :param params: query parameters added to the URL.
    :param data: a request body: ``bytes``, ``str`` (sent as UTF-8) or a form
        mapping / list of pairs (sent urlencoded).
    :param json: a request body encoded as JSON.
    :param last_event_id: sent as ``Last-Event-ID`` on the first request.
    :param reconnect: reconnect when the stream ends or breaks.
    :param retry_delay: the reconnection time in ms; a server ``retry:``
        field replaces it. Every reconnect waits at least this long.
    :param max_retry_delay: the cap of the exponential backoff in ms.
    :param max_retries: consecutive failed attempts before giving up
        (``None``: never give up; ``0``: no retry after a failure).
    :param timeout: seconds, or ``(connect, read)``; a read timeout counts as
        a broken stream. ``None`` waits forever.
    :param dedupe: skip replays of delivered events (see the reconnect guide).
    :param strict: raise :class:`~ssesync.SSEParsingError` on violations of
        the format that the specification says to ignore.
    :param max_event_size: the longest line or event accepted, in characters.
    :param keep_connection: return a cleanly finished connection to the pool
        instead of closing it (experimental).
    :param pool_manager: a :class:`urllib3.PoolManager` or
        :class:`urllib3.ProxyManager` to send through; it is not closed with
        the source.
    :param session: a ``requests.Session`` to send through instead of urllib3.
    :param verify: verify TLS certificates (``True``), don't (``False``), or
        the path of a CA bundle to verify with.
    :param cert: a client certificate: a PEM path, or ``(cert, key)`` paths.
    :param proxy: an HTTP(S) proxy URL; credentials in it are sent as
        ``Proxy-Authorization``. The environment (``HTTPS_PROXY``) is not read.
    :param ca_certs: a CA bundle path.
    :param ssl_context: an :class:`ssl.SSLContext` to use as it is.
    :param hub: a :class:`~ssesync.Hub` whose one thread reads this source
        once it is started, with thousands of others; it shares the hub's
        connection pool unless given transport options of its own. Such a
        source is started, not iterated.
    :param dispatcher: a callable that receives a zero-argument function for
        each event and each hook call, in stream order, and runs it where the
        application wants: an executor's ``submit``, or a ready dispatcher of
        :mod:`ssesync.dispatchers` for a GUI thread. It must not wait for that
        thread: ``close()`` there waits for the reader, and the two would
        wait for each other. By default handlers run on the reading thread.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: HeadersOption = None,
        params: Union[Mapping[str, Any], list[tuple[str, Any]], None] = None,
        data: Body = None,
        json: Any = None,
        last_event_id: Optional[str] = None,
        reconnect: bool = True,
        retry_delay: float = 3000,
        max_retry_delay: float = 30000,
        max_retries: Optional[int] = None,
        timeout: Union[float, Timeout, urllib3.Timeout, None] = DEFAULT_TIMEOUT,
        dedupe: bool = True,
        strict: bool = False,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        keep_connection: bool = False,
        pool_manager: Optional[urllib3.PoolManager] = None,
        session: Any = None,
        verify: Union[bool, str] = True,
        cert: Union[str, tuple[str, str], None] = None,
        proxy: Optional[str] = None,
        ca_certs: Optional[str] = None,
        ssl_context: Any = None,
        dispatcher: Optional[Dispatcher] = None,
        hub: Optional[Hub] = None,
        _transport: Optional[Transport] = None,
    ) -> None:
        given = locals()  # every option, by name: checked, then kept in their parts
        self._options, kept_headers = Options.of_source(
            url, headers, {name: given[name] for name in Options.SOURCE_OPTIONS}
        )
        check_callable(dispatcher, "dispatcher")
        transport_options = {name: given[name] for name in TRANSPORT_OPTIONS}
        if hub is not None:
            from ._hub import Hub  # loaded with ssesync.Hub: most programs never load it
            _transport = Hub.check(hub, transport_options) or _transport
        self._owns_transport = _transport is None
        self._transport = _transport or open_transport(**transport_options)
        self._hub = hub
        self._hub_entry: Any = None
        self.url = url
        self._plan = RequestPlan(self._options, kept_headers)
        self._dispatcher = dispatcher
        self._registry = HandlerRegistry(self)
        self._lock = threading.Lock()
        self._loop: Optional[ReadLoop] = None
        self._iterator: Optional[Iterator[Event]] = None
        self._thread: Optional[threading.Thread] = None
        self._thread_pid = os.getpid()
        self._closed = False

    # -- public state ----------------------------------------------------------------
    @property
    def headers(self) -> Any:
        """The request headers of the next connection (a mutable mapping), or the callable."""
        return self._plan.headers

    @headers.setter
    def headers(self, value: HeadersOption) -> None:
        self._plan.headers = check_headers(value)

    @property
    def ready_state(self) -> ReadyState:
        """``CONNECTING``, ``OPEN`` or ``CLOSED``, as the browser's ``readyState``."""
        loop = self._loop
        if loop is not None:
            return loop.state
        return ReadyState.CLOSED if self._closed else ReadyState.CONNECTING

    @property
    def last_event_id(self) -> str:
        """The current last event ID: the option's value until the server sends one."""
        loop = self._loop
        return self._options.last_event_id if loop is None else loop.last_event_id

    @property
    def response(self) -> Optional[Response]:
        """The current (or last) connection's ``status``, ``headers`` and final ``url``."""
        loop = self._loop
        return None if loop is None else loop.response

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or the source has finished."""
        loop = self._loop
        return self._closed or (loop is not None and loop.closing)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)} {self.ready_state.name}>"

    # -- handlers and hooks ------------------------------------------------------------
    def on(self, type: str, handler: Optional[F] = None) -> Any:
        """Call ``handler(event)`` for each event of ``type``, in registration order.

        Events without an ``event:`` field have the type ``"message"``. The
        handler is held strongly (a lambda keeps working) and is returned, so
        ``on`` also works as a decorator: ``@source.on("update")``. Safe from
        any thread while events flow.
        """
        return self._registry.on(type, handler)

    def off(self, type: str, handler: Handler) -> None:
        """Stop calling ``handler`` for events of ``type``."""
        self._registry.off(type, handler)

    def on_open(self, hook: F) -> F:
        """Call ``hook(source)`` each time a connection opens."""
        return self._registry.add_hook("open", hook)

    def on_error(self, hook: F) -> F:
        """Call ``hook(source, exc)`` for every error, also those a reconnect follows.

        During the call, :attr:`ready_state` reads ``CONNECTING`` when a
        reconnect follows and ``CLOSED`` when the error ended the source. A
        handler's exception comes here too.
        """
        return self._registry.add_hook("error", hook)

    def on_comment(self, hook: F) -> F:
        """Call ``hook(source, text)`` for each comment line (``: text``), when complete."""
        return self._registry.add_hook("comment", hook)

    def on_close(self, hook: F) -> F:
        """Call ``hook(source)`` once, when the source has closed for good."""
        return self._registry.add_hook("close", hook)

    # -- iteration -----------------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        with self._lock:
            if self._hub is not None:
                raise RuntimeError(
                    "a source with hub= is started, not iterated: its hub reads it"
                )
            if self._thread is not None:
                raise RuntimeError(
                    "this EventSource was started: its events go to its handlers, "
                    "it cannot be iterated too"
                )
            if self._iterator is None:
                if self._closed:
                    return iter(())
                loop = self._loop or self._new_loop()
                self._iterator = run(loop, self._transport)
            return self._iterator

    def __next__(self) -> Event:
        return next(iter(self))

    def stream(self, idle: Optional[float] = None) -> Iterator[Union[Event, Comment, None]]:
        """Iterate like ``iter(source)``, but yield comments too, in stream order.

        For relays (see the relay guide): each item's ``to_sse()`` writes it
        on. With ``idle`` (seconds), ``None`` is yielded whenever that long
        passes with nothing read, so a relay can write a keep-alive — and so
        learn that its client left — while the upstream is silent; a thread
        then reads the stream (the hooks run there) into a bounded queue.
        Leaving the loop closes the upstream connection at once.

        :raises SSEError: the error the source ended with, as iteration does.
        """
        check_seconds(idle, "idle")
        with self._lock:
            if self._hub is not None:
                raise RuntimeError("a source with hub= is read by its hub: it cannot stream()")
            if self._thread is not None or self._iterator is not None:
                raise RuntimeError("this EventSource is already started or iterated")
            if self._closed:
                return iter(())
            loop = self._loop or self._new_loop()
            if idle is None:
                inner = run(loop, self._transport, comments=True)
                self._iterator = inner
                return leaving_closes(inner)
            sink = QueueSink(self._registry, loop)
            loop.sink = sink
            thread = self._spawn(read_into, loop, self._transport, sink)
        thread.start()
        return QueueIterator(loop, sink, thread, idle)

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _new_loop(self) -> ReadLoop:
        loop = ReadLoop(
            self._options,
            self._plan,
            self._transport,
            IterationSink(self._registry),
            owns_transport=self._owns_transport,
            last_event_id=self._options.last_event_id,
        )
        self._loop = loop
        return loop

    def _open_now(self) -> None:
        """Connect in the caller's thread, before iteration or :meth:`start`.

        For :meth:`~ssesync.SSEClient.connect`. A failure that ends the
        source is raised here; a ``204`` ends the source at once.
        """
        with self._lock:
            loop = self._loop or self._new_loop()
        open_until_ready(loop, self._transport)

    # -- the background thread -------------------------------------------------------
    def start(self) -> EventSource:
        """Read in a background thread and dispatch each event to its handlers.

        Returns the source, so ``source = EventSource(url).start()`` works.
        Again before ``close()`` it does nothing; after, it raises RuntimeError.
        """
        with self._lock:
            streamed = isinstance(getattr(self._loop, "sink", None), QueueSink)
            if self._iterator is not None or streamed:
                raise RuntimeError("this EventSource is being iterated; it cannot be started")
            started = self._thread is not None or self._hub_entry is not None
            if self._closed or (self.closed and not started):
                raise RuntimeError("a closed EventSource cannot be started")
            if started:
                return self
            loop = self._loop or self._new_loop()
            sink: CallbackSink
            if self._dispatcher is not None:
                sink = DispatcherSink(self._registry, loop, self._dispatcher)
            else:
                sink = CallbackSink(self._registry, loop)
            loop.sink = sink
            if self._hub is not None:
                self._hub_entry = self._hub.run(self, loop, sink, self._transport)
                return self
            thread = self._spawn(self._thread_main)
        thread.start()
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        """The reading thread of this source (lock held), not yet started."""
        self._thread = threading.Thread(
            target=target, args=args, name=f"ssesync-{redact_url(self.url)}", daemon=True
        )
        self._thread_pid = os.getpid()
        return self._thread

    def _thread_main(self) -> None:
        # A bound method: the running thread keeps the source alive.
        loop = self._loop
        assert loop is not None
        assert isinstance(loop.sink, CallbackSink)
        deliver_all(loop, self._transport, loop.sink)

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait until the source has finished; ``True`` when it has."""
        thread = self._thread
        if thread is not None:
            if thread is threading.current_thread():
                raise RuntimeError("join() called from the source's own thread would wait forever")
            thread.join(timeout)
            return not thread.is_alive()
        loop = self._loop
        if loop is None:
            return self._closed
        if self._hub_entry is not None and self._hub is not None and self._hub.in_thread():
            raise RuntimeError("join() called from the hub's thread would wait forever")
        return loop.done.wait(timeout)

    # -- closing ---------------------------------------------------------------------------
    def close(self, timeout: Optional[float] = None) -> bool:
        """Stop the source; safe from any thread, also from a handler, and idempotent.

        It interrupts a connect, a read or a wait at once; :attr:`ready_state`
        reads ``CLOSED`` when it returns. From another thread it waits for a
        running handler and returns ``True`` once no handler runs any more;
        with a ``timeout`` it returns ``False`` if one still runs then, and
        logs a warning naming its event type. From a handler it returns
        ``False`` at once: the source cannot stop while its handler runs.
        """
        with self._lock:
            self._closed = True
            loop, thread, iterator = self._loop or self._new_loop(), self._thread, self._iterator
        loop.close()
        self._registry.changed = True  # after loop.closing: see CallbackSink
        if self._hub_entry is not None and self._hub is not None:
            started = time.monotonic()
            stopped = self._hub.stop(self._hub_entry, timeout)
            return stopped and settle(loop, self._registry, self.url, timeout, started)
        if thread is not None:
            if os.getpid() != self._thread_pid:
                # A forked child: the thread did not come along, and the parent
                # still reads the connection. Let go of this copy, touching nothing.
                loop.finish()
                return True
            return stop_thread(loop, thread, self._registry, self.url, timeout)
        if iterator is not None and loop.driver_thread == threading.get_ident():
            try:
                iterator.close()  # type: ignore[attr-defined]  # runs its finally at once
            except ValueError:
                return False  # called from a hook inside the loop: it leaves by itself
        elif loop.driver_thread is None:
            loop.finish()  # opened by SSEClient.connect() but never read, or never run
        return True

    def reconnect(self) -> None:
        """Drop the current connection and connect again at once.

        The new request carries ``Last-Event-ID`` and the current
        :attr:`headers`; no error is reported for the dropped connection.
        """
        loop = self._loop
        if loop is not None:
            loop.request_reconnect()
