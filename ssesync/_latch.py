"""A small :class:`threading.Event`: the flags every source keeps.

Each source has two events — the driver's wake-up and "finished" — and with
one thread per source there may be thousands. A :class:`threading.Event` is
a flag and a :class:`threading.Condition` (its lock, bound methods and a
deque for waiters): about 1.2 KB of memory. A :class:`Latch` does the same
with two plain locks, about a fifth of that.

The *gate* lock is held while the latch is clear: :meth:`Latch.set` releases
it, :meth:`Latch.clear` takes it again, and :meth:`Latch.wait` is an acquire
with a timeout that, when it succeeds, releases at once, so every other
waiter gets through too. The *guard* lock makes set and clear atomic, so two
threads setting at once cannot release the gate twice.
"""

from __future__ import annotations

import threading
from typing import Optional

__all__ = ["Latch"]


class Latch:
    """``set()``, ``clear()``, ``is_set()`` and ``wait(timeout)``, as :class:`threading.Event`."""

    __slots__ = ("_flag", "_gate", "_guard")

    def __init__(self) -> None:
        self._flag = False
        self._guard = threading.Lock()
        self._gate = threading.Lock()
        self._gate.acquire()  # clear: held

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._guard:
            if not self._flag:
                self._flag = True
                self._gate.release()

    def clear(self) -> None:
        with self._guard:
            if self._flag:
                self._flag = False
                self._gate.acquire()  # at most a waiter's instant between its acquire and release

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the latch is set, at most ``timeout`` seconds; whether it is."""
        if self._flag:
            return True
        if timeout is not None and timeout <= 0:
            return self._flag
        if self._gate.acquire(True, -1 if timeout is None else timeout):
            self._gate.release()
            return True
        return self._flag
