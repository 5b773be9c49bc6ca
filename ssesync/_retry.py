"""Reconnect delays: backoff, jitter, the server's ``retry:`` and ``Retry-After``.

Pure arithmetic with no sleeping and no clock of its own, so every rule is a
one-line test. The read loop asks :meth:`Backoff.next_delay` how long to wait
before each reconnect and tells it when a connection proved healthy.

The rules (API.md, section 4). The *reconnection time* is ``retry_delay``
until the server sends a ``retry:`` field, which replaces it; the
specification makes it a floor ("wait a delay equal to the reconnection
time, then optionally some more"). So the first reconnect waits between 1
and 1.5 times the reconnection time: jitter is added, never subtracted. Each
further failed attempt in a row doubles the delay, up to ``max_retry_delay``;
those waits are drawn between half and all of the current delay, so that
many clients dropped together do not come back together, but never below
the reconnection time. ``max_retry_delay`` is thus the longest wait unless
the reconnection time itself is longer. A ``Retry-After`` from the server is
a floor too, capped by ``max_retry_delay``. A connection that stayed healthy
(it delivered an event, or stayed open for :data:`HEALTHY_AFTER` seconds)
resets the count, so the next reconnect is a first one again. A
reconnection time of 0 means the first reconnect is immediate; consecutive
failures after it back off from :data:`ZERO_BASE_FLOOR_MS`, so ``retry: 0``
cannot cause a storm.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Callable, Optional

__all__ = ["HEALTHY_AFTER", "LONGEST_WAIT_MS", "ZERO_BASE_FLOOR_MS", "Backoff", "parse_retry_after"]

#: Seconds a connection must stay open to count as healthy without an event.
HEALTHY_AFTER = 5.0
#: With a base delay of 0, the first reconnect is immediate; failures after it
#: back off from this many ms, so a server that answers ``retry: 0`` and closes
#: at once cannot start a reconnect storm.
ZERO_BASE_FLOOR_MS = 100.0
#: The longest wait, in ms: what a browser's timer can wait (2**31 - 1 ms,
#: about 24.8 days). A server's ``retry:`` may be any number of digits; a
#: longer wait than this would overflow the clock of a thread's wait.
LONGEST_WAIT_MS = 2**31 - 1.0


class Backoff:
    """The reconnect delay of one source.

    :param retry_delay: the base delay in ms.
    :param max_retry_delay: the cap in ms.
    :param max_retries: consecutive failed attempts allowed, ``None`` for no limit.
    :param random: a source of floats in ``[0, 1)``, replaceable in tests.
    """

    def __init__(
        self,
        retry_delay: float,
        max_retry_delay: float,
        max_retries: Optional[int] = None,
        random: Callable[[], float] = random.random,
    ) -> None:
        if retry_delay < 0 or max_retry_delay < 0:
            raise ValueError("retry delays must not be negative")
        if max_retries is not None and max_retries < 0:
            raise ValueError("max_retries must not be negative")
        self.base_ms = float(retry_delay)
        self.max_ms = float(max_retry_delay)
        self.max_retries = max_retries
        #: Failures counted since the last healthy connection: the first is
        #: the stream that ended (or the first connection that failed), each
        #: further one an attempt to connect again.
        self.attempts = 0
        #: Whether that first failure was of a stream that had been opened.
        self.first_opened = False
        #: How many of the further attempts opened the stream, then ended
        #: before it proved healthy (the others failed to open it).
        self.opened_retries = 0
        self._random = random

    def set_server_delay(self, ms: int) -> None:
        """Apply a ``retry:`` field: it replaces the base delay."""
        self.base_ms = float(ms)

    def reset(self) -> None:
        """A connection proved healthy: the next reconnect waits the base delay."""
        self.attempts = 0
        self.opened_retries = 0

    def summary(self) -> str:
        """The attempts after the first failure, in words: "after 2 failed retries".

        They are reconnect attempts when the first failure was an opened
        stream ending, retries (of the first connection) otherwise; each
        either failed to open the stream, or opened it and then ended before
        it delivered an event or stayed open long enough to count as healthy.
        """
        retries = self.attempts - 1
        if self.first_opened:
            noun, nouns = "reconnect attempt", "reconnect attempts"
        else:
            noun, nouns = "retry", "retries"
        if retries <= 0:
            return f"without a {noun} (max_retries={self.max_retries})"
        word = noun if retries == 1 else nouns
        counted = f"{retries} {word}"
        opened, failed = self.opened_retries, retries - self.opened_retries
        if not opened:
            return f"after {retries} failed {word}"
        if not failed:
            return f"after {counted} that opened the stream but delivered no event"
        return (
            f"after {counted} ({failed} failed, "
            f"{opened} opened the stream but delivered no event)"
        )

    @property
    def exhausted(self) -> bool:
        """Whether the attempts counted so far exceed ``max_retries``."""
        return self.max_retries is not None and self.attempts > self.max_retries

    def next_delay(self, retry_after: Optional[float] = None, *, opened: bool = False) -> float:
        """Count one more failure and return the seconds to wait before the next attempt.

        :param retry_after: seconds from the server's ``Retry-After``, if any.
        :param opened: the failure is of a stream that had been opened (it
            ended or broke), not of an attempt to open one.
        """
        self.attempts += 1
        if self.attempts == 1:
            self.first_opened = opened
        elif opened:
            self.opened_retries += 1
        floor = self.base_ms
        if self.attempts == 1:
            # The first reconnect: the reconnection time plus up to half of it.
            wait = min(floor * (1.0 + 0.5 * self._random()), max(self.max_ms, floor))
        else:
            base, doublings = floor, self.attempts - 1
            if base == 0:
                base, doublings = ZERO_BASE_FLOOR_MS, doublings - 1
            current = min(self.max_ms, base * 2.0 ** min(doublings, 62))
            wait = max(current * (0.5 + 0.5 * self._random()), floor)
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after * 1000.0, self.max_ms))
        return min(wait, LONGEST_WAIT_MS) / 1000.0


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit() and value.isascii():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None  # type: ignore[unreachable]  # older Pythons return None
    if now is None:
        now = time.time()
    return max(0.0, when.timestamp() - now)
