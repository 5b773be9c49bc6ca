"""The lifecycle a user trusts (API.md section 2): close, break, fork, handlers, options.

Each test pins one rule of the contract over loopback: what ``close()`` does
from a handler and from another thread (and that it can no longer hang its
caller), that leaving a ``for`` loop closes the connection without a garbage
collector pass, that a forked child leaves the parent's connection alone,
that handlers are called in registration order and never lost to a race,
that one source's close never touches another's connection, that no failure
of a started source is silent, and that every option is checked up front.
"""

from __future__ import annotations

import gc
import logging
import os
import random
import socket
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Iterator
from typing import Callable

import pytest

from ssesync import Event, EventSource, ReadyState, SSEClient, SSEConnectionError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import (
    WAIT,
    Collector,
    ScriptedServer,
    events_then_stall,
    fast,
    open_fds,
    reader_threads,
    request_heads,
    settle,
)

# -- close() ----------------------------------------------------------------------------------


@pytest.mark.usefixtures("started_by")
def test_close_from_a_handler_reads_closed_at_once(sse_server: SSEServer) -> None:
    # web-platform-tests' eventsource-close: CLOSED as soon as close() returns.
    sse_server.route("/s", events_then_stall("a", "b"))
    states = Collector()
    source = fast(sse_server.url_for("/s"))

    def handler(event: Event) -> None:
        source.close()
        states(source.ready_state)

    source.on("message", handler)
    source.start()
    assert states.wait_for(1) == [ReadyState.CLOSED]
    assert source.join(WAIT)
    assert states.items == [ReadyState.CLOSED]  # "b" was not dispatched


