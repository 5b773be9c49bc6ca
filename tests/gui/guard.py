"""A bound on how long the GUI thread may block, for tests where a hang is the bug.

``close()`` on the GUI thread joins the reader thread; a dispatcher that makes
the reader wait for the GUI thread turns that into a deadlock, and the test
would hang instead of failing. :func:`hang_guard` interrupts the blocked main
thread: a timer thread sends it ``SIGUSR1``, whose handler raises :class:`Hung`
there (a thread join in Python is interruptible by signals). The handler is
installed once and stays; it only raises while a guard is armed, so a signal
that arrives just after the guarded block has ended does nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Optional

from ssesync import EventSource


class Hung(Exception):
    """The guarded code did not finish in time: in these tests, a deadlock."""


_armed: Optional[str] = None
_installed = False


def _on_signal(signum: int, frame: Optional[FrameType]) -> None:
    if _armed is not None:
        raise Hung(_armed)


@contextmanager
def hang_guard(seconds: float, what: str) -> Iterator[None]:
    """Raise :class:`Hung` in the main thread if the block runs longer than ``seconds``."""
    global _armed, _installed
    assert threading.current_thread() is threading.main_thread(), "guard the main thread"
    if not _installed:
        signal.signal(signal.SIGUSR1, _on_signal)
        _installed = True
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGUSR1))
    timer.daemon = True
    _armed = f"{what} took longer than {seconds} s"
    timer.start()
    try:
        yield
    finally:
        _armed = None
        timer.cancel()
        timer.join()


#: close() returns in milliseconds; past this bound it is a deadlock.
CLOSE_BOUND = 5.0


@contextmanager
def closing_on_gui_thread(source: EventSource) -> Iterator[EventSource]:
    """Close ``source`` at the end of the block, from this (the GUI) thread, guarded."""
    try:
        yield source
    finally:
        with hang_guard(CLOSE_BOUND, "close() on the GUI thread"):
            source.close()
