"""The replay filter: which events a reconnect replays, and only those.

A server that honours ``Last-Event-ID`` often resends the event with that id,
or a few before it, when a client comes back; some resend without ids at all.
A user wants each event once, but never at the price of new information: a
restarted server that counts its ids from 1 again, or one that uses an id as a
version number, sends old ids with new data. So an event is a replay only
when its id was delivered before *with the same data* (API.md, section 4),
and an event without an id only when it is the first event after a
reconnect and repeats the data of the last event delivered.

Pure bookkeeping, no I/O and no clock: the read loop consults it for every
event that carries an id, so the common case is one dict lookup and one
store. It maps each delivered id to the data it was last delivered with
(long data by its length and hash, so old events are not kept alive); a
dict keeps insertion order, so the oldest ids are forgotten in bulk, and
what it holds stays between :data:`DEDUPE_WINDOW` and twice that many ids.
"""

from __future__ import annotations

import itertools
import logging
from typing import Optional, Union

__all__ = ["DEDUPE_WINDOW", "KEPT_DATA", "ReplayFilter", "data_key"]

log = logging.getLogger("ssesync")

#: How many recent ids are at least remembered (up to twice as many are).
DEDUPE_WINDOW = 4096
#: Data up to this many characters is kept as it is; longer data by its hash.
KEPT_DATA = 256

DataKey = Union[str, tuple[int, int]]


def data_key(data: str) -> DataKey:
    """What is remembered of an event's data: itself, or its length and hash if long."""
    return data if len(data) <= KEPT_DATA else (len(data), hash(data))


class ReplayFilter:
    """Remembers delivered events to recognise their replays.

    The loop reads and writes :attr:`seen` itself on its hot path (see
    :meth:`is_replay` for the rule) and calls :meth:`forget_old` when it
    outgrows :attr:`limit`.
    """

    __slots__ = ("check_next", "last_data", "seen")

    limit = 2 * DEDUPE_WINDOW

    def __init__(self) -> None:
        #: Each delivered id, with the data it was last delivered with.
        self.seen: dict[str, DataKey] = {}
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
            key = data if len(data) <= KEPT_DATA else (len(data), hash(data))
            seen = self.seen
            known = seen.get(event_id)
            if known == key:
                log.debug("skipped a replay of the event with id %r", event_id)
                return True
            if known is not None:
                del seen[event_id]  # delivered again: as recent as any id
            seen[event_id] = key
            if len(seen) > self.limit:
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
        seen = self.seen
        for event_id in list(itertools.islice(seen, len(seen) - DEDUPE_WINDOW)):
            del seen[event_id]
