"""EventSource iteration against a real loopback server: the behaviour of API.md §2 and §4."""

from __future__ import annotations

import json
import logging
import threading
import tracemalloc

import pytest

from ssesync import EventSource, ReadyState, SSEConnectionError, SSEParsingError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import fast, take

# -- delivery -------------------------------------------------------------------


def test_iteration_yields_events_in_order(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events(
            [
                {"data": "one", "id": "1"},
                {"event": "update", "data": "two\nlines"},
                {"data": "three", "retry": 1500},
            ]
        ),
    )
    with fast(sse_server.url_for("/s"), reconnect=False) as source:
        events = list(source)
    assert [(e.type, e.data, e.id, e.retry) for e in events] == [
        ("message", "one", "1", None),
        ("update", "two\nlines", None, None),
        ("message", "three", None, 1500),
    ]
    assert [e.last_event_id for e in events] == ["1", "1", "1"]
    assert source.last_event_id == "1"
    assert source.ready_state is ReadyState.CLOSED


def test_requests_carry_sse_headers_and_no_last_event_id_at_first(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    list(fast(sse_server.url_for("/s"), reconnect=False, headers={"X-Trace": "abc"}))
    (request,) = sse_server.requests
    assert request.headers.get("accept") == "text/event-stream"
    assert request.headers.get("cache-control") == "no-cache"
    assert request.headers.get("x-trace") == "abc"
    assert request.last_event_id is None


def test_last_event_id_option_is_sent_on_first_request(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    source = fast(sse_server.url_for("/s"), reconnect=False, last_event_id="41")
    assert source.last_event_id == "41"
    list(source)
    assert sse_server.requests[0].last_event_id == "41"


def test_last_event_id_with_newline_is_refused() -> None:
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        EventSource("http://127.0.0.1:1/", last_event_id="1\r\nX-Evil: yes")


def test_non_http_url_is_refused() -> None:
    with pytest.raises(ValueError, match="http"):
        EventSource("ftp://example.com/stream")


def test_constructor_does_no_io(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    source = EventSource(sse_server.url_for("/s"))
    source.close()
    assert sse_server.connection_count == 0
    assert source.ready_state is ReadyState.CLOSED


def test_event_delivered_while_server_stays_silent_chunked(sse_server: SSEServer) -> None:
    _check_delivered_before_more_bytes(sse_server, chunked=True)


def test_event_delivered_while_server_stays_silent_close_delimited(
    sse_server: SSEServer,
) -> None:
    _check_delivered_before_more_bytes(sse_server, chunked=False)


def _check_delivered_before_more_bytes(server: SSEServer, *, chunked: bool) -> None:
    received = threading.Event()
    outcome: dict[str, bool] = {}

    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=chunked)
        conn.send(b"data: first\n\n")
        # Hold the connection open and silent until the client has the event.
        outcome["delivered_while_silent"] = received.wait(10)
        conn.end()

    server.route("/s", handler)
    with fast(server.url_for("/s"), reconnect=False) as source:
        event = next(iter(source))
        received.set()
        assert event.data == "first"
    server.wait_for_requests(1)
    assert outcome.get("delivered_while_silent", True)


@pytest.mark.parametrize("chunked", [True, False])
def test_event_split_into_single_bytes(sse_server: SSEServer, chunked: bool) -> None:
    payload = "id: 9\r\nevent: tick\r\ndata: é ☃ 🎉\r\n\r\n".encode()
    pieces = [payload[i : i + 1] for i in range(len(payload))]
    sse_server.route("/s", sse_server.raw(pieces, chunked=chunked, pause=0.001))
    events = list(fast(sse_server.url_for("/s"), reconnect=False))
    assert [(e.type, e.data, e.id) for e in events] == [("tick", "é ☃ 🎉", "9")]


def test_fourteen_megabyte_event_arrives_whole(sse_server: SSEServer) -> None:
    data = "x" * (14 * 1024 * 1024)
    sse_server.route("/s", sse_server.events([{"data": data}, {"data": "after"}]))
    events = list(fast(sse_server.url_for("/s"), reconnect=False))
    assert [len(e.data) for e in events] == [len(data), 5]


@pytest.mark.usefixtures("started_by")
def test_endless_line_raises_parsing_error_with_bounded_memory(sse_server: SSEServer) -> None:
    block = b"y" * 65536
    limit = 1024 * 1024

    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=False)
        conn.send(b"data: ")
        for _ in range(50 * 1024 * 1024 // len(block)):
            if conn.closed_by_peer():
                return
            conn.send(block)
        conn.end()

    sse_server.route("/s", handler)
    tracemalloc.start()
    try:
        source = fast(sse_server.url_for("/s"), reconnect=False, max_event_size=limit)
        with pytest.raises(SSEParsingError, match="max_event_size"):
            list(source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * limit
    assert source.ready_state is ReadyState.CLOSED


# -- reconnects and Last-Event-ID ---------------------------------------------------


def test_reconnect_sends_last_event_id_and_resumes(sse_server: SSEServer) -> None:
    events = [{"data": f"e{i}", "id": str(i)} for i in range(1, 7)]

    def first(conn: StreamConnection) -> None:
        conn.send_headers()
        for event in events[:3]:
            conn.event(**event)
        conn.drop()

    sse_server.route("/s", first, sse_server.events(events, resume=True))
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 6)
    assert [e.data for e in got] == [f"e{i}" for i in range(1, 7)]
    assert [r.last_event_id for r in sse_server.requests] == [None, "3"]


def test_id_in_event_cut_off_by_drop_is_never_sent(sse_server: SSEServer) -> None:
    def first(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("kept", id="1")
        conn.send(b"id: 2\ndata: cut off")
        conn.drop()

    sse_server.route("/s", first, sse_server.events([{"data": "next"}]))
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 2)
    assert [e.data for e in got] == ["kept", "next"]
    assert sse_server.requests[1].last_event_id == "1"
    assert got[1].last_event_id == "1"


def test_id_only_block_moves_last_event_id(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw([b"data: a\nid: 1\n\nid: 2\n\n"], then="drop"),
        sse_server.events([{"data": "b"}]),
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 2)
    assert [e.data for e in got] == ["a", "b"]
    assert sse_server.requests[1].last_event_id == "2"


def test_empty_id_means_no_last_event_id_header(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw([b"id: 5\ndata: a\n\nid\ndata: b\n\n"], then="drop"),
        sse_server.events([{"data": "c"}]),
    )
    with fast(sse_server.url_for("/s"), last_event_id="0") as source:
        got = take(source, 3)
    assert [e.last_event_id for e in got] == ["5", "", ""]
    second = sse_server.requests[1]
    assert second.last_event_id is None
    assert "last-event-id" not in {name.lower() for name in second.headers}


def test_server_retry_zero_means_reconnect_at_once(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw([b"retry: 0\ndata: a\n\n"], then="drop"),
        sse_server.events([{"data": "b"}]),
    )
    with EventSource(sse_server.url_for("/s"), retry_delay=60_000) as source:
        got = take(source, 2)
        assert source._loop is not None
        assert source._loop.backoff.base_ms == 0
    assert [e.data for e in got] == ["a", "b"]


def test_read_timeout_counts_as_broken_stream(sse_server: SSEServer) -> None:
    def stall(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("before stall", id="1")
        conn.stall()

    errors: list[BaseException] = []
    sse_server.route("/s", stall, sse_server.events([{"data": "after", "id": "2"}]))
    source = fast(sse_server.url_for("/s"), timeout=(5, 1.0))
    source.on_error(lambda src, exc: errors.append(exc))
    with source:
        got = take(source, 2)
    assert [e.data for e in got] == ["before stall", "after"]
    assert len(errors) == 1
    assert isinstance(errors[0], SSEConnectionError)
    assert "timed out" in str(errors[0])


def test_stream_end_without_reconnect_ends_iteration(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]))
    assert [e.data for e in fast(sse_server.url_for("/s"), reconnect=False)] == ["a"]
    assert sse_server.connection_count == 1


def test_broken_stream_without_reconnect_raises(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}], then="drop"))
    source = fast(sse_server.url_for("/s"), reconnect=False)
    it = iter(source)
    assert next(it).data == "a"
    with pytest.raises(SSEConnectionError):
        next(it)
    assert source.ready_state is ReadyState.CLOSED


