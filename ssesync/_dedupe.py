"""The replay filter: which events a reconnect replays, and only those.

A server that honours ``Last-Event-ID`` often resends the event with that id,
or a few before it, when a client comes back; some resend without ids at all.
A user wants each event once, but never at the price of new information: a
restarted server that counts its ids from 1 again, or one that uses an id as a
version number, sends old ids with new data. So an event is a replay only
when its id *and* its data match an event already delivered (API.md, section
4), and an event without an id only when it is the first event after a
reconnect and repeats the data of the last event delivered.

Pure bookkeeping, no I/O and no clock: the read loop consults it for every
event that carries an id, so the common case is a set lookup. What it
remembers is bounded: the pairs of the newest :data:`DEDUPE_WINDOW` to twice
that many ids, forgotten in bulk so that the cost per event stays constant.
Long data is remembered by its length and hash rather than kept alive.
"""

from __future__ import annotations

import logging
from typing import Optional, Union

__all__ = ["DEDUPE_WINDOW", "ReplayFilter"]

log = logging.getLogger("ssesync")

#: How many recent ids are at least remembered (up to twice as many are).
DEDUPE_WINDOW = 4096
#: Data up to this many characters is kept as it is; longer data by its hash.
KEPT_DATA = 256

Key = tuple[str, Union[str, tuple[int, int]]]


def replay_key(event_id: str, data: str) -> Key:
    """What identifies an event with an id among those delivered."""
    return (event_id, data if len(data) <= KEPT_DATA else (len(data), hash(data)))


class ReplayFilter:
    """Remembers delivered events to recognise their replays.

    The loop adds to :attr:`seen` and :attr:`order` itself on its hot path
    (see :meth:`is_replay` for the rule) and calls :meth:`forget_old` when
    ``order`` outgrows :attr:`limit`.
    """

    __slots__ = ("check_next", "last_data", "order", "seen")

    limit = 2 * DEDUPE_WINDOW

    def __init__(self) -> None:
        self.seen: set[Key] = set()
        self.order: list[Key] = []
        #: The data of the last event delivered.
        self.last_data: Optional[str] = None
        #: Whether the next event is the first after a reconnect.
        self.check_next = False

    def reconnected(self) -> None:
        """A new connection opened: its first event may replay the last one."""
        self.check_next = self.last_data is not None

    def is_replay(self, event_id: Optional[str], data: str) -> bool:
        """Whether the event is a replay; if not, it is remembered as delivered."""
        if event_id:
            key = replay_key(event_id, data)
            if key in self.seen:
                log.debug("skipped a replay of the event with id %r", event_id)
                return True
            self.seen.add(key)
            self.order.append(key)
            if len(self.order) > self.limit:
                self.forget_old()
        elif self.check_next and data == self.last_data:
            self.check_next = False
            log.debug("skipped an id-less replay of the last event after a reconnect")
            return True
        self.check_next = False
        self.last_data = data
        return False

    def forget_old(self) -> None:
        """Keep only the newest :data:`DEDUPE_WINDOW` ids."""
        self.seen.difference_update(self.order[:-DEDUPE_WINDOW])
        del self.order[:-DEDUPE_WINDOW]
