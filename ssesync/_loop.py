"""The read loop's logic: told what happened, it answers with the next step.

One source's whole behaviour between the transport and its handlers lives in
:class:`ReadLoop`: connecting (which request, which response counts),
parsing, filtering replays, the last event ID, ``retry:`` and backoff, when to
reconnect and when to give up. It does no blocking call of its own and knows
nothing of threads, blinker or selectors. Like h11's connection object it is
*told* what happened — a connection opened or failed
(:meth:`ReadLoop.opened`, :meth:`ReadLoop.open_failed`), bytes arrived
(:meth:`ReadLoop.received`), the stream ended or broke
(:meth:`ReadLoop.ended`), a wait is over (:meth:`ReadLoop.waited`) — and
answers with the next :class:`Step`: connect, read, wait
:attr:`ReadLoop.delay` seconds, or stop. A *driver* does the I/O in between:
``_drive.run`` with blocking calls, for iteration and for the background
thread, and the hub from a selector over many sockets.

Events leave through :meth:`ReadLoop.received`, which returns the items a
read completed (events and comments, in stream order, replays removed);
the driver hands them on — yields them, or gives them to a sink's
``deliver``. Lifecycle news (opened, an error, closed) goes to the
:class:`Sink` as it happens.

``close()`` and ``reconnect()`` may come from any thread, a handler's
included. They set a flag, wake the driver (:attr:`ReadLoop.wake`) and abort
the current attempt (``_transport.Attempt``: its sockets are shut down, so a
blocked connect or read returns at once); the driver notices at its next
step. :attr:`ReadLoop.state` reads ``CLOSED`` as soon as ``close()`` returns.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Union

from ._dedupe import KEPT_DATA, ReplayFilter
from ._event import Event, ReadyState
from ._flag import Flag
from ._parser import Parser
from ._request import Options, RequestPlan
from ._retry import HEALTHY_AFTER, Backoff
from ._transport import Attempt, Request, Stream, Transport, check_response
from .exceptions import SSEConnectionError, SSEError

__all__ = ["Item", "ReadLoop", "Response", "Sink", "Step"]

log = logging.getLogger("ssesync")

Item = Union[Event, str]
_NOTHING: list[Item] = []


class Step(enum.Enum):
    """What the driver does next."""

    CONNECT = "connect"  #: open a connection: :meth:`ReadLoop.begin_attempt`, then report
    READ = "read"  #: read the stream, and report each read with :meth:`ReadLoop.received`
    WAIT = "wait"  #: wait :attr:`ReadLoop.delay` seconds (or until woken), then ``waited()``
    STOP = "stop"  #: the source is over: call :meth:`ReadLoop.finish`


@dataclass(frozen=True)
class Response:
    """What ``source.response`` shows of a connection's response."""

    #: The HTTP status.
    status: int
    #: The response headers (case-insensitive).
    headers: Mapping[str, str]
    #: The final URL, after redirects.
    url: str


class Sink(Protocol):
    """Where a loop's lifecycle news goes (and, from its driver, its events)."""

    def opened(self) -> None:
        """A connection opened (the ``on_open`` hooks)."""

    def comment(self, text: str) -> None:
        """A comment line (the ``on_comment`` hooks), when not delivered with the events."""

    def error(self, exc: SSEError, fatal: bool) -> None:
        """An error; ``fatal`` when the source ends with it."""

    def closed(self) -> None:
        """The source is over (the ``on_close`` hooks)."""