def test_parse_error_with_reconnect_reconnects(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw([b"data: " + b"z" * 200], then="end"),
        sse_server.events([{"data": "fine"}]),
    )
    errors: list[BaseException] = []
    source = fast(sse_server.url_for("/s"), max_event_size=100)
    source.on_error(lambda src, exc: errors.append(exc))
    with source:
        assert take(source, 1)[0].data == "fine"
    assert isinstance(errors[0], SSEParsingError)


# -- statuses -------------------------------------------------------------------------


def test_204_ends_cleanly_without_reconnect(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(204))
    source = fast(sse_server.url_for("/s"))
    assert list(source) == []
    assert sse_server.connection_count == 1
    assert source.ready_state is ReadyState.CLOSED


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410])
def test_client_errors_raise_and_are_not_retried(sse_server: SSEServer, status: int) -> None:
    sse_server.route("/s", sse_server.status(status, body=b"no"))
    with pytest.raises(SSEConnectionError) as info:
        list(fast(sse_server.url_for("/s")))
    assert info.value.status == status
    assert not info.value.retryable
    assert sse_server.connection_count == 1


def test_wrong_content_type_raises(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.raw([b"data: a\n\n"], content_type="text/plain"))
    with pytest.raises(SSEConnectionError, match="text/event-stream") as info:
        list(fast(sse_server.url_for("/s")))
    assert info.value.status == 200
    assert sse_server.connection_count == 1


