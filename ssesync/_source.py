"""EventSource: the one read loop, driven by iteration or by a thread.

There is exactly one loop, :meth:`EventSource._run`, a generator that
connects, reads, parses, deduplicates, reconnects with backoff and yields
events. ``for event in source`` iterates that generator in the caller's
thread; :meth:`EventSource.start` iterates it in a daemon thread and hands
each event to the handlers of its type. Lifecycle hooks (open, error,
comment, close) are called by the loop itself, so they run in whichever
thread drives it.

Closing. :meth:`EventSource.close` may run in any thread, including a handler
running inside the loop. It only sets a flag, wakes a backoff sleep and aborts
the current attempt (which shuts its socket down, see ``_transport``); the
loop notices, leaves, and its ``finally`` clause releases the connection and
runs the close hooks, in the loop's own thread. When ``close()`` is called
from another thread while a background thread runs the loop, it then joins
that thread, which is what guarantees that no handler runs after it returns.
No lock is held while user code runs, so a handler may call ``close()`` or
``reconnect()`` freely.
"""

from __future__ import annotations

import functools
import json as _json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, Callable, NoReturn, Optional, TypeVar, Union
from urllib.parse import urlencode, urlsplit

import blinker
import urllib3
from urllib3 import HTTPHeaderDict

from ._event import Event, ReadyState
from ._parser import DEFAULT_MAX_EVENT_SIZE, Parser
from ._retry import HEALTHY_AFTER, Backoff
from ._transport import (
    Attempt,
    Request,
    Stream,
    Timeout,
    Transport,
    Urllib3Transport,
    check_response,
    redact_url,
)
from .exceptions import SSEConnectionError, SSEError

__all__ = ["DEDUPE_WINDOW", "EventSource"]

log = logging.getLogger("ssesync")

#: How many recent event ids are at least remembered to skip replays after
#: reconnects (up to twice as many are).
DEDUPE_WINDOW = 4096
#: The default timeouts in seconds: (connect, read).
DEFAULT_TIMEOUT: Timeout = (10.0, 300.0)

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Event], Any]
Dispatcher = Callable[[Callable[[], None]], Any]
Body = Union[bytes, str, Mapping[str, Any], list[tuple[str, Any]], None]


def _normalise_timeout(timeout: Union[float, Timeout, urllib3.Timeout, None]) -> Timeout:
    if timeout is None:
        return (None, None)
    if isinstance(timeout, urllib3.Timeout):
        connect = timeout.connect_timeout
        read = timeout.read_timeout
        return (
            connect if isinstance(connect, (int, float)) else None,
            read if isinstance(read, (int, float)) else None,
        )
    if isinstance(timeout, (int, float)):
        return (float(timeout), float(timeout))
    connect, read = timeout
    return (connect, read)


def _encode_body(
    data: Body, json: Any, headers: MutableMapping[str, str]
) -> Optional[bytes]:
    if data is not None and json is not None:
        raise ValueError("give either data= or json=, not both")
    if json is not None:
        headers.setdefault("Content-Type", "application/json")
        return _json.dumps(json, separators=(",", ":")).encode("utf-8")
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
    return urlencode(data, doseq=True).encode("ascii")


