"""Fault injection: hostile servers and broken networks against a real loopback server.

Each test breaks one thing on the wire — a reset in the middle of an event, a
half-close, a silent or dripping server, a redirect loop, a reconnect storm,
lying ``Content-Length`` or chunk sizes, malformed response heads — and pins
what ssesync must do about it: keep every complete event exactly once and
drop the partial one, reconnect after the right wait, or fail with a clear
:class:`~ssesync.SSEConnectionError`; never hang, never raise something else.
The last tests stream 10,000 events through connections dropped at random
points and check that the consumer sees each id exactly once, in order.

Every wait is bounded, so a hang fails its test instead of the suite, and
timing is only ever asserted as a lower bound (a wait that must have
happened) or as a generous upper bound where promptness is the behaviour.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Callable

import pytest

from ssesync import Event, EventSource, ReadyState, SSEClient, SSEConnectionError
from ssesync._transport import _body
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, Collector, RawServer, fast, take, watchdog

CHUNKED = {"Transfer-Encoding": "chunked"}  # framing written by the test itself




def drain(source: EventSource, into: list[str]) -> None:
    """Iterate ``source`` to its end, keeping the data of each event in ``into``."""
    for event in source:
        into.append(event.data)












def numbered(first: int, last: int) -> list[dict[str, Any]]:
    return [{"data": f"e{i}", "id": str(i)} for i in range(first, last + 1)]


# -- a connection reset in the middle of an event ---------------------------------------


CUTS = {
    "mid-line": b"id: 4\ndata: e4-parti",
    "after-a-complete-line": b"id: 4\ndata: e4-partial\n",
    "after-a-lone-cr": b"id: 4\r\ndata: e4-partial\r",
    "id-line-only": b"id: 4\n",
    "mid-utf8-character": b"id: 4\ndata: caf\xc3",
}


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
@pytest.mark.parametrize("cut", list(CUTS.values()), ids=list(CUTS))
def test_reset_mid_event_discards_it_and_resumes_without_duplicates(
    sse_server: SSEServer, cut: bytes, chunked: bool
) -> None:
    def first(conn: StreamConnection) -> None:
        conn.send_headers(chunked=chunked)
        for spec in numbered(1, 3):
            conn.event(**spec)
        conn.send(cut)
        conn.drop()

    sse_server.route("/s", first, sse_server.events(numbered(1, 6), resume=True, then="stall"))
    errors = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_error(errors)
    with source, watchdog(source, WAIT):
        got = take(source, 6)
    assert [(e.data, e.id) for e in got] == [(f"e{i}", str(i)) for i in range(1, 7)]
    # The cut-off block's id never counted: the reconnect resumed after 3.
    assert [r.last_event_id for r in sse_server.requests] == [None, "3"]
    assert len(errors.items) == 1
    assert isinstance(errors.items[0][1], SSEConnectionError)


@pytest.mark.usefixtures("started_by")
def test_reset_mid_event_in_callbacks_mode(sse_server: SSEServer) -> None:
    def first(conn: StreamConnection) -> None:
        conn.send_headers()
        for spec in numbered(1, 2):
            conn.event(**spec)
        conn.send(b"id: 3\ndata: never\n")
        conn.drop()

    sse_server.route("/s", first, sse_server.events(numbered(1, 4), resume=True, then="stall"))
    got, errors = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))
    source.on("message", got)
    source.on_error(lambda src, exc: errors((type(exc), src.ready_state)))
    with source.start():
        events = got.wait_for(4)
    assert [e.data for e in events] == ["e1", "e2", "e3", "e4"]
    assert errors.items == [(SSEConnectionError, ReadyState.CONNECTING)]
    assert sse_server.requests[1].last_event_id == "2"


# -- half-close: the server shuts its side down and waits -------------------------------


def _half_closing(chunked: bool, closed_by_client: threading.Event) -> Any:
    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=chunked)
        for spec in numbered(1, 2):
            conn.event(**spec)
        conn.send(b"id: 3\ndata: never")
        conn.half_close()  # returns once the client closed its side, or the server stops
        closed_by_client.set()

    return handler


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_half_close_mid_event_reconnects_and_releases_the_socket(
    sse_server: SSEServer, chunked: bool
) -> None:
    closed_by_client = threading.Event()
    sse_server.route(
        "/s",
        _half_closing(chunked, closed_by_client),
        sse_server.events(numbered(1, 4), resume=True, then="stall"),
    )
    with fast(sse_server.url_for("/s")) as source, watchdog(source, WAIT):
        got = take(source, 4)
        # The client closed the half-closed connection instead of holding it.
        assert closed_by_client.wait(WAIT)
    assert [e.data for e in got] == ["e1", "e2", "e3", "e4"]
    assert sse_server.requests[1].last_event_id == "2"


def test_half_close_without_reconnect_ends_a_close_delimited_stream_cleanly(
    sse_server: SSEServer,
) -> None:
    closed_by_client = threading.Event()
    sse_server.route("/s", _half_closing(False, closed_by_client))
    source = fast(sse_server.url_for("/s"), reconnect=False)
    with watchdog(source, WAIT):
        assert [e.data for e in source] == ["e1", "e2"]
    assert closed_by_client.wait(WAIT)
    assert source.ready_state is ReadyState.CLOSED


def test_half_close_without_reconnect_breaks_a_chunked_stream(sse_server: SSEServer) -> None:
    # The chunked body never got its terminating chunk: that is a broken stream.
    closed_by_client = threading.Event()
    sse_server.route("/s", _half_closing(True, closed_by_client))
    source = fast(sse_server.url_for("/s"), reconnect=False)
    got: list[str] = []
    with watchdog(source, WAIT), pytest.raises(SSEConnectionError):
        drain(source, got)
    assert got == ["e1", "e2"]
    assert closed_by_client.wait(WAIT)


# -- silent servers ---------------------------------------------------------------------


@pytest.mark.usefixtures("started_by")
def test_stalled_stream_times_out_reconnects_and_closes_the_stalled_socket(
    sse_server: SSEServer,
) -> None:
    stalled_socket_closed = threading.Event()

    def stall(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("e1", id="1")
        conn.stall()  # returns when the client closes the connection
        stalled_socket_closed.set()

    sse_server.route("/s", stall, sse_server.events(numbered(1, 2), resume=True, then="stall"))
    got, errors = Collector(), Collector()
    source = fast(sse_server.url_for("/s"), timeout=(5, 1.0))
    source.on("message", got)
    source.on_error(lambda src, exc: errors((exc, src.ready_state)))
    with source.start():
        assert [e.data for e in got.wait_for(2)] == ["e1", "e2"]
        assert stalled_socket_closed.wait(WAIT)
    ((exc, state),) = errors.items
    assert isinstance(exc, SSEConnectionError)
    assert "timed out" in str(exc)
    assert state is ReadyState.CONNECTING
    assert sse_server.requests[1].last_event_id == "1"


def _never_answers(conn: StreamConnection) -> None:
    conn.stall()


def test_server_that_never_sends_headers_times_out_then_reconnects(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", _never_answers, sse_server.events([{"data": "finally"}], then="stall"))
    errors = Collector()
    source = fast(sse_server.url_for("/s"), timeout=(5, 1.0))
    source.on_error(errors)
    with source, watchdog(source, WAIT):
        assert take(source, 1)[0].data == "finally"
    ((_, exc),) = errors.items
    assert isinstance(exc, SSEConnectionError)
    assert "timed out" in str(exc)
    assert sse_server.connection_count == 2


def test_server_that_never_sends_headers_without_reconnect_raises(sse_server: SSEServer) -> None:
    sse_server.route("/s", _never_answers)
    source = fast(sse_server.url_for("/s"), timeout=(5, 0.3), reconnect=False)
    started = time.monotonic()
    with watchdog(source, WAIT), pytest.raises(SSEConnectionError, match="timed out"):
        list(source)
    assert time.monotonic() - started < 5  # the read timeout, not the watchdog, ended it
    assert sse_server.connection_count == 1
    assert source.ready_state is ReadyState.CLOSED


def test_connect_to_a_server_that_never_sends_headers_raises_at_connect(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", _never_answers)
    with SSEClient(timeout=(5, 0.3), reconnect=False) as client, pytest.raises(
        SSEConnectionError, match="timed out"
    ):
        client.connect(sse_server.url_for("/s"))
    assert sse_server.connection_count == 1


# -- a server that drips one byte at a time -----------------------------------------------

DRIPPED = (
    "\ufeff: hello\r\n"
    "retry: 0\r\n"
    "id: 1\r\nevent: greet\r\ndata: héllo 🎉\r\n\r\n"
    "data: two\rdata: lines\r\r"
    "id: 3\ndata:\ndata: third\n\n"
    "data: cut at the end"
).encode()


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_stream_dripped_one_byte_at_a_time_in_callbacks_mode(
    sse_server: SSEServer, chunked: bool
) -> None:
    pieces = [DRIPPED[i : i + 1] for i in range(len(DRIPPED))]
    sse_server.route("/s", sse_server.raw(pieces, chunked=chunked, pause=0.0005, then="end"))
    got, comments, closed = Collector(), Collector(), Collector()
    source = fast(sse_server.url_for("/s"), reconnect=False)
    source.on("message", got)
    source.on("greet", got)
    source.on_comment(comments)
    source.on_close(closed)
    source.start()
    closed.wait_for(1)
    assert source.join(WAIT)
    assert [(e.type, e.data, e.id, e.last_event_id) for e in got.items] == [
        ("greet", "héllo 🎉", "1", "1"),
        ("message", "two\nlines", None, "1"),
        ("message", "\nthird", "3", "3"),
    ]
    assert comments.items == [(source, "hello")]


def _chunk_framed(payload: bytes, rng: random.Random) -> bytes:
    """``payload`` in chunked framing, in chunks of random sizes, some with extensions."""
    out, pos = [], 0
    while pos < len(payload):
        size = rng.randint(1, 40)
        piece = payload[pos : pos + size]
        pos += size
        extension = rng.choice([b"", b";name=value", b";flag"])
        out.append(b"%x%s\r\n%s\r\n" % (len(piece), extension, piece))
    return b"".join(out) + b"0\r\nX-Trailer: ignored\r\n\r\n"


def test_chunk_framing_dripped_one_byte_at_a_time(
    sse_server: SSEServer, chunked_path: bool
) -> None:
    # Every chunk-size line, extension, payload and CRLF is cut at every position.
    framed = _chunk_framed(DRIPPED, random.Random(3))
    pieces = [framed[i : i + 1] for i in range(len(framed))]
    sse_server.route("/s", sse_server.raw(pieces, pause=0.0002, headers=CHUNKED, then="end"))
    source = fast(sse_server.url_for("/s"), reconnect=False)
    with watchdog(source, WAIT):
        events = list(source)
    assert [(e.type, e.data, e.id) for e in events] == [
        ("greet", "héllo 🎉", "1"),
        ("message", "two\nlines", None),
        ("message", "\nthird", "3"),
    ]


# -- redirect loops -----------------------------------------------------------------------


@pytest.mark.usefixtures("started_by")
def test_two_hop_redirect_loop_is_fatal_and_bounded_in_callbacks_mode(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/a", sse_server.redirect("/b", code=307))
    sse_server.route("/b", sse_server.redirect("/a", code=302))
    errors, closed = Collector(), Collector()
    source = fast(sse_server.url_for("/a"))  # reconnect=True: still not retried
    source.on_error(lambda src, exc: errors((exc, src.ready_state)))
    source.on_close(closed)
    source.start()
    assert source.join(WAIT)
    ((exc, state),) = errors.items
    assert isinstance(exc, SSEConnectionError)
    assert "redirects" in str(exc)
    assert not exc.retryable
    assert state is ReadyState.CLOSED
    assert closed.items == [source]
    assert 2 <= sse_server.connection_count <= 12


@pytest.mark.parametrize("location", ["http://[::1", "//["])
def test_redirect_to_an_unparsable_location_is_a_connection_error(
    sse_server: SSEServer, location: str
) -> None:
    sse_server.route("/s", sse_server.redirect(location))
    source = fast(sse_server.url_for("/s"))
    with watchdog(source, WAIT), pytest.raises(SSEConnectionError) as info:
        list(source)
    assert not info.value.retryable
    assert sse_server.connection_count == 1


# -- reconnect storms and huge waits ----------------------------------------------------------


@pytest.mark.usefixtures("started_by")
def test_reconnect_storm_is_spaced_by_growing_jittered_backoff(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    arrivals: list[float] = []

    def empty_stream(conn: StreamConnection) -> None:
        arrivals.append(time.monotonic())
        conn.send_headers()
        conn.end()  # a 200 with an empty body: every connection ends at once

    sse_server.route("/s", empty_stream)
    caplog.set_level(logging.INFO, logger="ssesync")
    source = EventSource(
        sse_server.url_for("/s"), retry_delay=50, max_retry_delay=400, timeout=(5, 5)
    )
    source.on("message", lambda event: None)
    source.start()
    time.sleep(1.5)
    source.close()
    count = len(arrivals)
    # A tight loop would connect hundreds of times in 1.5 s; the backoff allows
    # about 1 + (1.5 s - 0.375 s) / 0.2 s + 3 = 9 at most.
    assert 3 <= count <= 15, count
    delays = [
        float(record.args[1])  # type: ignore[arg-type]
        for record in caplog.records
        if record.name == "ssesync"
        and "reconnecting in" in record.msg
        and isinstance(record.args, tuple)
    ]
    assert len(delays) >= count - 1
    # The first wait is 1-1.5x the reconnection time (50 ms); each later one is
    # drawn between half and all of the doubled delay, up to the cap, and
    # never below the reconnection time.
    ceilings = [0.075] + [min(0.4, 0.05 * 2**k) for k in range(1, len(delays))]
    floors = [0.05] + [max(0.05, c / 2) for c in ceilings[1:]]
    for delay, floor, ceiling in zip(delays, floors, ceilings):
        assert floor - 1e-9 <= delay <= ceiling + 1e-9, (delays, ceilings)
    assert delays[-1] > delays[0]
    # Jitter: the waits are not exactly the deterministic doubling sequence.
    assert any(abs(d - c) > 1e-3 for d, c in zip(delays, ceilings)), delays
    # The server saw the waits: each gap is at least the wait announced before it.
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    for gap, delay in zip(gaps, delays):
        assert gap >= delay - 0.01, (gaps, delays)


@pytest.mark.usefixtures("started_by")
def test_reconnect_storm_after_server_retry_zero_is_still_bounded(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse_server.route("/s", sse_server.raw([b"retry: 0\n\n"], then="end"))
    caplog.set_level(logging.ERROR, logger="ssesync")
    source = EventSource(sse_server.url_for("/s"), retry_delay=50, max_retry_delay=400)
    source.on("message", lambda event: None)
    source.start()
    time.sleep(0.5)
    source.close()
    assert sse_server.connection_count <= 20


RETRY_AFTER = {
    "a-day-in-seconds": "86400",
    "more-digits-than-a-float": "9" * 40,
    "an-http-date-far-ahead": "Fri, 31 Dec 9999 23:59:59 GMT",
}


@pytest.mark.parametrize("value", list(RETRY_AFTER.values()), ids=list(RETRY_AFTER))
def test_huge_retry_after_is_capped_by_max_retry_delay(sse_server: SSEServer, value: str) -> None:
    sse_server.route(
        "/s",
        sse_server.status(503, headers={"Retry-After": value}),
        sse_server.events([{"data": "back"}], then="stall"),
    )
    errors = Collector()
    source = fast(sse_server.url_for("/s"), max_retry_delay=300)
    source.on_error(errors)
    started = time.monotonic()
    with source, watchdog(source, WAIT):
        assert take(source, 1)[0].data == "back"
    elapsed = time.monotonic() - started
    ((_, exc),) = errors.items
    assert exc.status == 503
    assert exc.retry_after is not None
    assert exc.retry_after > 86000
    # Retry-After is honoured as a floor, capped at max_retry_delay (0.3 s):
    assert elapsed >= 0.25
    assert elapsed < 5


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize(
    "retry", ["86400000", "99999999999999", "9" * 40], ids=["day", "3k-years", "40-digits"]
)
def test_huge_server_retry_field_is_honoured_and_close_still_ends_the_wait(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture, retry: str
) -> None:
    # The server's retry: is the reconnection time, a floor for every wait
    # (API.md section 4): max_retry_delay does not cut it short. Beyond what
    # a timer can wait (OverflowError before), the wait is the longest a
    # browser's timer waits: 2**31 - 1 ms, about 24.8 days.
    body = b"retry: %s\ndata: a\n\n" % retry.encode()
    sse_server.route("/s", sse_server.raw([body], then="end"))
    caplog.set_level(logging.INFO, logger="ssesync")
    errors = Collector()
    source = fast(sse_server.url_for("/s"), max_retry_delay=300)
    source.on_error(errors)
    source.on("message", lambda event: None)
    source.start()
    errors.wait_for(1)  # the stream ended; the source now waits a day or more
    assert not source.join(0.2)  # still waiting
    started = time.monotonic()
    source.close()
    assert source.join(WAIT)
    assert time.monotonic() - started < 2
    assert [type(exc) for _, exc in errors.items] == [SSEConnectionError]
    waits = [
        float(r.getMessage().rsplit("reconnecting in ", 1)[1].split()[0])
        for r in caplog.records
        if "reconnecting in" in r.getMessage()
    ]
    assert waits
    assert 86400 <= waits[0] <= round((2**31 - 1) / 1000, 2)  # as logged


# -- lying lengths ----------------------------------------------------------------------------


def _lying(headers: dict[str, str], *pieces: bytes, then: str = "end") -> Any:
    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=False, headers=headers)
        for piece in pieces:
            conn.send(piece)
            conn.pause(0.05)  # let the client take each piece on its own
        if then == "stall":
            conn.stall()
        else:
            conn.end()

    return handler


# Each lie, with the events that arrived whole before it was found out.
LIES = {
    "content-length-longer-than-body": (
        _lying({"Content-Length": "1000"}, b"data: a\n\n", b"data: partial"),
        ["a"],
    ),
    "chunk-size-not-hex-then-close": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"zz\r\ndata: b\n\n"),
        ["a"],
    ),
    "chunk-size-not-hex-then-silence": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"zz\r\ndata: b\n\n\r\n", then="stall"),
        ["a"],
    ),
    # The 9 bytes of the short chunk did arrive whole: their event counts.
    "chunk-shorter-than-announced": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"100\r\ndata: b\n\n"),
        ["a", "b"],
    ),
    "chunk-longer-than-announced": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"3\r\ndata: b\n\n\r\n"),
        ["a"],
    ),
    # A size line that never ends must not be buffered without bound.
    "endless-chunk-size-line": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"1" * 100_000, then="stall"),
        ["a"],
    ),
    "negative-chunk-size": (
        _lying(CHUNKED, b"9\r\ndata: a\n\n\r\n", b"-5\r\ndata: b\n\n\r\n"),
        None,  # urllib3 may or may not pass "b" on first; either way it must end in an error
    ),
}


@pytest.fixture(params=[True, False], ids=["own-chunked-decoder", "urllib3-chunked-reader"])
def chunked_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Run a test through both ways a chunked body is read (``_transport._body``)."""
    monkeypatch.setattr(_body, "FAST_READS", request.param)
    return bool(request.param)


