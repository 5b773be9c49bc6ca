"""``source.stream(idle=None)``: events and comments in stream order, for relays.

What a Django or Flask view needs to pass an upstream on: every item with
its ``to_sse()``, a ``None`` whenever the upstream has been silent for
``idle`` seconds (so the view can write a keep-alive and learn that its own
client left), and the upstream closed the moment the view stops.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import pytest

from ssesync import Comment, Event, EventSource, SSEConnectionError
from ssesync._parser import Parser
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, fast, reader_threads, settle


def _left_when_closed(events: list[bytes]) -> tuple[object, threading.Event]:
    """A handler sending ``events`` then silence, and an event set once the client left."""
    left = threading.Event()

    def handler(conn: StreamConnection) -> None:
        try:
            conn.send_headers()
            for piece in events:
                conn.send(piece)
            conn.stall()  # silent until the client leaves
        finally:
            left.set()  # also when the client left before all was sent (a broken pipe)

    return handler, left


@pytest.mark.parametrize("idle", [None, 0.05], ids=["no-idle", "idle"])
def test_events_and_comments_come_in_stream_order(sse_server: SSEServer, idle: object) -> None:
    body = [b": hello\n\n", b"id: 1\ndata: a\n\n", b"data: b\n: mid\ndata: c\n\n", b":\n"]
    handler, _ = _left_when_closed(body)
    sse_server.route("/s", handler)
    got: list[object] = []
    with fast(sse_server.url_for("/s")) as source:
        for item in source.stream(idle=idle):  # type: ignore[arg-type]
            if item is None:
                continue
            got.append(item)
            if len(got) == 5:
                break
    assert got == [Comment("hello"), Event("a", id="1", last_event_id="1"),
                   Comment("mid"), Event("b\nc", last_event_id="1"), Comment("")]  # fmt: skip


def test_idle_yields_none_while_the_upstream_is_silent(sse_server: SSEServer) -> None:
    handler, _ = _left_when_closed([b"data: first\n\n"])
    sse_server.route("/s", handler)
    items: list[object] = []
    with fast(sse_server.url_for("/s")) as source:
        for item in source.stream(idle=0.02):
            if item is None and not items:
                continue  # idle before the first event: a slow connect
            items.append(item)
            if items.count(None) == 3:
                break
    assert items[0] == Event("first")
    assert items[1:] == [None, None, None]


@pytest.mark.parametrize("idle", [None, 0.05], ids=["no-idle", "idle"])
def test_leaving_the_stream_closes_the_upstream_at_once(
    sse_server: SSEServer, idle: object
) -> None:
    handler, left = _left_when_closed([b"data: one\n\n"])
    sse_server.route("/s", handler)
    source = fast(sse_server.url_for("/s"))  # still referred to: leaving alone must close
    for item in source.stream(idle=idle):  # type: ignore[arg-type]
        if isinstance(item, Event):
            break
    assert left.wait(WAIT)
    assert settle(lambda: not reader_threads())
    source.close()


def test_a_relay_writes_what_its_upstream_sent(sse_server: SSEServer) -> None:
    # to_sse() of each item, parsed again, gives the same events and comments.
    body = b": hi\n\nevent: e\nid: 9\nretry: 250\ndata: x\ndata: y\n\ndata:  spaced\n\n"
    sse_server.route("/s", sse_server.raw([body]))
    with fast(sse_server.url_for("/s"), reconnect=False) as source:
        items = [item for item in source.stream() if item is not None]
    relayed = "".join(item.to_sse() for item in items).encode()  # type: ignore[union-attr]
    again = Parser().feed(relayed)
    assert [i if isinstance(i, Event) else Comment(i) for i in again] == items


@pytest.mark.parametrize("idle", [None, 0.05], ids=["no-idle", "idle"])
def test_a_fatal_error_is_raised_after_what_came_before_it(
    sse_server: SSEServer, idle: object
) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]), sse_server.status(404))
    got: list[object] = []

    def relay() -> None:
        for item in source.stream(idle=idle):  # type: ignore[arg-type]
            got.append(item)

    with fast(sse_server.url_for("/s")) as source, pytest.raises(SSEConnectionError):
        relay()
    assert Event("a") in got


@pytest.mark.parametrize("idle", [0, -1, "1"])
def test_idle_must_be_positive_seconds(idle: object) -> None:
    with pytest.raises((TypeError, ValueError), match="idle"):
        EventSource("http://127.0.0.1:9/").stream(idle=idle)  # type: ignore[arg-type]


def _flood(sse_server: SSEServer, surplus: int) -> threading.Event:
    """A route sending a full queue's worth of events and ``surplus`` more, then silence."""
    body = b"".join(b"data: %d\n\n" % i for i in range(1024 + surplus))
    handler, left = _left_when_closed([body])
    sse_server.route("/s", handler)
    return left


