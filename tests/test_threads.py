"""Callbacks on a background thread: dispatch, hooks, start/join/close, leaks (API.md §2)."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from ssesync import Event, EventSource, ReadyState, SSEConnectionError, SSEParsingError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import (
    WAIT,
    Collector,
    endless_stream,
    fast,
    open_fds,
    reader_threads,
    settle,
)

#: Every test here runs with a thread per source, and again on a hub.
pytestmark = pytest.mark.usefixtures("started_by")


def hold_open(*blocks: dict[str, Any]) -> Callable[[StreamConnection], None]:
    """A handler that sends ``blocks`` and then keeps the connection silent."""

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        for block in blocks:
            conn.event(**block)
        conn.stall()

    return handler


def test_handlers_get_events_of_their_type(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        hold_open(
            {"data": "m1"}, {"event": "update", "data": "u1"}, {"data": "m2"}, {"event": "other"}
        ),
    )
    messages, updates = Collector(), Collector()
    with fast(sse_server.url_for("/s")) as source:
        source.on("message", messages)
        source.on("update", updates)
        source.start()
        assert [e.data for e in messages.wait_for(2)] == ["m1", "m2"]
        assert [e.data for e in updates.wait_for(1)] == ["u1"]


def test_decorator_and_lambda_handlers_are_held_strongly(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "a"}))
    got = Collector()
    source = fast(sse_server.url_for("/s"))

    @source.on("message")
    def by_decorator(event: Event) -> None:
        got(("decorated", event.data))

    returned = source.on("message", lambda event: got(("lambda", event.data)))
    assert callable(returned)
    assert by_decorator.__name__ == "by_decorator"
    import gc

    gc.collect()
    with source.start():
        assert sorted(got.wait_for(2)) == [("decorated", "a"), ("lambda", "a")]


def test_off_disconnects_a_handler(sse_server: SSEServer) -> None:
    release = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("first")
        release.wait(WAIT)
        conn.event("second")
        conn.stall()

    sse_server.route("/s", handler)
    kept, removed = Collector(), Collector()
    with fast(sse_server.url_for("/s")) as source:
        source.on("message", kept)
        source.on("message", removed)
        source.start()
        kept.wait_for(1)
        source.off("message", removed)
        release.set()
        assert [e.data for e in kept.wait_for(2)] == ["first", "second"]
    assert [e.data for e in removed.items] == ["first"]


def test_lifecycle_hooks_are_apart_from_server_event_names(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw(
            [b": keep-alive\n\nevent: error\ndata: e\n\nevent: open\ndata: o\n\n"], then="stall"
        ),
    )
    opened, errors, comments, closed = Collector(), Collector(), Collector(), Collector()
    named_error, named_open = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_open(opened)
    source.on_error(errors)
    source.on_comment(comments)
    source.on_close(closed)
    source.on("error", named_error)
    source.on("open", named_open)
    source.start()
    assert named_error.wait_for(1)[0].data == "e"
    assert named_open.wait_for(1)[0].data == "o"
    assert opened.wait_for(1) == [source]
    assert comments.wait_for(1) == [(source, "keep-alive")]
    source.close()
    assert closed.items == [source]
    assert errors.items == []


def test_raising_handler_does_not_stop_stream_or_other_handlers(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse_server.route("/s", hold_open({"data": "1"}, {"data": "2"}))
    good, errors = Collector(), Collector()

    def bad(event: Event) -> None:
        raise ValueError(f"bad handler on {event.data}")

    with fast(sse_server.url_for("/s")) as source:
        source.on("message", bad)
        source.on("message", good)
        source.on_error(errors)
        source.start()
        assert [e.data for e in good.wait_for(2)] == ["1", "2"]
        reported = errors.wait_for(2)
    assert [str(exc) for _, exc in reported] == ["bad handler on 1", "bad handler on 2"]
    records = [r for r in caplog.records if r.name == "ssesync" and r.exc_info]
    assert records
    assert records[0].levelno == logging.ERROR


def test_close_from_another_thread_while_server_is_silent(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "only"}))
    got = Collector()
    source = fast(sse_server.url_for("/s"), timeout=(5, 300))
    source.on("message", got)
    source.start()
    got.wait_for(1)
    closer = threading.Thread(target=source.close)
    started = time.monotonic()
    closer.start()
    closer.join(WAIT)
    assert not closer.is_alive(), "close() deadlocked"
    assert time.monotonic() - started < 5, "close() waited for the read timeout"
    assert reader_threads() == []
    assert source.ready_state is ReadyState.CLOSED
    assert source.join(0)


def test_close_from_inside_a_handler_does_not_deadlock(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "1"}, {"data": "2"}, {"data": "3"}))
    got, closed = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_close(closed)

    @source.on("message")
    def handler(event: Event) -> None:
        got(event)
        source.close()

    source.start()
    assert closed.wait_for(1) == [source]
    assert source.join(WAIT)
    assert [e.data for e in got.items] == ["1"]


#: Four plain messages in one write, so they reach the handlers from one read.
ONE_READ = [b"data: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n"]


@pytest.mark.parametrize("chunked", [False, True], ids=["close", "chunked"])
def test_handler_changes_inside_a_read_apply_from_the_next_event(
    sse_server: SSEServer, chunked: bool
) -> None:
    sse_server.route("/s", sse_server.raw(ONE_READ, chunked=chunked, then="stall"))
    got, late = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))

    def first(event: Event) -> None:
        got(event.data)
        if event.data == "1":
            source.on("message", late)
        elif event.data == "2":
            source.off("message", first)

    source.on("message", first)
    with source.start():
        assert [e.data for e in late.wait_for(3)] == ["2", "3", "4"]
    assert got.items == ["1", "2"]


@pytest.mark.parametrize("chunked", [False, True], ids=["close", "chunked"])
def test_close_inside_a_read_stops_dispatch_at_once(sse_server: SSEServer, chunked: bool) -> None:
    sse_server.route("/s", sse_server.raw(ONE_READ, chunked=chunked, then="stall"))
    got, other = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))

    @source.on("message")
    def handler(event: Event) -> None:
        got(event.data)
        if event.data == "2":
            source.close()

    source.on("message", other)
    source.start()
    assert source.join(WAIT)
    assert got.items == ["1", "2"]
    assert [e.data for e in other.items] == ["1", "2"]  # the event being dispatched completes


def test_no_handler_runs_after_close_returns(sse_server: SSEServer) -> None:
    sse_server.route("/s", endless_stream)
    got = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on("message", got)
    source.start()
    got.wait_for(5)
    source.close()
    count = len(got.items)
    time.sleep(0.05)
    assert len(got.items) == count


def test_close_during_backoff_sleep_returns_promptly(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(503))
    errors = Collector()
    source = fast(sse_server.url_for("/s"), retry_delay=60_000)
    source.on_error(errors)
    source.start()
    errors.wait_for(1)
    assert source.ready_state is ReadyState.CONNECTING
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 5
    assert source.ready_state is ReadyState.CLOSED


def test_close_while_waiting_for_response_headers(sse_server: SSEServer) -> None:
    arrived = threading.Event()

    def never_answers(conn: StreamConnection) -> None:
        arrived.set()
        conn.stall()
        conn.send_headers()

    sse_server.route("/s", never_answers)
    source = fast(sse_server.url_for("/s"), timeout=(5, 300)).start()
    assert arrived.wait(WAIT)
    time.sleep(0.05)  # let the reader block in the header read
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 5
    assert reader_threads() == []


def test_ready_state_moves_through_the_lifecycle(sse_server: SSEServer) -> None:
    gate = threading.Event()

    def first(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("a", id="1")
        gate.wait(WAIT)
        conn.drop()

    sse_server.route("/s", first, hold_open({"data": "b", "id": "2"}))
    states: list[ReadyState] = []
    got = Collector()
    source = fast(sse_server.url_for("/s"))
    assert source.ready_state is ReadyState.CONNECTING
    source.on_open(lambda src: states.append(src.ready_state))
    source.on_error(lambda src, exc: states.append(src.ready_state))
    source.on("message", got)
    source.start()
    got.wait_for(1)
    assert source.ready_state is ReadyState.OPEN
    gate.set()
    got.wait_for(2)
    source.close()
    assert states == [ReadyState.OPEN, ReadyState.CONNECTING, ReadyState.OPEN]
    assert source.ready_state is ReadyState.CLOSED


def test_transient_errors_reach_on_error_with_connecting_state(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a"}], then="drop"),
        sse_server.status(503),
        hold_open({"data": "b"}),
    )
    seen: list[tuple[str, ReadyState, int | None]] = []
    got = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_error(lambda src, exc: seen.append((type(exc).__name__, src.ready_state,
                                                   getattr(exc, "status", None))))
    source.on("message", got)
    with source.start():
        got.wait_for(2)
    assert seen == [
        ("SSEConnectionError", ReadyState.CONNECTING, None),
        ("SSEConnectionError", ReadyState.CONNECTING, 503),
    ]


def test_fatal_error_reaches_on_error_then_on_close(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(404))
    order: list[str] = []
    source = fast(sse_server.url_for("/s"))
    source.on_error(lambda src, exc: order.append(f"error {exc.status} {src.ready_state.name}"))
    source.on_close(lambda src: order.append("close"))
    source.start()
    assert source.join(WAIT)
    assert order == ["error 404 CLOSED", "close"]


def test_parse_error_without_reconnect_is_fatal_in_thread(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.raw([b"data: " + b"x" * 500], then="stall"))
    errors = Collector()
    source = fast(sse_server.url_for("/s"), reconnect=False, max_event_size=100)
    source.on_error(errors)
    source.start()
    assert source.join(WAIT)
    assert isinstance(errors.items[0][1], SSEParsingError)


def test_reconnect_uses_new_headers_and_last_event_id_without_error(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", hold_open({"data": "a", "id": "7"}))
    got, errors = Collector(), Collector()
    source = fast(sse_server.url_for("/s"), headers={"Authorization": "Bearer old"})
    source.on("message", got)
    source.on_error(errors)
    with source.start():
        got.wait_for(1)
        source.headers["Authorization"] = "Bearer new"
        source.reconnect()
        assert sse_server.wait_for_requests(2, timeout=WAIT)
    first, second = sse_server.requests[:2]
    assert first.headers.get("authorization") == "Bearer old"
    assert second.headers.get("authorization") == "Bearer new"
    assert second.last_event_id == "7"
    assert errors.items == []


def test_dispatcher_runs_handlers_where_the_application_wants(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open(*({"data": str(i)} for i in range(20))))
    got = Collector()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="app") as pool:
        source = fast(sse_server.url_for("/s"), dispatcher=pool.submit)
        source.on("message", lambda e: got((e.data, threading.current_thread().name)))
        with source.start():
            items = got.wait_for(20)
    assert [data for data, _ in items] == [str(i) for i in range(20)]
    assert all(name.startswith("app") for _, name in items)


def test_handlers_run_on_the_reader_thread_by_default(
    sse_server: SSEServer, started_by: str
) -> None:
    sse_server.route("/s", hold_open({"data": "x"}))
    got = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on("message", lambda e: got(threading.current_thread().name))
    reader = "ssesync-hub" if started_by == "hub" else "ssesync-http://127.0.0.1"
    with source.start():
        assert got.wait_for(1)[0].startswith(reader)


def test_started_source_cannot_be_iterated(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "x"}))
    with fast(sse_server.url_for("/s")).start() as source, pytest.raises(
        RuntimeError, match="started"
    ):
        iter(source)


def test_closed_source_cannot_be_started() -> None:
    source = EventSource("http://127.0.0.1:1/")
    source.close()
    with pytest.raises(RuntimeError, match="closed"):
        source.start()


def test_a_started_source_cannot_be_started_again_once_closed(sse_server: SSEServer) -> None:
    # Before it is closed, start() again does nothing; after, it refuses as
    # for a source closed before it was ever started.
    sse_server.route("/s", hold_open({"data": "x"}))
    source = fast(sse_server.url_for("/s")).start()
    assert source.start() is source
    source.close()
    with pytest.raises(RuntimeError, match="closed"):
        source.start()


def test_join_times_out_while_running(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "x"}))
    with fast(sse_server.url_for("/s")).start() as source:
        assert source.join(0.05) is False
    assert source.join(WAIT) is True


def test_many_start_close_cycles_leave_no_thread_or_socket(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open({"data": "x"}))
    baseline_fds = 0
    for cycle in range(51):
        got = Collector()
        source = fast(sse_server.url_for("/s"))
        source.on("message", got)
        source.start()
        got.wait_for(1)
        source.close()
        assert reader_threads() == []
        if cycle == 0:  # after the first: a hub's own selector and wake-up pair exist now
            baseline_fds = open_fds()
    # The server may still be closing its side of the last connections.
    assert settle(lambda: open_fds() <= baseline_fds), (open_fds(), baseline_fds)


def test_handler_count_errors_are_reported_not_raised_for_fatal_retries(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", sse_server.status(503))
    errors = Collector()
    source = fast(sse_server.url_for("/s"), max_retries=1)
    source.on_error(errors)
    source.start()
    assert source.join(WAIT)
    reported = [exc for _, exc in errors.items]
    assert len(reported) == 2
    assert "gave up" in str(reported[-1])
    assert all(isinstance(exc, SSEConnectionError) for exc in reported)


@pytest.mark.usefixtures("started_by")
def test_close_waits_for_a_handler_running_on_the_dispatcher(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    # After close() returns True no handler runs, dispatcher= or not; with a
    # timeout it says False (and warns) while one still runs elsewhere.
    sse_server.route("/s", hold_open({"data": "a"}))
    inside, release, finished = threading.Event(), threading.Event(), threading.Event()
    closed: list[bool] = []

    def handler(event: Event) -> None:
        inside.set()
        release.wait(WAIT)
        finished.set()

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="app") as pool:
        source = fast(sse_server.url_for("/s"), dispatcher=pool.submit)
        source.on("message", handler)
        source.start()
        assert inside.wait(WAIT)
        caplog.set_level(logging.WARNING, logger="ssesync")
        assert source.close(timeout=0.05) is False
        assert source.ready_state is ReadyState.CLOSED
        assert "a handler for 'message' events is still running" in caplog.text
        closer = threading.Thread(target=lambda: closed.append(source.close()))
        closer.start()
        release.set()
        closer.join(WAIT)
        assert closed == [True]
        assert finished.is_set()


@pytest.mark.usefixtures("started_by")
def test_close_from_a_handler_on_the_dispatcher_thread_returns_at_once(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", hold_open({"data": "a"}, {"data": "b"}))
    results: list[tuple[bool, ReadyState]] = []
    got = Collector()

    def handler(event: Event) -> None:
        results.append((source.close(), source.ready_state))
        got(event)

    with ThreadPoolExecutor(max_workers=1) as pool:
        source = fast(sse_server.url_for("/s"), dispatcher=pool.submit)
        source.on("message", handler)
        source.start()
        got.wait_for(1)
        assert source.join(WAIT)
    assert results == [(False, ReadyState.CLOSED)]