@pytest.mark.parametrize(("handler", "before"), list(LIES.values()), ids=list(LIES))
def test_lying_length_ends_in_a_connection_error(
    sse_server: SSEServer,
    chunked_path: bool,
    handler: Callable[[StreamConnection], None],
    before: list[str] | None,
) -> None:
    sse_server.route("/s", handler)
    source = fast(sse_server.url_for("/s"), reconnect=False, timeout=(5, 10))
    got: list[str] = []
    started = time.monotonic()
    with watchdog(source, WAIT), pytest.raises(SSEConnectionError) as info:
        drain(source, got)
    assert time.monotonic() - started < 5  # detected, not waited out until the read timeout
    if before is not None:
        assert got == before
    assert got[:1] == ["a"]
    assert info.value.status is None
    assert source.ready_state is ReadyState.CLOSED


def test_lying_length_with_reconnect_reconnects(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        _lying({"Content-Length": "1000"}, b"id: 1\ndata: a\n\n", b"id: 2\ndata: partial"),
        sse_server.events(numbered(1, 3), resume=True, then="stall"),
    )
    errors = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_error(errors)
    with source, watchdog(source, WAIT):
        got = take(source, 3)
    assert [e.data for e in got] == ["a", "e2", "e3"]
    assert sse_server.requests[1].last_event_id == "1"
    assert [type(exc) for _, exc in errors.items] == [SSEConnectionError]


