"""A light :class:`threading.Event`: the flags each source's loop keeps.

Every source has two such flags (``wake``: close() or reconnect() cuts a
wait short; ``done``: the loop has finished, for join() and close()). A
``threading.Event`` is a Condition with its own lock, a deque of waiters
and two instance dicts, about 1.2 KB; with a thread per source and
thousands of sources that is megabytes for two booleans. :class:`Flag`
keeps the same four methods in about a tenth of that: the flag, a gate
lock that is held while the flag is clear, and a lock that orders set()
and clear(). A waiter takes the gate and gives it back at once, so every
waiter passes once set() opens it, however many there are.
"""

from __future__ import annotations

import threading
from typing import Optional

__all__ = ["Flag"]


class Flag:
    """``set()``, ``clear()``, ``is_set()`` and ``wait(timeout)``, as ``threading.Event``.

    One difference: a ``set()`` undone at once by a ``clear()`` in another
    thread may close the gate again before a waiter passes, so that waiter
    waits on (an Event's waiter would return True). The loop never does
    that: ``done`` is never cleared, and ``wake`` is cleared only by the
    driver that then waits on it.
    """

    __slots__ = ("_gate", "_guard", "_set")

    def __init__(self) -> None:
        self._set = False
        #: Held while the flag is clear; waiters pass through it once it opens.
        self._gate = threading.Lock()
        self._gate.acquire()
        #: Orders set() and clear(), which each move the gate once.
        self._guard = threading.Lock()

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the flag and let every waiter through (again a no-op if set)."""
        with self._guard:
            if not self._set:
                self._set = True
                self._gate.release()

    def clear(self) -> None:
        """Clear the flag: later waits wait again."""
        with self._guard:
            if self._set:
                self._set = False
                # A waiter passing through holds the gate for an instant only.
                self._gate.acquire()

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until the flag is set, or ``timeout`` seconds; return the flag.

        As with ``threading.Event``, a timeout of zero or less does not wait.
        """
        if self._set:
            return True
        gate = self._gate
        if timeout is None:
            passed = gate.acquire()
        else:
            passed = gate.acquire(timeout=min(max(timeout, 0.0), threading.TIMEOUT_MAX))
        if passed:
            gate.release()
        return passed or self._set
