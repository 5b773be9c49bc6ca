"""The hub's event loop: one thread, a selector, timers, and work posted to it.

A small reactor that knows nothing of event sources. Its thread sleeps in a
selector until a registered socket is readable, a timer is due (one heap of
deadlines), or another thread posts work through a socket pair; then it runs
what is due, in that order. Work that blocks — connecting — goes to a pool of
worker threads (:meth:`Reactor.submit`), whose results are posted back, so
that everything the reactor's user keeps is only ever touched by its thread.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Optional, TypeVar

__all__ = ["Reactor", "Timer"]

log = logging.getLogger("ssesync")

T = TypeVar("T")

#: Seconds a busy reactor lets readiness gather before its next round.
GATHER = 0.002

#: Posted calls run per round at most: thousands of ``start()`` calls at once
#: (each a connect begun) are spread over rounds, between which the sockets
#: already open are read, instead of holding their events back until all
#: have run.
POSTED_PER_ROUND = 50


def _nothing() -> None:
    pass


class Timer:
    """A scheduled call; :meth:`cancel` it to skip it."""

    __slots__ = ("callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Skip it; what it would have called is let go of at once (not when it is due)."""
        self.cancelled = True
        self.callback = _nothing


class Reactor:
    """A selector loop on a thread of its own, with timers and a pool of workers.

    :param workers: threads for :meth:`submit`.
    :param name: the name of the reactor's thread (workers get ``name-worker``).
    """

    def __init__(self, workers: int, name: str) -> None:
        self._name = name
        self._selector = selectors.DefaultSelector()
        self._wake_read, self._wake_write = socket.socketpair()
        self._wake_read.setblocking(False)
        self._wake_write.setblocking(False)
        self._selector.register(self._wake_read, selectors.EVENT_READ, None)
        self._posted: deque[Callable[[], None]] = deque()
        self._woken = False  # a wake-up byte is on its way, unread
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._again: list[Callable[[], None]] = []
        self._executor = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix=f"{name}-worker"
        )
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._should_stop: Callable[[], bool] = lambda: False
        self._closed = False

    def start(self, should_stop: Callable[[], bool]) -> None:
        """Run on the thread until ``should_stop()``, asked after each round, says so."""
        self._should_stop = should_stop
        self.thread.start()

    # -- from any thread ----------------------------------------------------------------
    def post(self, work: Callable[[], None]) -> None:
        """Run ``work`` on the reactor's thread, soon (safe from any thread).

        One wake-up byte per batch: while one is unread, the thread will run
        this work too when it reads it. Thousands of ``start()`` calls or
        finished connects so cost one wake-up, not a syscall and a thread
        switch each.
        """
        self._posted.append(work)
        if self._woken:
            return
        self._woken = True
        try:
            self._wake_write.send(b"\0")
        except OSError:
            pass  # the pair is full (the thread wakes anyway) or closed

    # -- from the reactor's thread -------------------------------------------------------------
    def submit(
        self, work: Callable[..., T], *args: Any, done: Callable[[Future[T]], None]
    ) -> None:
        """Run ``work(*args)`` on a worker; then ``done(future)`` on the reactor's thread."""
        future = self._executor.submit(work, *args)
        future.add_done_callback(lambda finished: self.post(lambda: done(finished)))

    def register(
        self, sock: socket.socket, on_ready: Callable[[], None], events: int = selectors.EVENT_READ
    ) -> None:
        """Call ``on_ready`` whenever ``sock`` is ready for ``events`` (reading, by default)."""
        self._selector.register(sock, events, on_ready)

    def modify(self, sock: socket.socket, events: int, on_ready: Callable[[], None]) -> None:
        """Wait for other ``events`` of a registered socket, with another callback."""
        self._selector.modify(sock, events, on_ready)

    def unregister(self, sock: socket.socket) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass

    def schedule(self, delay: float, callback: Callable[[], None]) -> Timer:
        """Call ``callback`` in ``delay`` seconds."""
        timer = Timer(callback)
        when = time.monotonic() + delay
        heapq.heappush(self._timers, (when, next(self._sequence), timer))
        return timer

    def again(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` in the next round, without waiting for the selector."""
        self._again.append(callback)

    # -- the thread -------------------------------------------------------------------------------
    def _main(self) -> None:
        select = self._selector.select
        gather = GATHER
        woke = 0.0
        try:
            while True:
                self._run_posted()
                if self._should_stop():
                    return
                if gather:
                    # Busy: let readiness gather for a moment, then handle
                    # all of it in one round instead of a round per socket.
                    pause = woke + gather - time.monotonic()
                    if pause > 0 and not self._posted:
                        time.sleep(pause)
                ready = select(self._timeout())
                woke = time.monotonic() if ready else 0.0
                for key, _ in ready:
                    if key.data is None:
                        self._drain_wake()
                    else:
                        self._guarded(key.data)
                if self._again:
                    again, self._again = self._again, []
                    for callback in again:
                        self._guarded(callback)
                self._fire_timers()
        finally:
            self._release()

    def _guarded(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:
            log.exception("unexpected error in the ssesync hub thread")

    def _run_posted(self, limit: Optional[int] = POSTED_PER_ROUND) -> None:
        posted = self._posted
        for _ in range(len(posted) if limit is None else min(limit, len(posted))):
            self._guarded(posted.popleft())

    def _drain_wake(self) -> None:
        try:
            while self._wake_read.recv(4096):
                pass
        except OSError:
            pass
        # After the drain (a byte posted during it was drained too) and
        # before the posted work runs (the next round): a later post wakes again.
        self._woken = False

    def _timeout(self) -> Optional[float]:
        if self._posted or self._again:
            return 0
        if not self._timers:
            return None
        return max(0.0, self._timers[0][0] - time.monotonic())

    def _fire_timers(self) -> None:
        timers = self._timers
        now = time.monotonic()
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if not timer.cancelled:
                self._guarded(timer.callback)

    def _release(self) -> None:
        self._executor.shutdown(wait=True)
        self._run_posted(None)  # what the workers posted last
        self._selector.close()
        self._wake_read.close()
        self._wake_write.close()