@pytest.mark.usefixtures("started_by")
def test_close_with_a_timeout_returns_false_and_names_the_running_handler(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A handler that needs a lock the closing thread holds used to hang
    # close() forever, and nothing said why.
    sse_server.route("/s", events_then_stall("go"))
    lock = threading.Lock()
    entered = threading.Event()

    def needs_the_lock(event: Event) -> None:
        entered.set()
        with lock:
            pass

    source = fast(sse_server.url_for("/s"))
    source.on("message", needs_the_lock)
    with lock:
        source.start()
        assert entered.wait(WAIT)
        started = time.monotonic()
        assert source.close(timeout=0.2) is False
        assert time.monotonic() - started < WAIT
        assert source.ready_state is ReadyState.CLOSED
    warnings_ = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'message'" in r.getMessage() for r in warnings_), warnings_
    assert source.join(WAIT)  # the lock is free now: the handler returned
    assert source.close(timeout=WAIT) is True


@pytest.mark.usefixtures("started_by")
def test_close_from_another_thread_returns_true_once_no_handler_runs(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", events_then_stall("a"))
    entered, release = threading.Event(), threading.Event()
    finished = Collector()

    def slow(event: Event) -> None:
        entered.set()
        release.wait(WAIT)
        finished(event.data)

    source = fast(sse_server.url_for("/s"))
    source.on("message", slow)
    source.start()
    assert entered.wait(WAIT)
    threading.Timer(0.05, release.set).start()
    assert source.close() is True
    assert finished.items == ["a"]  # close() waited for it


# -- no reference cycle ------------------------------------------------------------------------


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _closed_by_client(sse_server: SSEServer, path: str) -> threading.Event:
    """Route ``path`` to a stream that sets the returned event once the client has left."""
    left = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("first")
        conn.event("second")
        conn.stall()  # returns when the client closes the connection
        left.set()

    sse_server.route(path, handler)
    return left


def test_close_from_the_iterating_thread_ends_the_source_at_once(sse_server: SSEServer) -> None:
    # close() in the body of the for loop closes the generator there and
    # then: the connection is gone and on_close has run before it returns,
    # not only when (or if) the loop asks for the next event.
    left = _closed_by_client(sse_server, "/s")
    source = EventSource(sse_server.url_for("/s"))
    closed = Collector()
    source.on_close(closed)
    events = iter(source)
    assert next(events).data == "first"
    assert source.close() is True
    assert closed.items == [source]
    assert source.ready_state is ReadyState.CLOSED
    assert left.wait(WAIT)
    assert next(events, None) is None


@pytest.mark.usefixtures("no_gc")
def test_breaking_out_of_a_for_loop_closes_the_connection_without_gc(
    sse_server: SSEServer,
) -> None:
    left = _closed_by_client(sse_server, "/s")
    for event in EventSource(sse_server.url_for("/s")):
        assert event.data == "first"
        break
    assert left.wait(WAIT)


@pytest.mark.usefixtures("no_gc")
def test_the_last_reference_going_away_frees_the_source_without_gc(
    sse_server: SSEServer,
) -> None:
    left = _closed_by_client(sse_server, "/s")
    source = EventSource(sse_server.url_for("/s"))
    assert next(source).data == "first"
    assert next(source).data == "second"
    ref = weakref.ref(source)
    del source
    assert ref() is None
    assert left.wait(WAIT)


# -- fork ---------------------------------------------------------------------------------------


@pytest.mark.usefixtures("started_by")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
def test_close_in_a_forked_child_leaves_the_parents_stream_alone(sse_server: SSEServer) -> None:
    # gunicorn and multiprocessing fork after sources started; the child's
    # close() used to shut down the socket both processes share.
    gate = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("before the fork")
        gate.wait(WAIT)
        conn.event("after the child closed")
        conn.stall()

    sse_server.route("/s", handler)
    got = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on("message", got)
    with source:
        source.start()
        got.wait_for(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            pid = os.fork()
        if pid == 0:  # the child: close its copy, and leave without cleanup
            try:
                source.close()
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        gate.set()
        assert [e.data for e in got.wait_for(2)] == ["before the fork", "after the child closed"]
        assert sse_server.connection_count == 1  # the same connection: no reconnect was needed


# -- handlers ------------------------------------------------------------------------------------


@pytest.mark.usefixtures("started_by")
@pytest.mark.slow
@pytest.mark.timeout(180)  # a loaded 2-core machine: bounded, not timed
def test_handlers_changing_from_eight_threads_while_fifty_thousand_events_flow(
    sse_server: SSEServer,
) -> None:
    # Every handler gets every event parsed while it is registered, in order:
    # what a dynamic handler receives is a contiguous run of the stream.
    total = 50_000
    sse_server.route(
        "/s",
        sse_server.events(
            [{"id": str(i), "data": str(i)} for i in range(total)], resume=True, then="stall"
        ),
    )
    steady = Collector()
    source = EventSource(sse_server.url_for("/s"), retry_delay=0, timeout=(5, 10))
    source.on("message", steady)
    received: list[list[int]] = []
    received_lock = threading.Lock()
    stop = threading.Event()
    # Reconnect every few thousand events, not at a rate in time: under load a
    # time-based rate reconnects faster than the stream can make progress.
    reconnect_at = [2_500]
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # many thread switches: interleave on()/off() with dispatch

    def churn(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            got: list[int] = []
            handler = got.append  # a bound method: every registration is a new handler

            def record(event: Event, append: Callable[[int], None] = handler) -> None:
                append(int(event.data))

            source.on("message", record)
            time.sleep(rng.random() / 1000)
            source.off("message", record)
            with received_lock:
                received.append(got)
            with received_lock:
                due = len(steady.items) >= reconnect_at[0]
                if due:
                    reconnect_at[0] += 2_500
            if due:
                source.reconnect()

    try:
        with source:
            source.start()
            fds_before = open_fds()  # a hub's own selector and wake-up pair exist now
            workers = [threading.Thread(target=churn, args=(seed,)) for seed in range(8)]
            for worker in workers:
                worker.start()
            steady.wait_for(total, timeout=150)
            closer = threading.Thread(target=source.close)
            closer.start()
            closer.join(WAIT)
            assert not closer.is_alive()
            stop.set()
            for worker in workers:
                worker.join(WAIT)
                assert not worker.is_alive()
    finally:
        sys.setswitchinterval(previous)
        stop.set()
    assert [int(e.data) for e in steady.items] == list(range(total))
    for got in received:
        if got:
            assert got == list(range(got[0], got[0] + len(got))), got[:20]
    assert sum(1 for got in received if got) > 10  # the churn really overlapped the flow
    assert settle(lambda: not reader_threads())
    assert settle(lambda: open_fds() <= fds_before)


# -- other sources' connections ----------------------------------------------------------------


@pytest.fixture
def reused_connection_server() -> Iterator[tuple[str, threading.Event]]:
    """Answers a connection's first request with a finished body, its second with a stream.

    The stream sends one event, then a second once the returned event is set.
    """
    gate = threading.Event()

    def answer(conn: socket.socket, _number: int) -> None:
        for requests, _ in enumerate(request_heads(conn), 1):
            if requests == 1:
                body = b"data: finished\n\n"
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    + b"Content-Length: %d\r\n\r\n" % len(body) + body
                )
                continue
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + b"d\r\ndata: first\n\n\r\n"
            )
            gate.wait(WAIT)
            conn.sendall(b"e\r\ndata: second\n\n\r\n")
            while conn.recv(65536):
                pass
            return

    with ScriptedServer(answer) as server:
        yield f"{server.base}/s", gate
        gate.set()


@pytest.mark.parametrize("how", ["close", "reconnect"])
def test_closing_one_source_never_touches_a_connection_another_reuses(
    reused_connection_server: tuple[str, threading.Event], how: str
) -> None:
    # keep_connection=True on a shared pool: A's finished connection goes
    # back to the pool and B reuses it; A's close() used to shut it down.
    url, gate = reused_connection_server
    with SSEClient(keep_connection=True, retry_delay=0, timeout=(5, 10)) as client:
        a = client.connect(url, reconnect=False)
        assert [e.data for e in a] == ["finished"]
        b = client.connect(url, reconnect=False)
        assert next(b).data == "first"
        if how == "close":
            a.close()
        else:
            a.reconnect()
        gate.set()
        assert next(b).data == "second"  # not "invalid chunked body"
        b.close()


# -- no silent failures ------------------------------------------------------------------------


@pytest.fixture
def excepthook(monkeypatch: pytest.MonkeyPatch) -> Collector:
    """What reaches threading.excepthook, as (exc_type, exc_value, thread name)."""
    seen = Collector()
    monkeypatch.setattr(
        threading,
        "excepthook",
        lambda args: seen((args.exc_type, args.exc_value, getattr(args.thread, "name", None))),
    )
    return seen


@pytest.mark.usefixtures("started_by")
def test_a_raising_handler_without_on_error_is_reported_like_an_uncaught_exception(
    sse_server: SSEServer, excepthook: Collector
) -> None:
    sse_server.route("/s", events_then_stall("a", "b"))
    got = Collector()
    source = fast(sse_server.url_for("/s"))

    @source.on("message")
    def broken(event: Event) -> None:
        got(event.data)
        1 / 0  # noqa: B018

    with source:
        source.start()
        assert got.wait_for(2) == ["a", "b"]  # the stream went on
        reports = excepthook.wait_for(2)
    assert [r[0] for r in reports] == [ZeroDivisionError, ZeroDivisionError]


@pytest.mark.usefixtures("started_by")
def test_a_fatal_error_of_a_started_source_without_on_error_is_reported(
    sse_server: SSEServer, excepthook: Collector
) -> None:
    sse_server.route("/s", sse_server.status(404))
    source = fast(sse_server.url_for("/s"))
    source.on("message", lambda event: None)
    source.start()
    assert source.join(WAIT)
    ((kind, exc, _),) = excepthook.wait_for(1)
    assert kind is SSEConnectionError
    assert exc.status == 404


@pytest.mark.usefixtures("started_by")
def test_an_on_error_hook_sees_errors_instead_of_the_excepthook(
    sse_server: SSEServer, excepthook: Collector
) -> None:
    sse_server.route("/s", sse_server.status(404))
    errors = Collector()
    source = fast(sse_server.url_for("/s"))
    source.on_error(errors)
    source.start()
    assert source.join(WAIT)
    assert errors.wait_for(1)[0][1].status == 404
    assert excepthook.items == []


@pytest.mark.usefixtures("started_by")
def test_an_on_error_hook_that_raises_is_reported_with_the_error_it_was_given(
    sse_server: SSEServer, excepthook: Collector
) -> None:
    sse_server.route("/s", sse_server.status(404))
    source = fast(sse_server.url_for("/s"))

    def broken(_source: EventSource, exc: BaseException) -> None:
        raise LookupError("a bug in the hook")

    source.on_error(broken)
    source.start()
    assert source.join(WAIT)
    ((kind, exc, _),) = excepthook.wait_for(1)
    assert kind is LookupError
    assert isinstance(exc.__context__, SSEConnectionError)
    assert exc.__context__.status == 404


# -- options ------------------------------------------------------------------------------------


# -- response and callable headers ----------------------------------------------------------------


def test_response_shows_the_status_headers_and_final_url(sse_server: SSEServer) -> None:
    sse_server.route("/old", sse_server.redirect("/new"))
    sse_server.route(
        "/new", sse_server.events([{"data": "x"}], headers={"X-RateLimit-Remaining": "41"})
    )
    seen = Collector()
    source = fast(sse_server.url_for("/old"), reconnect=False)
    assert source.response is None
    source.on_open(lambda src: seen(src.response))
    with source:
        assert [e.data for e in source] == ["x"]
    (response,) = seen.items
    assert response.status == 200
    assert response.headers["X-RateLimit-Remaining"] == "41"
    assert response.url == sse_server.url_for("/new")
    assert source.response is response  # the last connection's, after the end


def test_sseclient_connection_exposes_the_first_response(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}], headers={"X-Request-Id": "r-1"}))
    with SSEClient() as client, client.connect(sse_server.url_for("/s"), reconnect=False) as conn:
        assert conn.response is not None
        assert conn.response.headers["X-Request-Id"] == "r-1"