def _first_event(stream: Iterator[object]) -> object:
    """The first item that is not an idle ``None`` (a loaded machine may be slow to connect)."""
    return next(item for item in stream if item is not None)


def _queue_full(source: EventSource) -> bool:
    sink = source._loop.sink  # type: ignore[union-attr]
    return bool(sink.queue.full())  # type: ignore[attr-defined]


def test_leaving_a_stream_whose_queue_is_full_is_prompt(sse_server: SSEServer) -> None:
    # The reader holds 500 parsed events it cannot queue: leaving must not
    # wait for each of them in turn (0.1 s apiece, 50 s in all, before the fix).
    left = _flood(sse_server, surplus=500)
    source = fast(sse_server.url_for("/s"))
    stream = source.stream(idle=5)
    assert _first_event(stream) == Event("0")
    assert settle(lambda: _queue_full(source))
    started = time.monotonic()
    stream.close()
    assert left.wait(WAIT)
    assert settle(lambda: not reader_threads())
    assert time.monotonic() - started < WAIT  # bounded, not timed: 50 s before the fix
    source.close()


def test_close_from_another_thread_ends_a_stream_at_once(sse_server: SSEServer) -> None:
    # After close() returns, the stream yields nothing more: neither the
    # queued events nor a None every idle period for ever.
    _flood(sse_server, surplus=500)
    source = fast(sse_server.url_for("/s"))
    stream = source.stream(idle=0.01)
    assert _first_event(stream) == Event("0")
    assert settle(lambda: _queue_full(source))
    closer = threading.Thread(target=source.close)
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive()
    assert list(itertools.islice(stream, 5)) == []


def test_a_stream_never_iterated_closes_its_upstream_when_dropped(sse_server: SSEServer) -> None:
    handler, left = _left_when_closed([b"retry: 10\ndata: one\n\n"])
    sse_server.route("/s", handler)
    stream = fast(sse_server.url_for("/s")).stream(idle=5)
    assert sse_server.wait_for_requests(1, timeout=WAIT)
    del stream  # never started, and the source with it
    assert left.wait(WAIT)
    assert settle(lambda: not reader_threads())
    assert len(sse_server.requests) == 1  # and no reconnect after it


def test_a_stream_ending_with_its_queue_full_still_ends(sse_server: SSEServer) -> None:
    # The reader finishes while the queue is full: the end is queued behind
    # the events all the same, and the iterator stops after the last of them.
    sse_server.route("/s", sse_server.raw([b"".join(b"data: %d\n\n" % i for i in range(1025))]))
    source = fast(sse_server.url_for("/s"), reconnect=False)
    stream = source.stream(idle=0.01)
    assert _first_event(stream) == Event("0")
    assert settle(lambda: _queue_full(source))
    rest = list(itertools.islice(stream, 2000))
    assert rest == [Event(str(i)) for i in range(1, 1025)]
    assert settle(lambda: not reader_threads())


def test_a_streamed_source_cannot_be_started(sse_server: SSEServer) -> None:
    handler, _ = _left_when_closed([b"data: one\n\n"])
    sse_server.route("/s", handler)
    with fast(sse_server.url_for("/s")) as source:
        stream = source.stream(idle=5)
        with pytest.raises(RuntimeError, match="iterated"):
            source.start()
        stream.close()