def _check_header_value(name: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\0" in value:
        raise ValueError(f"{name} must not contain CR, LF or NUL")


def _wire_value(value: Any) -> Union[str, bytes]:
    """Header values outside ASCII go out as UTF-8 (http.client would refuse them)."""
    if isinstance(value, str) and not value.isascii():
        return value.encode("utf-8")
    return value  # type: ignore[no-any-return]


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _header_problem(headers: Mapping[str, Any]) -> Optional[str]:
    """What is wrong with ``headers`` (naming the header, never its value)."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"invalid header name {str(name)[:60]!r}"
        if not isinstance(value, (str, bytes)):
            return f"the value of header {name} must be str or bytes"
        text = value if isinstance(value, str) else value.decode("latin-1")
        if "\r" in text or "\n" in text or "\0" in text:
            return f"the value of header {name} contains CR, LF or NUL"
    return None


class _RecentIds:
    """A bounded memory of delivered event ids.

    The read loop adds to :attr:`ids` and :attr:`order` itself (it runs once
    per event) and calls :meth:`forget_old` when ``order`` outgrows
    :attr:`limit`: old ids are forgotten in bulk, so the memory holds between
    :data:`DEDUPE_WINDOW` and twice that many of the newest ids, at an
    amortised constant cost per event.
    """

    __slots__ = ("ids", "order")

    limit = 2 * DEDUPE_WINDOW

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.order: list[str] = []

    def forget_old(self) -> None:
        self.ids.difference_update(self.order[:-DEDUPE_WINDOW])
        del self.order[:-DEDUPE_WINDOW]


class EventSource:
    """A server-sent event stream: iterate it, or start it with handlers.

    The constructor does no I/O; iterating or :meth:`start` connects. Every
    option is a keyword argument:

    :param url: the ``http://`` or ``https://`` URL of the stream.
    :param method: the HTTP method; the body is re-sent on every reconnect.
    :param headers: extra request headers (kept in :attr:`headers`, which may
        be changed while the source runs; a change applies from the next
        connection — call :meth:`reconnect` to apply it at once).
    :param params: query parameters added to the URL.
    :param data: a request body: ``bytes``, ``str`` (sent as UTF-8) or a form
        mapping / list of pairs (sent urlencoded).
    :param json: a request body encoded as JSON.
    :param last_event_id: sent as ``Last-Event-ID`` on the first request.
    :param reconnect: reconnect when the stream ends or breaks.
    :param retry_delay: the base reconnect delay in ms; a server ``retry:``
        field replaces it.
    :param max_retry_delay: the cap of the exponential backoff in ms.
    :param max_retries: consecutive failed attempts before giving up
        (``None``: never give up).
    :param timeout: seconds, or ``(connect, read)``; a read timeout counts as
        a broken stream. ``None`` waits forever.
    :param dedupe: skip events already delivered (see the reconnect guide).
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
    :param dispatcher: a callable that receives a zero-argument function for
        each event and runs it where the application wants: an executor's
        ``submit``, or a :class:`queue.Queue`'s ``put`` that a GUI thread
        drains. It must not wait for the GUI thread (Tk's ``after`` called
        from another thread does): ``close()`` on the GUI thread waits for the
        reader, and the two would wait for each other. By default handlers
        run on the reading thread.
    """

    def __init__(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Optional[Mapping[str, str]] = None,
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
        _transport: Optional[Transport] = None,
    ) -> None:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            raise ValueError(f"ssesync needs an http:// or https:// URL, got {redact_url(url)!r}")
        if max_event_size <= 0:
            raise ValueError("max_event_size must be positive")
        self.url = url
        problem = _header_problem(dict(headers or {}))
        if problem:
            raise ValueError(problem)
        self.headers: MutableMapping[str, str] = HTTPHeaderDict(dict(headers or {}))
        if last_event_id is None:
            # A Last-Event-ID given among the headers is the starting id.
            last_event_id = self.headers.pop("Last-Event-ID", None)
        else:
            self.headers.pop("Last-Event-ID", None)
        if last_event_id is not None:
            _check_header_value("last_event_id", last_event_id)
        self._method = method.upper()
        self._request_url = url
        if params:
            self._request_url += ("&" if urlsplit(url).query else "?") + urlencode(
                params, doseq=True
            )
        self._body_headers: dict[str, str] = {}
        self._body = _encode_body(data, json, self._body_headers)
        self._timeout = _normalise_timeout(timeout)
        self._reconnect = reconnect
        self._backoff = Backoff(retry_delay, max_retry_delay, max_retries)
        self._dedupe = dedupe
        self._strict = strict
        self._max_event_size = max_event_size
        self._keep_connection = keep_connection
        self._dispatcher = dispatcher
        self._last_event_id = last_event_id or ""

        self._transport: Transport
        self._owns_transport = _transport is None
        if _transport is not None:
            self._transport = _transport
        elif session is not None:
            from ._requests import RequestsTransport

            self._transport = RequestsTransport(
                session, verify=None if verify is True else verify, cert=cert, proxy=proxy
            )
        else:
            self._transport = Urllib3Transport(
                pool_manager,
                verify=verify,
                cert=cert,
                proxy=proxy,
                ca_certs=ca_certs,
                ssl_context=ssl_context,
            )

        self.ready_state = ReadyState.CONNECTING
        self._closing = False
        # Set after _closing or a change of handlers: the one flag the
        # dispatch of plain messages checks per event (_dispatch_messages).
        self._recheck = False
        self._reconnect_requested = False
        self._wake = threading.Event()
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._attempt: Optional[Attempt] = None
        self._gen: Optional[Iterator[Event]] = None
        self._loop_thread: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._finalized = False
        self._opened_stream: Optional[Stream] = None

        self._signals = blinker.Namespace()
        self._handlers: dict[str, tuple[Handler, ...]] = {}
        self._open_hooks: list[Callable[[EventSource], Any]] = []
        self._error_hooks: list[Callable[[EventSource, BaseException], Any]] = []
        self._comment_hooks: list[Callable[[EventSource, str], Any]] = []
        self._close_hooks: list[Callable[[EventSource], Any]] = []

    # -- public state ----------------------------------------------------------
    @property
    def last_event_id(self) -> str:
        """The current last event ID: the option's value until the server sends one."""
        return self._last_event_id

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called or the source has finished."""
        return self._closing or self._finalized

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)} {self.ready_state.name}>"

    # -- handlers and hooks ----------------------------------------------------
    def on(self, type: str, handler: Optional[F] = None) -> Any:
        """Call ``handler(event)`` for each event of ``type``.

        Events without an ``event:`` field have the type ``"message"``. The
        handler is held strongly (a lambda keeps working) and is returned, so
        ``on`` also works as a decorator: ``@source.on("update")``.
        """
        if handler is None:
            return functools.partial(self.on, type)
        self._signals.signal(type).connect(handler, weak=False)
        self._handlers.pop(type, None)
        self._recheck = True
        return handler

    def off(self, type: str, handler: Handler) -> None:
        """Stop calling ``handler`` for events of ``type``."""
        self._signals.signal(type).disconnect(handler)
        self._handlers.pop(type, None)
        self._recheck = True

    def on_open(self, hook: F) -> F:
        """Call ``hook(source)`` each time a connection opens."""
        self._open_hooks.append(hook)
        return hook

    def on_error(self, hook: F) -> F:
        """Call ``hook(source, exc)`` for every error, also those a reconnect follows.

        During the call, :attr:`ready_state` reads ``CONNECTING`` when a
        reconnect follows and ``CLOSED`` when the error ended the source.
        """
        self._error_hooks.append(hook)
        return hook

    def on_comment(self, hook: F) -> F:
        """Call ``hook(source, text)`` for each comment line (``: text``).

        A comment is reported with its block, when the blank line ending the
        block arrives (a keep-alive ``: ping`` plus a blank line at once).
        """
        self._comment_hooks.append(hook)
        return hook

    def on_close(self, hook: F) -> F:
        """Call ``hook(source)`` once, when the source has closed for good."""
        self._close_hooks.append(hook)
        return hook

    # -- iteration -------------------------------------------------------------
    def __iter__(self) -> Iterator[Event]:
        if self._thread is not None:
            raise RuntimeError(
                "this EventSource was started: its events go to its handlers, "
                "it cannot be iterated too"
            )
        if self._gen is None:
            self._gen = self._run()
        return self._gen

    def __next__(self) -> Event:
        return next(iter(self))

    def __enter__(self) -> EventSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the background thread -------------------------------------------------
    def start(self) -> EventSource:
        """Read in a background thread and dispatch each event to its handlers.

        Returns the source, so ``source = EventSource(url).start()`` works.
        Calling it again while the thread runs does nothing.
        """
        with self._lock:
            if self._thread is not None:
                return self
            if self.closed:
                raise RuntimeError("a closed EventSource cannot be started")
            if self._gen is not None:
                raise RuntimeError("this EventSource is being iterated; it cannot be started")
            self._gen = self._run(dispatch=True)
            self._thread = threading.Thread(
                target=self._thread_main,
                name=f"ssesync-{redact_url(self.url)}",
                daemon=True,
            )
        self._thread.start()
        return self

    def join(self, timeout: Optional[float] = None) -> bool:
        """Wait until the source has finished; ``True`` when it has."""
        thread = self._thread
        if thread is not None:
            if thread is threading.current_thread():
                raise RuntimeError("join() called from the source's own thread would wait forever")
            thread.join(timeout)
            return not thread.is_alive()
        if self._gen is None:
            return self._done.is_set()
        return self._done.wait(timeout)

    def _thread_main(self) -> None:
        assert self._gen is not None
        try:
            for _ in self._gen:  # the loop dispatches itself; it yields nothing
                pass
        except SSEError:
            pass  # already reported to the error hooks by the loop
        except BaseException as exc:  # a bug: report it rather than die silently
            log.exception("unexpected error in the ssesync reader thread")
            self._report_error(exc)

    def _receivers(self, type: str) -> tuple[Handler, ...]:
        handlers = tuple(self._signals.signal(type).receivers_for(blinker.ANY))
        self._handlers[type] = handlers
        return handlers

    def _dispatch(self, event: Event) -> None:
        type_ = event.type
        handlers = self._handlers.get(type_)
        if handlers is None:
            handlers = self._receivers(type_)
        for handler in handlers:
            try:
                handler(event)
            except Exception as exc:
                self._handler_failed(type_, exc)

    def _dispatch_messages(self, events: list[Event]) -> bool:
        """Dispatch a read's worth of ``message`` events; ``False`` if closed meanwhile.

        This is the callback path at high rates, so per event it checks one
        flag, ``_recheck``, instead of ``_closing`` and the handler cache.
        :meth:`close` sets it after ``_closing``, and :meth:`on` and
        :meth:`off` after changing the handlers; it is cleared *before*
        ``_closing`` and the handlers are read again, so a change made while
        that happens sets it anew and is seen at the next event.
        """
        handlers: tuple[Handler, ...] = ()
        handler: Optional[Handler] = None
        self._recheck = True
        for event in events:
            if self._recheck:
                self._recheck = False
                if self._closing:
                    return False
                handlers = self._handlers.get("message") or self._receivers("message")
                handler = handlers[0] if len(handlers) == 1 else None
            if handler is not None:
                try:
                    handler(event)
                except Exception as exc:
                    self._handler_failed("message", exc)
            else:
                for each in handlers:
                    try:
                        each(event)
                    except Exception as exc:
                        self._handler_failed("message", exc)
        return True

    def _handler_failed(self, type_: str, exc: Exception) -> None:
        log.error("a handler for %r events raised", type_, exc_info=exc)
        self._report_error(exc)

    def _dispatch_via(self, event: Event) -> None:
        def deliver() -> None:
            if not self._closing:
                self._dispatch(event)

        assert self._dispatcher is not None
        self._dispatcher(deliver)

    # -- closing ---------------------------------------------------------------
    def close(self) -> None:
        """Stop the source; safe from any thread, also from a handler, and idempotent.

        It interrupts a read or a backoff wait at once. Called from another
        thread than the one running the loop, it returns only when that
        thread has ended, so no handler runs after it returns.
        """
        with self._lock:
            self._closing = True
            self._recheck = True  # after _closing: see _dispatch_messages
            attempt = self._attempt
            thread = self._thread
            gen = self._gen
        self._wake.set()
        if attempt is not None:
            attempt.abort()
        current = threading.current_thread()
        if thread is not None:
            if thread is not current and thread.is_alive():
                thread.join()
            return
        if gen is None:
            self._finalize()
            return
        if self._loop_thread is None:
            # Created but never run: there is no loop to leave.
            self._finalize()
        elif self._loop_thread == current.ident:
            try:
                gen.close()  # type: ignore[attr-defined]
            except ValueError:
                pass  # called from a hook inside the loop: it will leave by itself

    def _open_now(self) -> None:
        """Connect in the caller's thread, before iteration or :meth:`start`.

        The opened stream is kept for the loop to read first. A failure that
        ends the source is raised here; a ``204`` ends the source at once.
        """
        try:
            stream = self._connect()
        except BaseException:
            self._finalize()
            raise
        if stream is None:
            self._closing = True
            self._finalize()
        self._opened_stream = stream

    def reconnect(self) -> None:
        """Drop the current connection and connect again at once.

        The new request carries ``Last-Event-ID`` and the current
        :attr:`headers`; no error is reported for the dropped connection.
        """
        if self._closing:
            return
        self._reconnect_requested = True
        self._wake.set()
        attempt = self._attempt
        if attempt is not None:
            attempt.abort()

    def _finalize(self) -> None:
        with self._lock:
            if self._finalized:
                return
            self._finalized = True
            stream, self._opened_stream = self._opened_stream, None
        self.ready_state = ReadyState.CLOSED
        if stream is not None:  # opened by SSEClient.connect(), never read
            self._end_attempt(stream)
        if self._owns_transport:
            self._transport.close()
        self._done.set()
        for hook in self._close_hooks:
            self._call_hook(hook, self)

    # -- hooks -----------------------------------------------------------------
    def _call_hook(self, hook: Callable[..., Any], *args: Any) -> None:
        try:
            hook(*args)
        except Exception as exc:
            log.exception("an ssesync hook raised")
            if hook not in self._error_hooks:
                self._report_error(exc)

    def _report_error(self, exc: BaseException) -> None:
        for hook in self._error_hooks:
            try:
                hook(self, exc)
            except Exception:
                log.exception("an on_error hook raised")

    # -- the read loop ---------------------------------------------------------
    def _run(self, dispatch: bool = False) -> Iterator[Event]:
        """Connect, read, parse, dedupe and reconnect: the one loop.

        Iteration gets each event yielded. With ``dispatch`` (the background
        thread) each event goes to its handlers right here instead, which
        spares a generator round trip per event on the callback path.
        """
        self._loop_thread = threading.get_ident()
        recent_ids = _RecentIds() if self._dedupe else None
        seen_ids = recent_ids.ids if recent_ids is not None else set()
        id_order = recent_ids.order if recent_ids is not None else []
        id_limit = _RecentIds.limit
        handler_cache = self._handlers
        dispatcher = self._dispatcher
        last_data: Optional[str] = None
        delivered_before = False
        try:
            while True:
                stream, self._opened_stream = self._opened_stream, None
                if stream is None:
                    stream = self._connect()
                if stream is None:
                    return
                parser = Parser(
                    last_event_id=self._last_event_id,
                    max_event_size=self._max_event_size,
                    strict=self._strict,
                )
                feed = parser.feed
                read = stream.read
                opened_at = time.monotonic()
                # Right after a reconnect, an id-less replay of the last
                # delivered data is skipped (API.md §4).
                check_replay = delivered_before
                delivered = False
                error: Optional[SSEError] = None
                try:
                    while True:
                        chunk = read()
                        if not chunk:
                            break
                        items = feed(chunk)
                        if parser.retry is not None:
                            self._backoff.set_server_delay(parser.retry)
                            parser.retry = None
                        if parser.plain and not check_replay and dispatcher is None:
                            # Only id-less "message" events: nothing to dedupe
                            # and the last event ID stays as it is.
                            if not items:
                                continue
                            messages: list[Event] = items  # type: ignore[assignment]
                            if not dispatch:
                                for message in messages:
                                    if self._closing:
                                        return
                                    yield message
                            elif not self._dispatch_messages(messages):
                                return
                            delivered = True
                            last_data = messages[-1].data
                            continue
                        for item in items:
                            if self._closing:
                                return
                            if item.__class__ is not Event:
                                self._comment(item)  # type: ignore[arg-type]
                                continue
                            self._last_event_id = item.last_event_id
                            if recent_ids is not None:
                                event_id = item.id
                                if event_id:
                                    if event_id in seen_ids:
                                        continue
                                    seen_ids.add(event_id)
                                    id_order.append(event_id)
                                    if len(id_order) > id_limit:
                                        recent_ids.forget_old()
                                elif check_replay and item.data == last_data:
                                    check_replay = False
                                    continue
                                check_replay = False
                                last_data = item.data
                            delivered = True
                            if not dispatch:
                                yield item
                            elif dispatcher is not None:
                                self._dispatch_via(item)
                            else:  # _dispatch, inlined: this runs once per event
                                type_ = item.type
                                handlers = handler_cache.get(type_)
                                if handlers is None:
                                    handlers = self._receivers(type_)
                                for handler in handlers:
                                    try:
                                        handler(item)
                                    except Exception as exc:
                                        self._handler_failed(type_, exc)
                        self._last_event_id = parser.last_event_id
                except SSEError as exc:
                    error = exc
                finally:
                    parser.end()
                    if parser.retry is not None:
                        self._backoff.set_server_delay(parser.retry)
                    self._end_attempt(
                        stream, reuse=self._keep_connection and error is None and not self._closing
                    )
                if delivered:
                    delivered_before = True
                if self._closing:
                    return
                if delivered or time.monotonic() - opened_at >= HEALTHY_AFTER:
                    self._backoff.reset()
                if self._take_reconnect_request():
                    continue
                if error is None:
                    if not self._reconnect:
                        log.info("the stream of %s ended", redact_url(self.url))
                        return
                    error = SSEConnectionError(
                        f"the server ended the stream of {redact_url(self.url)}",
                        url=redact_url(self.url),
                    )
                    self._after_failure(error, level=logging.INFO, opened=True)
                else:
                    self._after_failure(error, opened=True)
        finally:
            self._finalize()

    def _connect(self) -> Optional[Stream]:
        """Open the next connection, retrying as configured; ``None`` to stop."""
        while not self._closing:
            self.ready_state = ReadyState.CONNECTING
            self._reconnect_requested = False
            attempt = Attempt()
            with self._lock:
                if self._stopping():
                    return None
                self._attempt = attempt
            log.debug("connecting to %s", redact_url(self.url))
            try:
                request = self._build_request()
                stream = self._transport.open(request, attempt)
            except SSEConnectionError as exc:
                attempt.release()
                if self._stopping():
                    return None
                if self._take_reconnect_request():
                    continue
                self._after_failure(exc)
                continue
            if self._stopping():
                self._end_attempt(stream)
                return None
            if stream.status == 204:
                self._end_attempt(stream)
                log.info("%s answered 204 No Content: the stream is over", redact_url(self.url))
                return None
            try:
                check_response(stream, request.url)
            except SSEConnectionError as exc:
                self._end_attempt(stream)
                self._after_failure(exc)
                continue
            self.ready_state = ReadyState.OPEN
            log.info("connected to %s", redact_url(self.url))
            for hook in self._open_hooks:
                self._call_hook(hook, self)
            return stream
        return None

    def _end_attempt(self, stream: Stream, reuse: bool = False) -> None:
        """Release the response of the current attempt, and the attempt."""
        stream.close(reuse=reuse)
        attempt = self._attempt
        if attempt is not None:
            attempt.release()

    def _stopping(self) -> bool:
        """Whether close() was called (a call, so type checkers don't narrow it)."""
        return self._closing

    def _build_request(self) -> Request:
        headers: HTTPHeaderDict = HTTPHeaderDict(
            {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        )
        for name, value in self._body_headers.items():
            headers[name] = value
        for name, value in list(self.headers.items()):
            headers[name] = value
        problem = _header_problem(headers)
        if problem:  # source.headers was changed since the constructor checked it
            raise SSEConnectionError(problem, url=redact_url(self.url), retryable=False)
        headers.pop("Last-Event-ID", None)
        if not self._keep_connection:
            # Without it urllib3 would pool a cleanly finished connection and
            # the next reconnect would reuse it: keep_connection=True's job.
            headers.setdefault("Connection", "close")
        request_headers: dict[str, Union[str, bytes]] = {
            name: _wire_value(value) for name, value in headers.items()
        }
        if self._last_event_id:
            request_headers["Last-Event-ID"] = self._last_event_id.encode("utf-8")
        return Request(
            self._method,
            self._request_url,
            request_headers,
            self._body,
            self._timeout,
            reuse_connection=self._keep_connection,
        )

    def _take_reconnect_request(self) -> bool:
        if self._reconnect_requested and not self._closing:
            self._reconnect_requested = False
            log.info("reconnecting to %s on request", redact_url(self.url))
            return True
        return False

    def _after_failure(
        self, error: SSEError, level: int = logging.WARNING, opened: bool = False
    ) -> None:
        """Report ``error``, then wait before the next attempt or end the source.

        :param opened: the error ended a stream that had been opened, rather
            than an attempt to open one.
        """
        retryable = self._reconnect and getattr(error, "retryable", True)
        if not retryable:
            self._fail(error)
        delay = self._backoff.next_delay(getattr(error, "retry_after", None), opened=opened)
        if self._backoff.exhausted:
            give_up = SSEConnectionError(
                f"gave up {self._backoff.summary()}: {error}",
                status=getattr(error, "status", None),
                url=redact_url(self.url),
                retryable=False,
            )
            give_up.__cause__ = error
            self._fail(give_up)
        self.ready_state = ReadyState.CONNECTING
        self._report_error(error)
        log.log(level, "%s; reconnecting in %.2f s", error, delay)
        self._sleep(delay)

    def _fail(self, error: SSEError) -> NoReturn:
        self.ready_state = ReadyState.CLOSED
        self._report_error(error)
        log.error("%s", error)
        raise error

    def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if self._closing or self._reconnect_requested or seconds <= 0:
            return
        self._wake.wait(seconds)

    def _comment(self, text: str) -> None:
        for hook in self._comment_hooks:
            self._call_hook(hook, self, text)