def test_content_type_with_parameters_is_accepted(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s", sse_server.raw([b"data: a\n\n"], content_type="Text/Event-Stream; charset=utf-8")
    )
    assert [e.data for e in fast(sse_server.url_for("/s"), reconnect=False)] == ["a"]


@pytest.mark.parametrize("status", [500, 502, 503, 429, 408])
def test_transient_statuses_are_retried(sse_server: SSEServer, status: int) -> None:
    sse_server.route("/s", sse_server.status(status), sse_server.events([{"data": "ok"}]))
    errors: list[BaseException] = []
    source = fast(sse_server.url_for("/s"))
    source.on_error(lambda src, exc: errors.append(exc))
    with source:
        assert take(source, 1)[0].data == "ok"
    assert [getattr(e, "status", None) for e in errors] == [status]


def test_retry_after_is_honoured_as_a_floor(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.status(503, headers={"Retry-After": "120"}),
        sse_server.events([{"data": "ok"}]),
    )
    errors: list[BaseException] = []
    source = fast(sse_server.url_for("/s"), max_retry_delay=50)
    source.on_error(lambda src, exc: errors.append(exc))
    with source:
        assert take(source, 1)[0].data == "ok"
    assert isinstance(errors[0], SSEConnectionError)
    assert errors[0].retry_after == 120.0


def test_max_retries_gives_up(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(503))
    with pytest.raises(SSEConnectionError, match="gave up") as info:
        list(fast(sse_server.url_for("/s"), max_retries=2))
    assert sse_server.connection_count == 3
    assert isinstance(info.value.__cause__, SSEConnectionError)


def test_giving_up_says_what_the_reconnect_did(sse_server: SSEServer) -> None:
    # The reconnect connects, then times out before any event: not a failed connect.
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.events([], then="stall"),
    )
    source = fast(sse_server.url_for("/s"), max_retries=1, timeout=(5, 1.0))
    with pytest.raises(SSEConnectionError) as info:
        list(source)
    message = str(info.value)
    assert message.startswith(
        "gave up after 1 reconnect attempt that opened the stream but delivered no event: "
        "read timed out on "
    )
    assert sse_server.connection_count == 2


def test_refused_connection_without_reconnect_raises() -> None:
    with SSEServer() as server:
        url = server.url_for("/s")
    with pytest.raises(SSEConnectionError, match="cannot connect"):
        list(fast(url, reconnect=False))


