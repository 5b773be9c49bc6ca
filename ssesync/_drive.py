"""The blocking driver of the read loop: iteration, and the background thread.

:func:`run` does the I/O a :class:`~ssesync._loop.ReadLoop` asks for, with
blocking calls: it opens connections, reads the stream and waits before
reconnects, and reports each outcome to the loop. It is a generator: for
iteration it yields the events the loop hands out, in the caller's thread;
for the background thread it is given ``deliver`` (a sink's delivery
function) and yields nothing. So both modes share one read loop, which is
also the only place that knows about the plain-message fast path on the
reading side: a read that held only id-less ``message`` events
(``loop.plain``) is yielded or delivered without per-event bookkeeping. The
benchmark's small-event workloads are what that buys (about a fifth of the
per-event cost).

The generator never refers to the :class:`~ssesync.EventSource`, only to
the loop: so a source that nobody refers to any more (``for event in
EventSource(url): break``) is freed at once, and the generator with it,
whose ``finally`` closes the connection — no garbage collector needed.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable, Optional, Union

from ._event import Comment, Event
from ._handlers import HandlerRegistry
from ._loop import Item, ReadLoop, Step
from ._sinks import END, CallbackSink, DispatcherSink, QueueSink
from ._transport import Transport, redact_url
from .exceptions import SSEConnectionError, SSEError

log = logging.getLogger("ssesync")

__all__ = [
    "QueueIterator",
    "deliver_all",
    "leaving_closes",
    "open_until_ready",
    "read_into",
    "run",
    "settle",
    "stop_thread",
]

Deliver = Callable[[list[Item], bool], None]


def run(
    loop: ReadLoop,
    transport: Transport,
    deliver: Optional[Deliver] = None,
    *,
    comments: bool = False,
) -> Iterator[Event]:
    """Drive ``loop`` until it stops; yield its events, or give them to ``deliver``.

    :param comments: yield each comment too, as a :class:`~ssesync.Comment`
        after its hooks ran (``source.stream()``).
    :raises SSEError: (iteration only) the error the source ended with.
    """
    loop.driver_thread = threading.get_ident()
    step = loop.step
    try:
        while step is not Step.STOP:
            if step is Step.READ:
                stream, parser = loop.stream, loop.parser
                assert stream is not None
                assert parser is not None
                read, received = stream.read, loop.received
                try:
                    while True:
                        data = read()
                        if not data:
                            step = loop.ended()
                            break
                        items = received(data)
                        if items:
                            # Held until the next batch, as an iterating
                            # caller's loop variable holds its last event:
                            # freed at once, a big event's memory is handed
                            # back to the system by malloc (a thread's arena
                            # is trimmed once that much is free at its top)
                            # and faulted in again for the next one.
                            _held = items
                            if deliver is not None:
                                deliver(items, loop.plain)
                            elif loop.plain:
                                for event in items:
                                    if loop.closing:
                                        return
                                    yield event  # type: ignore[misc]
                            else:
                                comment = loop.sink.comment
                                for item in items:
                                    if loop.closing:
                                        return
                                    if item.__class__ is Event:
                                        loop.last_event_id = item.last_event_id
                                        yield item
                                    else:
                                        comment(item)  # type: ignore[arg-type]
                                        if comments:
                                            yield Comment(item)  # type: ignore[misc,arg-type]
                                loop.last_event_id = parser.last_event_id
                        if parser.error is not None:
                            # Raised only now: the events before it went out first.
                            step = loop.ended(parser.error)
                            break
                except SSEError as exc:
                    step = loop.ended(exc)
            elif step is Step.CONNECT:
                step = connect(loop, transport)
            else:
                step = wait(loop)
    finally:
        loop.finish()
    if deliver is None and loop.fatal is not None:
        raise loop.fatal


def connect(loop: ReadLoop, transport: Transport) -> Step:
    """One connection attempt, reported to the loop."""
    try:
        begun = loop.begin_attempt()
        if begun is None:
            return loop.waited()  # closing: STOP
        request, attempt = begun
        stream = transport.open(request, attempt)
    except SSEConnectionError as exc:
        return loop.open_failed(exc)
    return loop.opened(stream)


def wait(loop: ReadLoop) -> Step:
    """The wait before a reconnect; ``close()`` and ``reconnect()`` cut it short."""
    wake = loop.wake
    wake.clear()  # before the flags are read: a close() after this sets it again
    if not loop.closing and not loop.reconnect_requested and loop.delay > 0:
        wake.wait(loop.delay)
    return loop.waited()


def open_until_ready(loop: ReadLoop, transport: Transport) -> None:
    """Connect (retrying as configured) until the stream is open or the source ends.

    For :meth:`~ssesync.SSEClient.connect`, which returns an open connection.

    :raises SSEError: the error the source ended with.
    """
    step = loop.step
    while step in (Step.CONNECT, Step.WAIT):
        step = connect(loop, transport) if step is Step.CONNECT else wait(loop)
    if step is Step.STOP:
        loop.finish()
        if loop.fatal is not None:
            raise loop.fatal


# -- the other drivers: the thread of start(), and source.stream() -------------------------


def leaving_closes(inner: Iterator[Any]) -> Iterator[Any]:
    """Yield from ``inner``; leaving (break, an exception, garbage) closes it at once."""
    try:
        yield from inner
    finally:
        inner.close()  # type: ignore[attr-defined]


def deliver_all(
    loop: ReadLoop, transport: Transport, sink: Union[CallbackSink, QueueSink]
) -> None:
    """The body of a reading thread: run the loop, the sink dispatching its events."""
    try:
        for _ in run(loop, transport, sink.deliver):
            pass  # the sink dispatches; nothing is yielded
    except BaseException as exc:  # a bug: report it rather than die silently
        log.exception("unexpected error in the ssesync reader thread")
        sink.registry.report_error(exc, uncaught=True)


def read_into(loop: ReadLoop, transport: Transport, sink: QueueSink) -> None:
    """The reading thread of ``stream(idle=...)``."""
    try:
        deliver_all(loop, transport, sink)
    finally:
        sink.end()


class QueueIterator:
    """What ``stream(idle=...)`` yields: items from the reader's queue, ``None`` when idle.

    A class, not a generator: a generator that was never started runs no
    ``finally`` when it is dropped, and the reader thread (already reading)
    would go on for ever. Dropping this object, leaving a ``for`` loop over
    it or calling :meth:`close` closes the upstream at once; after
    ``source.close()`` from another thread it yields nothing more.
    """

    __slots__ = ("_get", "_idle", "_loop", "_over", "_thread")

    def __init__(self, loop: ReadLoop, sink: QueueSink, thread: threading.Thread, idle: float):
        self._loop, self._get, self._thread, self._idle = loop, sink.queue.get, thread, idle
        self._over = False

    def __iter__(self) -> QueueIterator:
        return self

    def __next__(self) -> Union[Event, Comment, None]:
        loop = self._loop
        if not self._over and not loop.close_called:
            try:
                item = self._get(timeout=self._idle)
            except queue.Empty:
                item = None
            if item is END:
                self.close()
                if loop.fatal is not None:
                    raise loop.fatal
            elif not loop.close_called:
                return item  # type: ignore[return-value]
        self.close()
        raise StopIteration

    def close(self) -> None:
        """Close the upstream and wait for the reader thread (unless called from it)."""
        if self._over:
            return
        self._over = True
        self._loop.close()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def __del__(self) -> None:
        if not self._over:
            self._over = True
            self._loop.close()  # no join here: the reader ends on its own, promptly


def stop_thread(
    loop: ReadLoop,
    thread: threading.Thread,
    registry: HandlerRegistry,
    url: str,
    timeout: Optional[float],
) -> bool:
    """``close()``'s wait for a closed source's thread and handlers, up to ``timeout``."""
    if thread is threading.current_thread():
        return False  # from a handler: the loop stops once it returns
    started = time.monotonic()
    thread.join(timeout)
    if thread.is_alive():
        return _still_running(registry, url, timeout, "the reader thread")
    return settle(loop, registry, url, timeout, started)


def settle(
    loop: ReadLoop, registry: HandlerRegistry, url: str, timeout: Optional[float], started: float
) -> bool:
    """The reader stopped: wait, within ``timeout``, for a handler running on a dispatcher."""
    sink = loop.sink
    if not isinstance(sink, DispatcherSink):
        return True
    if sink.runs_here():
        return False  # from a handler on the dispatcher's thread: it stops once that returns
    left = None if timeout is None else max(0.0, started + timeout - time.monotonic())
    return sink.settled(left) or _still_running(registry, url, timeout, "a handler")


def _still_running(
    registry: HandlerRegistry, url: str, timeout: Optional[float], what: str
) -> bool:
    running = registry.running
    what = f"a handler for {running!r} events" if running else what
    log.warning("close(timeout=%s) of %s: %s is still running", timeout, redact_url(url), what)
    return False
