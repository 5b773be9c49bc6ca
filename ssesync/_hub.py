"""Hub: many sources, one reader thread — a second driver of the same read loop.

A thread per started source is right for a few streams and wrong for
thousands (wake-ups and the GIL convoy). A :class:`Hub` drives the
:class:`~ssesync._loop.ReadLoop` of every source started on it from one
thread, over a selector: the loop's logic (parsing, replays, ``retry:``,
backoff, reconnects) is the same code, told what happened by another party.

What runs where. A plain ``http://`` GET on the hub's own transport is
opened on the hub's thread, without blocking (``_transport._lean``: connect,
request, response head, each step when its socket is ready). Everything else
(TLS, proxies, bodies, redirects, a source's own transport) is opened by
urllib3 on a small pool of worker threads. Once the head is in, the loop
checks the response and runs the ``on_open`` hooks, and the body's socket is
read without blocking. Every handler and hook runs on
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
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Optional

from ._hub_reading import Entry, HubReading
from ._loop import ReadLoop, Step
from ._reactor import Reactor
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
from ._transport._direct import DirectBody
from ._transport._heads import plain_head
from ._transport._lean import LeanConnect
from .exceptions import SSEConnectionError

if TYPE_CHECKING:
    from ._source import EventSource

__all__ = ["Hub"]

log = logging.getLogger("ssesync")

class Hub(HubReading):
    """Reads any number of sources from one thread (see the module docstring).

    :param connect_workers: threads for what would block the hub's thread:
        resolving host names, and opening the connections it does not open
        itself (TLS, proxies, request bodies, redirects; see the module
        docstring), so that a slow connect never delays reading.

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
        self._entries: set[Entry] = set()
        self._closing = False
        self._pid = os.getpid()
        self._reactor: Optional[Reactor] = None
        self._transport: Optional[Urllib3Transport] = None
        self._running: Optional[Entry] = None

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
            return self._transport

    def run(
        self, source: EventSource, loop: ReadLoop, sink: CallbackSink, transport: Transport
    ) -> Entry:
        """Start reading ``source`` (``source.start()`` with ``hub=``)."""
        entry = Entry(source, loop, sink, transport)
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

    def stop(self, entry: Entry, timeout: Optional[float]) -> bool:
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
            if entry.lean is not None:
                entry.lean.cancel()  # reported at once: the loop stops
            elif not entry.connecting:
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

    # -- one source's steps (on the hub's thread) ---------------------------------------
    def _step(self, entry: Entry, step: Step) -> None:
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
                request, attempt = begun
                plain = plain_head(request) if entry.transport is self._transport else None
                if plain is None:
                    self._open_on_worker(entry, request, attempt)
                    return
                done = functools.partial(self._opened, entry)
                follow = functools.partial(self._open_on_worker, entry, request, attempt)
                entry.lean = LeanConnect(reactor, request, attempt, plain, done, follow)
                entry.lean.start()
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

    def _waited(self, entry: Entry) -> None:
        entry.timer = None
        self._step(entry, entry.loop.waited())

    def _open_on_worker(
        self, entry: Entry, request: Request, attempt: Attempt, *redirect: Any
    ) -> None:
        """Open with urllib3 on a worker; or follow the ``(status, Location)`` the hub got."""

        def done(future: Future[Stream]) -> None:
            exc = future.exception()
            self._opened(entry, None if exc else future.result(), exc)

        entry.lean = None
        shared = self._transport
        opener = shared.follow if redirect and shared is not None else entry.transport.open
        self._loop_reactor().submit(opener, request, attempt, *redirect, done=done)

    def _opened(
        self, entry: Entry, stream: Optional[Stream], exc: Optional[BaseException]
    ) -> None:
        """An attempt opened ``stream`` or failed with ``exc``: the loop hears of it here."""
        entry.connecting = False
        entry.lean = None
        if entry.finished:
            if stream is not None:
                stream.close()
            return
        loop = entry.loop
        if stream is not None:
            self._running = entry
            try:
                step = loop.opened(stream)  # runs the on_open hooks
            finally:
                self._running = None
        elif isinstance(exc, SSEConnectionError):
            step = loop.open_failed(exc)
        else:  # a bug below the transport's error mapping: report it, then retry
            log.error("unexpected error while connecting", exc_info=exc)
            entry.sink.registry.report_error(exc or RuntimeError("no stream"), uncaught=True)
            step = loop.open_failed(
                SSEConnectionError(f"connecting to {loop.url} failed: {type(exc).__name__}")
            )
        self._step(entry, step)

    def _control(self, entry: Entry) -> None:
        """``close()`` or ``reconnect()`` was called: act on what it changed."""
        if entry.finished:
            return
        if entry.lean is not None:  # connecting on this thread
            if entry.lean.aborted:  # (not a new attempt that reconnect() began since)
                entry.lean.cancel()
        elif entry.body is None and entry.timer is not None:  # waiting before a reconnect
            entry.timer.cancel()
            entry.timer = None
            self._step(entry, entry.loop.waited())
        elif entry.body is not None and entry.loop.closing:
            self._end_reading(entry, None)
        # Reading or connecting otherwise: the aborted attempt reports itself.

    def _finish(self, entry: Entry) -> None:
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