def test_redirect_is_followed(sse_server: SSEServer) -> None:
    sse_server.route("/old", sse_server.redirect("/new", code=307))
    sse_server.route("/new", sse_server.events([{"data": "moved"}]))
    assert [e.data for e in fast(sse_server.url_for("/old"), reconnect=False)] == ["moved"]


@pytest.mark.parametrize("location", [None, ""])
def test_redirect_without_location_is_an_error(sse_server: SSEServer, location: str | None) -> None:
    sse_server.route("/s", sse_server.redirect(location, code=301))
    with pytest.raises(SSEConnectionError, match="Location") as info:
        list(fast(sse_server.url_for("/s")))
    assert info.value.status == 301


def test_redirect_loop_is_a_bounded_error(sse_server: SSEServer) -> None:
    sse_server.route("/loop", sse_server.redirect("/loop"))
    with pytest.raises(SSEConnectionError, match="redirects"):
        list(fast(sse_server.url_for("/loop")))
    assert sse_server.connection_count <= 12


# -- request bodies --------------------------------------------------------------------


def test_post_json_body_is_resent_on_reconnect(sse_server: SSEServer) -> None:
    sse_server.route(
        "/chat",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.events([{"data": "b", "id": "2"}]),
    )
    source = fast(sse_server.url_for("/chat"), method="post", json={"q": "hi", "n": 1})
    with source:
        take(source, 2)
    first, second = sse_server.requests[:2]
    for request in (first, second):
        assert request.method == "POST"
        assert json.loads(request.body) == {"q": "hi", "n": 1}
        assert request.headers.get("content-type") == "application/json"
    assert second.last_event_id == "1"


def test_form_data_and_params(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    list(
        fast(
            sse_server.url_for("/s?a=1"),
            reconnect=False,
            method="POST",
            data={"name": "ssé"},
            params={"b": ["2", "3"]},
        )
    )
    (request,) = sse_server.requests
    assert request.query == {"a": ["1"], "b": ["2", "3"]}
    assert request.body == b"name=ss%C3%A9"
    assert request.headers.get("content-type") == "application/x-www-form-urlencoded"


def test_data_and_json_together_are_refused() -> None:
    with pytest.raises(ValueError, match="data= or json="):
        EventSource("http://127.0.0.1:1/", data=b"x", json={})


# -- dedupe ----------------------------------------------------------------------------


def test_replayed_ids_are_skipped_after_reconnect(sse_server: SSEServer) -> None:
    events = [{"data": f"e{i}", "id": str(i)} for i in range(1, 5)]
    sse_server.route(
        "/s",
        sse_server.events(events[:2], then="drop"),
        sse_server.events(events),  # a server that ignores Last-Event-ID
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 4)
    assert [e.data for e in got] == ["e1", "e2", "e3", "e4"]


def test_idless_replay_of_last_data_is_skipped_after_reconnect(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "snapshot"}], then="drop"),
        sse_server.events([{"data": "snapshot"}, {"data": "fresh"}]),
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 2)
    assert [e.data for e in got] == ["snapshot", "fresh"]


def test_repeated_data_in_a_healthy_stream_is_delivered(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "tick"}] * 3))
    assert [e.data for e in fast(sse_server.url_for("/s"), reconnect=False)] == ["tick"] * 3


def test_dedupe_memory_is_bounded_and_keeps_the_newest_ids(sse_server: SSEServer) -> None:
    # 8,300 ids is past twice the 4,096-id window, so the oldest are forgotten.
    # The first stream ends cleanly (a reset could discard bytes the client
    # had not read yet, and with them the test's point), and the source
    # reconnects as it does after any end.
    many = [{"data": f"e{i}", "id": str(i)} for i in range(1, 8301)]
    sse_server.route(
        "/s",
        sse_server.events(many),
        sse_server.events(
            [{"data": "e1", "id": "1"}, {"data": "e8300", "id": "8300"},
             {"data": "e8301", "id": "8301"}]
        ),
        sse_server.status(204),  # then the stream is over
    )
    with fast(sse_server.url_for("/s")) as source:
        got = list(source)
    assert len(got) == 8302
    assert [e.data for e in got[-2:]] == ["e1", "e8301"]