def test_malformed_chunk_size_is_reported_as_such(sse_server: SSEServer) -> None:
    # (Only with the default reader: urllib3's own calls it an incomplete read.)
    sse_server.route("/s", LIES["chunk-size-not-hex-then-silence"][0])
    source = fast(sse_server.url_for("/s"), reconnect=False)
    with watchdog(source, WAIT), pytest.raises(SSEConnectionError) as info:
        list(source)
    assert "closed the connection" not in str(info.value)
    assert "chunk" in str(info.value).lower()


# -- malformed response heads -------------------------------------------------------------------

SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
BAD_HEADS = {
    "garbage-status-line": b"HTTP/1.1 abc\r\n\r\n",
    "no-status-line": b"data: a\n\n",
    "nothing-at-all": b"",
    "interim-response-only": b"HTTP/1.1 100 Continue\r\n\r\n",
    "header-line-over-64k": SSE_HEAD + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\ndata: a\n\n",
    "over-100-headers": SSE_HEAD + b"X-Many: a\r\n" * 150 + b"\r\ndata: a\n\n",
    "conflicting-content-lengths": SSE_HEAD
    + b"Content-Length: 5\r\nContent-Length: 9\r\n\r\ndata: a\n\n",
    "gzip-that-is-not": SSE_HEAD + b"Content-Encoding: gzip\r\n\r\ndata: a\n\n",
}


