"""The queue of idle connections in our urllib3 pools, made light.

urllib3 keeps a pool's idle connections in a ``queue.LifoQueue``: a lock
and three Conditions, each with a deque and an instance dict, about
3.5 KB. Each source with its own transport has a pool of its own, so with a
thread per source and thousands of sources the queues alone come to
megabytes, for a list of at most a few connections. :class:`LightQueue`
is what urllib3 uses of a queue (``put``, ``get``, ``qsize``, with
``queue.Full`` and ``queue.Empty``, ``HTTPConnectionPool.QueueCls``) in a
tenth of that: a list, a lock, and a :class:`~ssesync._flag.Flag` that is
set while the list holds something.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Optional

from .._flag import Flag

__all__ = ["LightQueue"]


class LightQueue:
    """A last-in, first-out queue of up to ``maxsize`` items (no limit if ``maxsize <= 0``).

    ``put`` never waits: urllib3 fills the queue once with ``maxsize``
    placeholders and afterwards puts back only what it took out, so a put
    into a full queue is a bug (or a connection to drop), reported at once
    with ``queue.Full``. ``get`` waits as ``queue.LifoQueue.get`` does.
    """

    __slots__ = ("_items", "_lock", "_nonempty", "maxsize")

    def __init__(self, maxsize: int = 0) -> None:
        self.maxsize = maxsize
        self._items: list[Any] = []
        self._lock = threading.Lock()
        self._nonempty = Flag()

    def qsize(self) -> int:
        return len(self._items)

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None) -> None:
        with self._lock:
            if 0 < self.maxsize <= len(self._items):
                raise queue.Full
            self._items.append(item)
            self._nonempty.set()

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        if timeout is not None and timeout < 0:
            raise ValueError("'timeout' must be a non-negative number")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                items = self._items
                if items:
                    item = items.pop()
                    if not items:
                        self._nonempty.clear()
                    return item
            if not block:
                raise queue.Empty
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise queue.Empty
            self._nonempty.wait(left)
