"""Every scenario against every real server stack (the ``stack`` fixture's params).

The servers wait for the client through the ``/_ack`` side channel wherever
an outcome depends on when bytes arrive, so no test depends on timing luck;
every wait has a deadline (:data:`PROMPT`, the watchdog, ``join``), so a hang
fails the test instead of the run.
"""

from __future__ import annotations

import threading

from ssesync import Event, SSEConnectionError
from tests.helpers import WAIT, fast, take

from .scenarios import GAP, PLAIN, PROMPT, SCENARIO, Watchdog, expected, seen
from .stacks import Stack


def test_plain_events_arrive_complete_and_in_order(stack: Stack) -> None:
    source = fast(stack.url("/plain"))
    with Watchdog(source, WAIT) as dog:
        got = take(source, len(PLAIN))
    source.close()
    assert [seen(event) for event in got] == [expected(event) for event in PLAIN], (
        f"the watchdog closed the source after {WAIT} s" if dog.fired else ""
    )
    # The event without an id keeps the last event ID of the one before it.
    assert [event.last_event_id for event in got][2:4] == ["3", "3"]


def test_reconnect_resumes_after_the_last_event_id(stack: Stack, key: str) -> None:
    # /resume ends cleanly after id 3, drops the connection in the middle of
    # id 7, ends after id 9, then answers 204: the source finishes by itself.
    source = fast(stack.url("/resume", k=key), dedupe=False, timeout=(5, 30))
    got: list[Event] = []
    lock = threading.Lock()

    def collect(event: Event) -> None:
        with lock:
            got.append(event)

    source.on("message", collect)
    errors: list[BaseException] = []
    source.on_error(lambda src, exc: errors.append(exc))
    source.start()
    try:
        finished = source.join(timeout=PROMPT)
    finally:
        source.close()
    with lock:
        received = [seen(event) for event in got]
    requests = stack.log(key)
    assert finished, f"not finished after {PROMPT} s; received {received}; requests {requests}"
    assert received == [expected(event) for event in SCENARIO["resume"]["events"]]
    assert [r["last_event_id"] for r in requests] == [None, "3", "6", "9"]
    assert all(isinstance(error, SSEConnectionError) for error in errors), errors


def test_keep_alive_comments_are_seen_at_once_and_events_still_arrive(
    stack: Stack, key: str
) -> None:
    # The server sends each ping as a lone comment line and waits for the
    # client to acknowledge it before it sends anything more (API.md §4: "A
    # comment is reported as soon as its line is complete").
    source = fast(stack.url("/gap", k=key, wait=PROMPT), reconnect=False)
    comments: list[str] = []

    @source.on_comment
    def acknowledge(src: object, text: str) -> None:
        comments.append(text)
        if text in GAP["pings"]:
            stack.ack(key, GAP["pings"].index(text) + 1)

    with Watchdog(source, WAIT) as dog:
        got = take(source, 2)
    source.close()
    assert not dog.fired, f"the watchdog closed the source after {WAIT} s; got {got}"
    assert [seen(event) for event in got] == [expected(GAP["before"]), expected(GAP["after"])]
    assert comments == GAP["pings"]


def test_end_of_body_ends_iteration_at_once(stack: Stack, key: str) -> None:
    # The read timeout is far longer than the watchdog, and the Node server
    # keeps the connection alive for longer still: only the end of the body
    # itself can end this iteration in time.
    source = fast(stack.url("/end", k=key), reconnect=False, timeout=(5, 30))
    with Watchdog(source, PROMPT) as dog:
        got = [event.data for event in source]
    assert not dog.fired, (
        f"{stack.name}: iteration was still reading {PROMPT} s after the server ended the "
        f"body (got {got}); the end of the body was not seen"
    )
    assert got == ["first"]
    assert [r["last_event_id"] for r in stack.log(key)] == [None]


def test_end_of_body_with_reconnect_connects_again(stack: Stack, key: str) -> None:
    # Each connection to /end sends the next event and ends; then a 204 ends the source.
    source = fast(stack.url("/end", k=key), timeout=(5, 30))
    with Watchdog(source, PROMPT) as dog:
        got = [event.data for event in source]
    requests = stack.log(key)
    assert not dog.fired, (
        f"{stack.name}: still reading {PROMPT} s after the first connection began (got {got}, "
        f"requests {requests}); the end of a body was not seen"
    )
    assert got == ["first", "second"]
    assert [r["last_event_id"] for r in requests] == [None, "1", "2"]