@pytest.mark.parametrize("payload", list(BAD_HEADS.values()), ids=list(BAD_HEADS))
def test_malformed_response_is_a_connection_error(payload: bytes) -> None:
    with RawServer(payload) as server:
        source = fast(server.url, reconnect=False)
        with watchdog(source, WAIT), pytest.raises(SSEConnectionError) as info:
            list(source)
        assert server.connections == 1
    assert info.value.retryable  # like a network error: a reconnect may help
    assert info.value.url is not None
    assert info.value.url.endswith("/s")
    assert source.ready_state is ReadyState.CLOSED


def test_malformed_responses_are_retried_within_max_retries() -> None:
    with RawServer(BAD_HEADS["garbage-status-line"]) as server:
        source = fast(server.url, max_retries=3)
        with watchdog(source, WAIT), pytest.raises(SSEConnectionError, match="gave up"):
            list(source)
        assert server.connections == 4


# -- no event lost or duplicated across 10,000 events and random drops -------------------------

TOTAL = 10_000


def _encode(i: int) -> bytes:
    """Event ``i`` in one of several shapes, so cuts land in every kind of line."""
    end = ("\n", "\r\n", "\r")[i % 3]
    lines = [f"id: {i}"]
    if i % 7 == 0:
        lines.append(": keep-alive")
    if i % 5 == 0:
        lines += [f"data: payload {i}", "data: é🎉"]
    else:
        lines.append(f"data: payload {i}")
    return (end.join(lines) + end + end).encode()