def test_dedupe_skips_only_an_id_with_the_same_data(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A restarted server counting from 1 again, or a version id: the same id
    # with new data is new information, not a replay.
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}, {"data": "b", "id": "2"}]),
        sse_server.events(
            [{"data": "b", "id": "2"}, {"data": "fresh", "id": "1"}, {"data": "c", "id": "3"}]
        ),
        sse_server.status(204),
    )
    caplog.set_level(logging.DEBUG, logger="ssesync")
    with fast(sse_server.url_for("/s")) as source:
        got = [(e.id, e.data) for e in source]
    assert got == [("1", "a"), ("2", "b"), ("1", "fresh"), ("3", "c")]
    skips = [r.getMessage() for r in caplog.records if "skipped a replay" in r.getMessage()]
    assert skips == ["skipped a replay of the event with id '2'"]


def test_backoff_starts_over_after_a_connection_that_delivered(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse_server.route(
        "/s",
        sse_server.status(503),
        sse_server.status(503),
        sse_server.events([{"data": "a"}], then="drop"),
        sse_server.events([{"data": "b"}]),
    )
    caplog.set_level(logging.INFO, logger="ssesync")
    with fast(sse_server.url_for("/s"), retry_delay=20, max_retry_delay=1000) as source:
        assert [e.data for e in take(source, 2)] == ["a", "b"]
    waits = [
        float(r.getMessage().rsplit("reconnecting in ", 1)[1].split()[0])
        for r in caplog.records
        if "reconnecting in" in r.getMessage()
    ]
    # The first wait is 1-1.5x the 20 ms reconnection time (20-30 ms); the
    # next failure doubles it (each wait ½-1x of 40 ms, never below 20 ms);
    # the drop after an event starts over at 20-30 ms, not 40-80 ms.
    assert len(waits) == 3
    assert 0.02 <= waits[0] <= 0.03
    assert 0.02 <= waits[1] <= 0.04
    assert 0.02 <= waits[2] <= 0.03


def test_dedupe_off_delivers_replays(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.events([{"data": "a", "id": "1"}, {"data": "b", "id": "2"}]),
    )
    with fast(sse_server.url_for("/s"), dedupe=False) as source:
        got = take(source, 3)
    assert [e.data for e in got] == ["a", "a", "b"]


# -- logging ---------------------------------------------------------------------------


def test_logs_never_contain_header_values_or_query(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}], then="drop"), sse_server.status(401))
    caplog.set_level(logging.DEBUG, logger="ssesync")
    source = fast(
        sse_server.url_for("/s?token=query-secret"),
        headers={"Authorization": "Bearer header-secret"},
    )
    with pytest.raises(SSEConnectionError) as info:
        list(source)
    text = caplog.text + str(info.value) + repr(info.value.__dict__)
    assert "connected to" in caplog.text
    assert "header-secret" not in text
    assert "query-secret" not in text


def test_a_lone_keep_alive_comment_reaches_on_comment_at_once(sse_server: SSEServer) -> None:
    # ":" and a line end, no blank line: the comment used to wait for the
    # block's blank line, which here comes only after the client saw it.
    seen = threading.Event()
    seen_before_the_event: list[bool] = []

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.send(b":\n")
        seen_before_the_event.append(seen.wait(5))
        conn.send(b"data: after the ping\n\n")
        conn.end()

    sse_server.route("/s", handler)
    order: list[str] = []

    def on_comment(source: EventSource, text: str) -> None:
        order.append(f"comment {text!r}")
        seen.set()

    with fast(sse_server.url_for("/s"), reconnect=False) as source:
        source.on_comment(on_comment)
        for event in source:
            order.append(f"event {event.data}")
            order.append(f"ping seen first: {seen.is_set()}")
    assert seen_before_the_event == [True]
    assert order == ["comment ''", "event after the ping", "ping seen first: True"]
