"""What the Python servers of the tier share: the scenario, its wire form, its bookkeeping.

Every stack (these Python apps and ``node_server.js``) serves the same routes,
read from ``scenario.json`` so that the servers and the tests agree on one
copy of the data:

``/_ready``
    ``200 ok`` once the server serves requests.
``/_log?k=KEY``
    A JSON list, one entry per stream request that carried ``k=KEY``:
    ``{"path", "last_event_id", "content_encoding"}``.
``/_ack?k=KEY&n=N``
    The client's acknowledgement of item ``N`` of the stream ``KEY``: the
    side channel that lets a server wait for the client instead of sleeping.
``/plain``
    The ``plain`` events, then a clean end.
``/resume?k=KEY`` and ``/end?k=KEY``
    A *sequence*: the events after the request's ``Last-Event-ID`` up to the
    next id named in ``end_after``, then the end it names there — ``end``
    (a clean end) or ``drop`` (half an event, then the connection goes away
    without ending the body). ``204`` once nothing is left.
``/gap?k=KEY&wait=S``
    The ``before`` event, then each ping as a lone comment line (no blank
    line after it), waiting up to ``S`` seconds for the client's ack of ping
    ``n`` before going on; then the ``after`` event and a clean end. A
    missing ack is reported in band: an ``error`` event saying which, then
    the end.
``/gzip?k=KEY&wait=S`` (the Python threaded stacks)
    The ``plain`` events, gzip-compressed incrementally when the request
    accepts gzip (each event flushed with ``Z_SYNC_FLUSH``), waiting up to
    ``S`` seconds for the ack of event ``n`` before sending event ``n + 1``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

SCENARIO: dict[str, Any] = json.loads(
    Path(__file__).with_name("scenario.json").read_text(encoding="utf-8")
)
PLAIN: list[dict[str, str]] = SCENARIO["plain"]
SEQUENCES: dict[str, dict[str, Any]] = {
    "/resume": SCENARIO["resume"],
    "/end": SCENARIO["end"],
}
GAP: dict[str, Any] = SCENARIO["gap"]
#: Sent by ``/resume`` before a drop: an event without its blank line.
CUT_EVENT: str = SCENARIO["resume"]["cut_event"]


def format_event(event: Mapping[str, str], sep: str = "\n") -> bytes:
    """One scenario event in wire form (comment first, then fields, then the blank line)."""
    lines = []
    if "comment" in event:
        lines.append(f": {event['comment']}")
    if "event" in event:
        lines.append(f"event: {event['event']}")
    if "id" in event:
        lines.append(f"id: {event['id']}")
    lines.extend(f"data: {line}" for line in event["data"].split("\n"))
    return (sep.join(lines) + sep + sep).encode("utf-8")


def next_batch(path: str, last_event_id: Optional[str]) -> tuple[list[dict[str, str]], str]:
    """The events a sequence route sends after ``last_event_id``, and how it ends then.

    An empty list means the sequence is over (the route answers ``204``).
    """
    sequence = SEQUENCES[path]
    events: list[dict[str, str]] = sequence["events"]
    ids = [event["id"] for event in events]
    start = ids.index(last_event_id) + 1 if last_event_id in ids else 0
    batch: list[dict[str, str]] = []
    for event in events[start:]:
        batch.append(event)
        how = sequence["end_after"].get(event["id"])
        if how is not None:
            return batch, how
    return batch, "end"


def missed_ack(what: str, n: int, wait: float) -> dict[str, str]:
    """The in-band report of an ack that did not come: an ``error`` event."""
    return {"event": "error", "data": f"no ack for {what} {n} within {wait} s"}


class Board:
    """The request log and the acks of a threaded server, safe from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._log: dict[str, list[dict[str, Optional[str]]]] = {}
        self._acks: set[tuple[str, int]] = set()

    def record(
        self,
        key: Optional[str],
        path: str,
        last_event_id: Optional[str],
        content_encoding: Optional[str] = None,
    ) -> None:
        if key is None:
            return
        entry = {
            "path": path,
            "last_event_id": last_event_id,
            "content_encoding": content_encoding,
        }
        with self._cond:
            self._log.setdefault(key, []).append(entry)

    def log(self, key: str) -> list[dict[str, Optional[str]]]:
        with self._cond:
            return list(self._log.get(key, []))

    def ack(self, key: str, n: int) -> None:
        with self._cond:
            self._acks.add((key, n))
            self._cond.notify_all()

    def wait_ack(self, key: str, n: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: (key, n) in self._acks, timeout)