def _expected_data(i: int) -> str:
    return f"payload {i}\né🎉" if i % 5 == 0 else f"payload {i}"


class DroppingServer:
    """Serves ids 1..TOTAL, resuming after ``Last-Event-ID``, and breaks each connection.

    Each connection sends a chunked or close-delimited body: a random number
    of whole events (sometimes none), then a random prefix of the next one, in
    random-sized pieces, and then it resets the connection, closes it cleanly
    or half-closes it. A seeded generator makes any failure reproducible.
    """

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._events = [b""] + [_encode(i) for i in range(1, TOTAL + 1)]
        #: Per connection: the Last-Event-ID it carried, the last complete id it sent.
        self.log: list[tuple[str | None, int]] = []

    def __call__(self, conn: StreamConnection) -> None:
        last = conn.request.last_event_id
        start = int(last) + 1 if last else 1
        with self._lock:
            rng = self._random
            whole = rng.choice([0, 1, rng.randint(2, 300)])
            chunked = rng.random() < 0.7
            stop = min(start + whole, TOTAL + 1)
            tail = self._events[stop] if stop <= TOTAL else b""
            cut = rng.randrange(len(tail)) if tail else 0
            body = b"".join(self._events[start:stop]) + tail[:cut]
            sizes = [rng.randint(1, 8192) for _ in range(len(body) // 512 + 1)]
            ending = rng.choice(["drop", "drop", "end", "half_close"])
            # A CRLF event cut just before its very last LF is complete: the
            # CR alone already ends the blank line that dispatches it.
            done = stop if tail.endswith(b"\r\n\r\n") and cut == len(tail) - 1 else stop - 1
            self.log.append((last, done))
        conn.send_headers(chunked=chunked)
        offset = 0
        for size in sizes:
            if offset >= len(body):
                break
            conn.send(body[offset : offset + size])
            offset += size
        if offset < len(body):
            conn.send(body[offset:])
        if start > TOTAL:
            conn.stall()  # everything was delivered: wait for the test to close
        elif ending == "drop":
            conn.drop()
        elif ending == "end":
            conn.end()
        else:
            conn.half_close()

    def check_resumption(self) -> None:
        """Every reconnect asked to resume at or before the last whole event sent."""
        for (_, sent), (asked, _) in zip(self.log, self.log[1:]):
            assert asked is None or int(asked) <= sent, self.log


def _check_sequence(events: list[Event]) -> None:
    ids = [int(e.id) for e in events if e.id is not None]
    assert len(ids) == len(events)
    assert ids == list(range(1, TOTAL + 1)), "lost, duplicated or reordered ids"
    assert all(e.data == _expected_data(int(e.id)) for e in events if e.id is not None)


@pytest.mark.parametrize("dedupe", [True, False], ids=["dedupe", "no-dedupe"])
def test_ten_thousand_events_through_random_drops_by_iteration(
    sse_server: SSEServer, dedupe: bool
) -> None:
    server = DroppingServer(seed=7 if dedupe else 8)
    sse_server.route("/s", server)
    # Drops before the first event are failed attempts, which back off; a
    # small cap keeps the many reconnects here quick.
    source = fast(sse_server.url_for("/s"), dedupe=dedupe, max_retry_delay=20)
    with source, watchdog(source, 30):
        events = take(source, TOTAL)
    _check_sequence(events)
    assert sse_server.connection_count > 50  # the drops really happened
    server.check_resumption()


@pytest.mark.usefixtures("started_by")
def test_ten_thousand_events_through_random_drops_by_callbacks(sse_server: SSEServer) -> None:
    server = DroppingServer(seed=9)
    sse_server.route("/s", server)
    got = Collector()
    source = fast(sse_server.url_for("/s"), max_retry_delay=20)
    source.on("message", got)
    with source.start():
        got.wait_for(TOTAL, timeout=30)
    _check_sequence(got.items[:TOTAL])
    assert len(got.items) == TOTAL  # and nothing after the last one
    assert sse_server.connection_count > 50
    server.check_resumption()