class ReadLoop:
    """The logic of one source's read loop (see the module docstring)."""

    def __init__(
        self,
        options: Options,
        plan: RequestPlan,
        transport: Transport,
        sink: Sink,
        *,
        owns_transport: bool,
        last_event_id: str,
    ) -> None:
        self.options = options
        self.plan = plan
        self.transport = transport
        self.sink = sink
        self.owns_transport = owns_transport
        self.url = plan.url  # redacted: safe for messages
        self.backoff = Backoff(
            options.retry_delay, options.max_retry_delay, options.max_retries
        )
        self.replay = ReplayFilter() if options.dedupe else None
        self._lock = threading.Lock()
        #: The browser's readyState.
        self.state = ReadyState.CONNECTING
        #: The next step; drivers start from it (CONNECT, or READ once opened eagerly).
        self.step = Step.CONNECT
        self.closing = False
        self.close_called = False  # closing because close() was called, not by an end
        self.reconnect_requested = False
        self.finished = False
        #: Seconds to wait, when the step is WAIT.
        self.delay = 0.0
        #: The last event ID: the option's, then the stream's.
        self.last_event_id = last_event_id
        #: The current (or last) connection's response.
        self.response: Optional[Response] = None
        #: The error the source ended with, if any.
        self.fatal: Optional[SSEError] = None
        #: Whether the last read's items are all id-less messages (no bookkeeping).
        self.plain = True
        #: Set by close() and reconnect(), to wake a driver that waits.
        self.wake = Flag()
        #: Called too by close() and reconnect() (a hub wakes its selector).
        self.on_control: Optional[Callable[[], None]] = None
        #: Set once the loop has finished.
        self.done = Flag()
        #: The thread that drives the loop (set by the driver).
        self.driver_thread: Optional[int] = None
        self.stream: Optional[Stream] = None
        self.parser: Optional[Parser] = None
        self._attempt: Optional[Attempt] = None
        self._opened_at = 0.0
        self._delivered = False

    # -- control, from any thread ---------------------------------------------------
    def close(self) -> None:
        """Stop the source: any step in progress ends at once."""
        with self._lock:
            self.closing = self.close_called = True
            self.state = ReadyState.CLOSED
            attempt = self._attempt
        self._woken()
        if attempt is not None:
            attempt.abort()

    def request_reconnect(self) -> None:
        """Drop the connection and connect again at once, reporting no error."""
        with self._lock:
            if self.closing:
                return
            self.reconnect_requested = True
            attempt = self._attempt
        self._woken()
        if attempt is not None:
            attempt.abort()

    def _woken(self) -> None:
        self.wake.set()
        if self.on_control is not None:
            self.on_control()

    # -- connecting -----------------------------------------------------------------
    def begin_attempt(self) -> Optional[tuple[Request, Attempt]]:
        """The request and attempt of the next connection; ``None`` once closing.

        :raises SSEConnectionError: when the request cannot be built (callable
            headers failed); report it with :meth:`open_failed`.
        """
        attempt = Attempt()
        with self._lock:
            if self.closing:
                return None
            self.state = ReadyState.CONNECTING
            self.reconnect_requested = False
            self._attempt = attempt
        log.debug("connecting to %s", self.url)
        return self.plan.build(self.last_event_id), attempt

    def opened(self, stream: Stream) -> Step:
        """The transport returned a response (headers in)."""
        self.stream = stream
        if self.closing:
            return self._set(Step.STOP)
        self.response = Response(stream.status, stream.headers, stream.url)
        if stream.status == 204:
            log.info("%s answered 204 No Content: the stream is over", self.url)
            self._release()
            return self._set(Step.STOP)
        try:
            check_response(stream, self.options.request_url)
        except SSEConnectionError as exc:
            self._release()
            return self._failure(exc)
        self.parser = Parser(
            last_event_id=self.last_event_id,
            max_event_size=self.options.max_event_size,
            strict=self.options.strict,
        )
        self._opened_at = time.monotonic()
        self._delivered = False
        if self.replay is not None:
            self.replay.reconnected()
        with self._lock:
            if self._stopping():
                return self._set(Step.STOP)
            self.state = ReadyState.OPEN
        log.info("connected to %s", self.url)
        self.sink.opened()
        return self._set(Step.STOP if self._stopping() else Step.READ)

    def open_failed(self, exc: SSEConnectionError) -> Step:
        """Connecting failed (the transport, or building the request, raised)."""
        self._release_attempt()
        if self.closing:
            return self._set(Step.STOP)
        if self._take_reconnect_request():
            return self._set(Step.CONNECT)
        return self._failure(exc)

    # -- reading --------------------------------------------------------------------
    def received(self, data: bytes) -> list[Item]:
        """Bytes arrived: the items to deliver, in order (replays left out).

        The step stays READ, unless the parser failed after the items it
        returned (then :attr:`step` is STOP-or-worse only after
        :meth:`ended` is called with :attr:`pending_error`: the driver
        delivers the items first) or the source is closing.

        :raises SSEParsingError: when the parser failed before completing anything.
        """
        parser = self.parser
        assert parser is not None
        items = parser.feed(data)
        if parser.retry is not None:
            self.backoff.set_server_delay(parser.retry)
            parser.retry = None
        if not items:
            self.last_event_id = parser.last_event_id  # an id-only block sets it too
            return _NOTHING
        replay = self.replay
        if parser.plain and (replay is None or not replay.check_next):
            # Only id-less "message" events: nothing to filter, and the last
            # event ID stays as it is (the driver's fast path).
            self._delivered = self.plain = True
            if replay is not None:
                replay.last_data = items[-1].data  # type: ignore[union-attr]
            return items
        self.plain = False
        if replay is not None:
            items = self._without_replays(items, replay)
        if not self._delivered:  # an event, not a comment or a skipped replay
            self._delivered = any(item.__class__ is Event for item in items)
        return items

    @property
    def pending_error(self) -> Optional[SSEError]:
        """The parse error to end the stream with, once the items before it are delivered."""
        parser = self.parser
        return None if parser is None else parser.error

    def _without_replays(self, items: list[Item], replay: ReplayFilter) -> list[Item]:
        """``items`` without replays of delivered events (the rule: ``_dedupe``).

        ``ReplayFilter.is_replay`` inlined for events with ids, which is
        every event of many streams: this runs once per event.
        """
        seen = replay.seen
        checking = replay.check_next
        out: Optional[list[Item]] = None
        last_data: Optional[str] = None  # not yet written back to the filter
        for index, item in enumerate(items):
            if item.__class__ is Event:
                data = item.data
                event_id = item.id
                if event_id:
                    key = data if len(data) <= KEPT_DATA else (len(data), hash(data))
                    known = seen.get(event_id)
                    if known is not None:  # a new id is the common case: no compare
                        if known == key:
                            log.debug("skipped a replay of the event with id %r", event_id)
                            if out is None:
                                out = items[:index]
                            continue
                        del seen[event_id]  # delivered again: as recent as any id
                    seen[event_id] = key
                    last_data = data
                    if checking:
                        replay.check_next = checking = False
                else:
                    if last_data is not None:
                        replay.last_data, last_data = last_data, None
                    checking = False  # is_replay() ends the check either way
                    if replay.is_replay(None, data):
                        if out is None:
                            out = items[:index]
                        continue
            if out is not None:
                out.append(item)
        if last_data is not None:
            replay.last_data = last_data
        if len(seen) > replay.limit:
            replay.forget_old()
        return items if out is None else out

    def ended(self, error: Optional[SSEError] = None) -> Step:
        """The stream ended (``error`` is None) or broke; decide what comes next."""
        parser = self.parser
        if parser is not None:
            self.last_event_id = parser.last_event_id
            parser.end()
            if parser.retry is not None:
                self.backoff.set_server_delay(parser.retry)
                parser.retry = None
            self.parser = None
        reuse = (
            self.options.keep_connection
            and error is None
            and not self.closing
            and not self.reconnect_requested  # its socket may be shut down already
        )
        self._release(reuse=reuse)
        if self.closing:
            return self._set(Step.STOP)
        if self._delivered or time.monotonic() - self._opened_at >= HEALTHY_AFTER:
            self.backoff.reset()
        if self._take_reconnect_request():
            return self._set(Step.CONNECT)
        if error is None:
            if not self.options.reconnect:
                log.info("the stream of %s ended", self.url)
                return self._set(Step.STOP)
            ended = SSEConnectionError(f"the server ended the stream of {self.url}", url=self.url)
            return self._failure(ended, level=logging.INFO, opened=True)
        return self._failure(error, opened=True)

    def waited(self) -> Step:
        """The wait before a reconnect is over (or was cut short)."""
        return self._set(Step.STOP if self.closing else Step.CONNECT)

    def finish(self) -> None:
        """The driver stopped: release everything, and tell the sink once."""
        with self._lock:
            if self.finished:
                return
            self.finished = True
            self.closing = True
            self.state = ReadyState.CLOSED
        self._release()
        if self.owns_transport:
            self.transport.close()
        self.step = Step.STOP
        try:
            self.sink.closed()
        finally:
            self.done.set()

    # -- internals ---------------------------------------------------------------------
    def _stopping(self) -> bool:
        """Whether close() was called meanwhile (a call, so type checkers don't narrow it)."""
        return self.closing

    def _set(self, step: Step) -> Step:
        self.step = step
        return step

    def _take_reconnect_request(self) -> bool:
        if self.reconnect_requested and not self.closing:
            self.reconnect_requested = False
            log.info("reconnecting to %s on request", self.url)
            return True
        return False

    def _failure(
        self, error: SSEError, level: int = logging.WARNING, opened: bool = False
    ) -> Step:
        """Report ``error``; then wait before the next attempt, or end the source.

        :param opened: the error ended a stream that had been opened, rather
            than an attempt to open one (for the wording of a give-up).
        """
        if not (self.options.reconnect and getattr(error, "retryable", True)):
            return self._fatal(error)
        delay = self.backoff.next_delay(getattr(error, "retry_after", None), opened=opened)
        if self.backoff.exhausted:
            give_up = SSEConnectionError(
                f"gave up {self.backoff.summary()}: {error}",
                status=getattr(error, "status", None),
                url=self.url,
                retryable=False,
            )
            give_up.__cause__ = error
            return self._fatal(give_up)
        with self._lock:
            if not self.closing:
                self.state = ReadyState.CONNECTING
        self.sink.error(error, False)
        log.log(level, "%s; reconnecting in %.2f s", error, delay)
        self.delay = delay
        return self._set(Step.STOP if self.closing else Step.WAIT)

    def _fatal(self, error: SSEError) -> Step:
        with self._lock:
            self.state = ReadyState.CLOSED
        self.fatal = error
        log.error("%s", error)
        self.sink.error(error, True)
        return self._set(Step.STOP)

    def _release(self, reuse: bool = False) -> None:
        """Let go of the current attempt, then of its response.

        In that order: a connection going back to the pool must no longer be
        one that this source's ``close()`` or ``reconnect()`` shuts down,
        since another source may take it from the pool at once.
        """
        self._release_attempt()
        stream, self.stream = self.stream, None
        if stream is not None:
            stream.close(reuse=reuse)

    def _release_attempt(self) -> None:
        with self._lock:
            attempt, self._attempt = self._attempt, None
        if attempt is not None:
            attempt.release()
