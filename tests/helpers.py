"""Helpers shared by the behaviour tests: short-timeout sources and thread-safe waiting."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable

from ssesync import Event, EventSource
from ssesync.testing import StreamConnection

#: Seconds any wait in a test may take; a deadlock fails the test instead of hanging CI.
WAIT = 10.0


def fast(url: str, **options: Any) -> EventSource:
    """A source with no reconnect delay and short timeouts, so a broken test fails fast."""
    options.setdefault("retry_delay", 0)
    options.setdefault("timeout", (5, 10))
    return EventSource(url, **options)


def take(source: EventSource, n: int) -> list[Event]:
    """The first ``n`` events of ``source`` (iterating it)."""
    out: list[Event] = []
    for event in source:
        out.append(event)
        if len(out) == n:
            break
    return out


def reader_threads() -> list[threading.Thread]:
    """The threads of started sources (the loopback server's are ``ssesync-testserver-*``)."""
    return [t for t in threading.enumerate() if t.name.startswith("ssesync-http")]


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def settle(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Wait for ``condition`` (e.g. the server closing its side lazily)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def endless_stream(conn: StreamConnection) -> None:
    """A route handler sending numbered events every millisecond until the client leaves."""
    conn.send_headers()
    n = 0
    while not conn.closed_by_peer():
        conn.event(str(n))
        n += 1
        conn.pause(0.001)


@contextmanager
def watchdog(source: EventSource, seconds: float) -> Iterator[None]:
    """Close ``source`` after ``seconds``, so a stuck iteration ends and its test fails."""
    timer = threading.Timer(seconds, source.close)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class Collector:
    """Records calls (from any thread) and lets a test wait for a count of them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)
