"""Hub: many sources, one reader thread — a second driver of the same read loop.

A thread per started source is right for a few streams and wrong for
thousands (wake-ups and the GIL convoy). A :class:`Hub` drives the
:class:`~ssesync._loop.ReadLoop` of every source started on it from one
thread, over a selector: the loop's logic (parsing, replays, ``retry:``,
backoff, reconnects) is the same code, told what happened by another party.

What runs where. Connecting blocks, so it runs on a small pool of worker
threads: urllib3, or for plain requests on the hub's own transport the lean
opener of ``_transport._direct``. Once the head is in, the hub's thread
takes over: the loop checks the response and runs the ``on_open`` hooks, and
the body's socket is read without blocking. Every handler and hook runs on
the hub's thread, one at a time, in the order the events arrived.

The hub's thread is a :class:`~ssesync._reactor.Reactor`: it sleeps until a
socket is readable, a timer is due (a read timeout, a wait before a
reconnect), or another thread posts work (a connect finished; ``close()`` or
``reconnect()``). Work is posted, never done on other threads, so a source's
state is only changed by the hub's thread (and the loop's own ``close()``).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Callable, Optional

from ._loop import ReadLoop, Step
from ._reactor import Reactor, Timer
from ._sinks import CallbackSink
from ._transport import (
    TRANSPORT_OPTIONS,
    Attempt,
    Request,
    Stream,
    Transport,
    Urllib3Transport,
    build_pool_manager,
    redact_url,
)
from ._transport._direct import DirectBody, open_lean
from .exceptions import SSEConnectionError, SSEError

if TYPE_CHECKING:
    from ._source import EventSource

__all__ = ["Hub"]

log = logging.getLogger("ssesync")

#: Reads of one socket per wake-up before the others get their turn.
READS_PER_TURN = 4


class _Entry:
    """One source as the hub runs it."""

    __slots__ = (
        "body", "connecting", "finished", "last_read", "loop", "sink", "source",
        "timer", "transport",
    )  # fmt: skip

    def __init__(
        self, source: EventSource, loop: ReadLoop, sink: CallbackSink, transport: Transport
    ) -> None:
        self.source = source  # held: a started source runs even if nobody else refers to it
        self.loop = loop
        self.sink = sink
        self.transport = transport
        self.body: Optional[DirectBody] = None
        self.connecting = False
        self.finished = False
        self.last_read = 0.0
        self.timer: Optional[Timer] = None  # a wait before a reconnect, or the read timeout


class Hub:
    """Reads any number of sources from one thread (see the module docstring).

    :param connect_workers: threads that open connections (TCP, TLS, the
        request and the response head), so that a slow connect never delays
        reading.

    ``with Hub() as hub:`` closes every source of the hub, and the hub, on
    leaving the block. Sources join with ``EventSource(url, hub=hub)`` and
    ``start()``; every option of :class:`~ssesync.EventSource` works, except
    ``session=``, whose transport cannot be read without blocking.
    """

    def __init__(self, connect_workers: int = 8) -> None:
        if isinstance(connect_workers, bool) or not isinstance(connect_workers, int):
            raise TypeError(
                f"connect_workers must be a whole number, not {type(connect_workers).__name__}"
            )
        if connect_workers < 1:
            raise ValueError(f"connect_workers must be 1 or more, not {connect_workers}")
        self._workers = connect_workers
        self._lock = threading.Lock()
        self._entries: set[_Entry] = set()
        self._closing = False
        self._pid = os.getpid()
        self._reactor: Optional[Reactor] = None
        self._transport: Optional[Urllib3Transport] = None
        self._lean: Optional[Callable[[Request, Attempt], Stream]] = None
        #: The entry whose handlers run now, on the hub's thread.
        self._running: Optional[_Entry] = None

    # -- the public face ------------------------------------------------------------
    def __len__(self) -> int:
        """The number of sources the hub runs (started and not finished)."""
        with self._lock:
            return len(self._entries)

    def __bool__(self) -> bool:
        """A hub is true even with no source (``__len__`` alone would make it false)."""
        return True

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Hub {len(self)} sources{' closed' if self._closing else ''}>"

    def close(self, timeout: Optional[float] = None) -> bool:
        """Close every source of the hub, then the hub; ``True`` once all has stopped.

        Safe from any thread. From the hub's own thread (a handler), it
        closes everything but cannot wait: it returns ``False``. With a
        ``timeout``, it returns ``False`` if a handler still runs then.
        """
        with self._lock:
            self._closing = True
            entries = list(self._entries)
            reactor = self._reactor
        for entry in entries:
            entry.loop.close()
            entry.sink.registry.changed = True
        if reactor is None:
            self._release()
            return True
        if os.getpid() != self._pid:  # a forked child: the thread is the parent's
            for entry in entries:
                entry.loop.finish()
            return True
        for entry in entries:
            reactor.post(functools.partial(self._control, entry))
        reactor.post(lambda: None)
        if reactor.thread is threading.current_thread():
            return False
        reactor.thread.join(timeout)
        if reactor.thread.is_alive():
            log.warning("Hub.close(timeout=%s): %s is still running", timeout, self._what_runs())
            return False
        return True

    # -- what EventSource uses ----------------------------------------------------------
    @staticmethod
    def check(hub: object, transport_options: dict[str, object]) -> Optional[Transport]:
        """Check ``hub=``; the hub's shared transport if the source brings none of its own."""
        if not isinstance(hub, Hub):
            raise TypeError(f"hub must be a Hub, not {type(hub).__name__}")
        if transport_options["session"] is not None:
            raise ValueError(
                "a hub cannot read a requests.Session's responses without blocking: "
                "give either hub= or session=, not both"
            )
        return hub.transport if transport_options == TRANSPORT_OPTIONS else None

    def in_thread(self) -> bool:
        """Whether the caller runs on the hub's thread (a handler of one of its sources)."""
        reactor = self._reactor
        return reactor is not None and reactor.thread is threading.current_thread()

    @property
    def transport(self) -> Transport:
        """The transport shared by the hub's sources that bring none of their own."""
        with self._lock:
            if self._transport is None:
                self._transport = Urllib3Transport(build_pool_manager(maxsize=self._workers))
                self._lean = functools.partial(open_lean, fallback=self._transport.open)
            return self._transport

    def run(
        self, source: EventSource, loop: ReadLoop, sink: CallbackSink, transport: Transport
    ) -> _Entry:
        """Start reading ``source`` (``source.start()`` with ``hub=``)."""
        entry = _Entry(source, loop, sink, transport)
        with self._lock:
            if self._closing:
                raise RuntimeError("this Hub is closed")
            self._entries.add(entry)
            if self._reactor is None:
                self._reactor = Reactor(self._workers, "ssesync-hub")
                self._reactor.start(self._done)
            reactor = self._reactor
        loop.on_control = functools.partial(reactor.post, functools.partial(self._control, entry))
        reactor.post(functools.partial(self._step, entry, loop.step))
        return entry

    def stop(self, entry: _Entry, timeout: Optional[float]) -> bool:
        """``close()`` of one started source (its loop already told to close)."""
        loop = entry.loop
        if loop.done.is_set():
            return True
        reactor = self._reactor
        if reactor is None or os.getpid() != self._pid:
            loop.finish()  # a forked child: the hub's thread is the parent's
            return True
        if reactor.thread is threading.current_thread():
            if self._running is entry:
                return False  # from its own handler: it stops once the handler returns
            if not entry.connecting:
                self._finish(entry)
            return True
        reactor.post(functools.partial(self._control, entry))
        if loop.done.wait(timeout):
            return True
        running = entry.sink.registry.running
        what = f"a handler for {running!r} events" if running else "the hub"
        url = redact_url(entry.source.url)
        log.warning("close(timeout=%s) of %s: %s is still running", timeout, url, what)
        return False

    def _done(self) -> bool:
        """Asked by the reactor after each round: is there nothing left to run?"""
        if not self._closing:
            return False  # (every round: no lock then)
        with self._lock:
            done = self._closing and not self._entries
        if done:
            self._release()
        return done

    def _release(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _what_runs(self) -> str:
        entry = self._running
        if entry is None or not entry.sink.registry.running:
            return "the hub's thread"
        url = redact_url(entry.source.url)
        return f"a handler for {entry.sink.registry.running!r} events of {url}"

    def _loop_reactor(self) -> Reactor:
        """The reactor, from the hub's own thread (where it always exists)."""
        assert self._reactor is not None
        return self._reactor

    # -- one source's steps (on the hub's thread) ---------------------------------------
    def _step(self, entry: _Entry, step: Step) -> None:
        """Do what the loop asks next, as far as it can be done without blocking."""
        loop = entry.loop
        reactor = self._loop_reactor()
        while not entry.finished:
            if step is Step.CONNECT:
                try:
                    begun = loop.begin_attempt()
                except SSEConnectionError as exc:
                    step = loop.open_failed(exc)
                    continue
                if begun is None:
                    step = Step.STOP
                    continue
                entry.connecting = True
                transport = entry.transport
                # The hub's own transport: its plain requests skip urllib3's pools.
                lean = self._lean
                opener = lean if lean and transport is self._transport else transport.open
                reactor.submit(opener, *begun, done=functools.partial(self._connected, entry))
                return
            if step is Step.READ:
                try:
                    body = DirectBody.take(loop.stream, loop.options.request_url)
                except SSEConnectionError as exc:
                    step = loop.ended(exc)
                    continue
                self._start_reading(entry, body)
                return
            if step is Step.WAIT and loop.delay > 0:
                entry.timer = reactor.schedule(loop.delay, functools.partial(self._waited, entry))
                return
            if step is Step.WAIT:
                step = loop.waited()
                continue
            self._finish(entry)
            return

    def _waited(self, entry: _Entry) -> None:
        entry.timer = None
        self._step(entry, entry.loop.waited())

    def _connected(self, entry: _Entry, future: Future[Stream]) -> None:
        """A worker finished connecting; the loop hears of it here, on the hub's thread."""
        entry.connecting = False
        exc = future.exception()
        if entry.finished:
            if exc is None:
                future.result().close()
            return
        loop = entry.loop
        if exc is None:
            self._running = entry
            try:
                step = loop.opened(future.result())  # runs the on_open hooks
            finally:
                self._running = None
        elif isinstance(exc, SSEConnectionError):
            step = loop.open_failed(exc)
        else:  # a bug below the transport's error mapping: report it, then retry
            log.error("unexpected error while connecting", exc_info=exc)
            entry.sink.registry.report_error(exc, uncaught=True)
            step = loop.open_failed(
                SSEConnectionError(f"connecting to {loop.url} failed: {type(exc).__name__}")
            )
        self._step(entry, step)

    def _start_reading(self, entry: _Entry, body: DirectBody) -> None:
        reactor = self._loop_reactor()
        entry.body = body
        entry.last_read = time.monotonic()
        reactor.register(body.sock, functools.partial(self._readable, entry))
        read_timeout = entry.loop.options.timeout[1]
        if read_timeout is not None:
            entry.timer = reactor.schedule(read_timeout, functools.partial(self._silent, entry))
        self._readable(entry)  # what the response head brought along, and TLS leftovers

    def _silent(self, entry: _Entry) -> None:
        """The read timeout is due: a stream silent that long counts as broken.

        Silent means nothing arrived, not nothing was read: a handler may have
        held the hub's thread past the deadline while bytes waited. So an
        overdue source is read once, without blocking, before it is judged.
        """
        entry.timer = None
        body, read_timeout = entry.body, entry.loop.options.timeout[1]
        if body is None or entry.finished or read_timeout is None:
            return
        if entry.last_read + read_timeout <= time.monotonic():
            self._readable(entry)  # sets last_read if anything came
            if entry.body is not body or entry.finished:
                return  # the read ended the stream, and the loop has decided what next
        left = entry.last_read + read_timeout - time.monotonic()
        url = entry.loop.url
        if left > 0:  # bytes came meanwhile: look again when they would be due
            again = functools.partial(self._silent, entry)
            entry.timer = self._loop_reactor().schedule(left, again)
        else:
            self._end_reading(entry, SSEConnectionError(f"read timed out on {url}", url=url))

    def _readable(self, entry: _Entry) -> None:
        """Read what has arrived for ``entry``, parse it, deliver it."""
        body = entry.body
        if body is None or entry.finished:
            return
        loop = entry.loop
        parser = loop.parser
        assert parser is not None
        deliver = entry.sink.deliver
        self._running = entry
        try:
            for _ in range(READS_PER_TURN):
                data = body.read()
                if data is None:
                    break
                entry.last_read = time.monotonic()
                if data:
                    items = loop.received(data)
                    if items:
                        deliver(items, loop.plain)
                    if parser.error is not None:
                        self._end_reading(entry, parser.error)
                        return
                if body.ended or loop.closing:
                    self._end_reading(entry, None)
                    return
                if body.drained:
                    break  # a recv now would only say "would block"
            else:
                self._again(entry)  # more may be there: after the others' turns
                return
            if body.pending:
                self._again(entry)  # bytes inside TLS, which the selector cannot see
        except SSEError as exc:
            self._end_reading(entry, exc)
        except Exception as exc:  # a bug: report it, and end this stream, not the hub
            log.exception("unexpected error while reading %s", loop.url)
            entry.sink.registry.report_error(exc, uncaught=True)
            error = SSEConnectionError(f"reading {loop.url} failed: {type(exc).__name__}")
            self._end_reading(entry, error)
        finally:
            self._running = None

    def _again(self, entry: _Entry) -> None:
        self._loop_reactor().again(functools.partial(self._readable, entry))

    def _end_reading(self, entry: _Entry, error: Optional[SSEError]) -> None:
        self._stop_reading(entry)
        self._step(entry, entry.loop.ended(error))

    def _stop_reading(self, entry: _Entry) -> None:
        body, entry.body = entry.body, None
        timer, entry.timer = entry.timer, None
        if timer is not None:
            timer.cancel()
        if body is not None and self._reactor is not None:
            self._reactor.unregister(body.sock)

    def _control(self, entry: _Entry) -> None:
        """``close()`` or ``reconnect()`` was called: act on what it changed."""
        if entry.finished:
            return
        if entry.body is None and entry.timer is not None:  # waiting before a reconnect
            entry.timer.cancel()
            entry.timer = None
            self._step(entry, entry.loop.waited())
        elif entry.body is not None and entry.loop.closing:
            self._end_reading(entry, None)
        # Reading or connecting otherwise: the aborted attempt reports itself.

    def _finish(self, entry: _Entry) -> None:
        if entry.finished:
            return
        entry.finished = True
        self._stop_reading(entry)
        try:
            entry.loop.finish()
        except Exception:
            log.exception("unexpected error while closing a source of the hub")
        with self._lock:
            self._entries.discard(entry)
