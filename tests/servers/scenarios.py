"""What the scenario tests share: the expected events, bounds, and a watchdog."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Optional

from ssesync import Event, EventSource

from .apps.common import GAP, PLAIN, SCENARIO

__all__ = ["GAP", "PLAIN", "PROMPT", "SCENARIO", "Watchdog", "expected", "seen"]

#: Seconds for anything that takes milliseconds when it works: a server's
#: wait for an ack, a stream's end after its last byte. A hang shows as a
#: failure after this long, never as a pass by luck.
PROMPT = 5.0

Summary = tuple[Optional[str], Optional[str], str]


def seen(event: Event) -> Summary:
    """What a test compares of an event: ``(event, id, data)``."""
    return (event.event, event.id, event.data)


def expected(event: Mapping[str, str]) -> Summary:
    """The summary of a scenario event as the server sends it."""
    return (event.get("event"), event.get("id"), event["data"])


class Watchdog:
    """``with Watchdog(source, seconds):`` closes ``source`` if the block runs longer.

    A stuck read then ends, and the test fails on :attr:`fired` with its own
    message instead of hanging until pytest-timeout.
    """

    def __init__(self, source: EventSource, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._source = source
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def _fire(self) -> None:
        self.fired = True
        self._source.close()

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        self._timer.join()
