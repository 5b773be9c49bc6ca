"""The Hub (API.md section 6): many sources, one thread, the same behaviour per source.

Everything a started source does is also pinned on a hub by the
``started_by`` fixture (tests/conftest.py); these are the hub's own rules:
its shape, a thousand sources through drops and resumes, one source closing
another from a handler, a slow connect that delays no reading, TLS, and
``hub.close()`` with sources in every state leaving nothing behind.
"""

from __future__ import annotations

import random
import resource
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from ssesync import Event, EventSource, Hub, ReadyState
from ssesync.testing import SSEServer, StreamConnection
from tests.forward_proxy import ForwardProxy
from tests.helpers import WAIT, Collector, events_then_stall, open_fds, settle, ssesync_threads


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub() as running:
        yield running
    assert settle(lambda: not ssesync_threads()), ssesync_threads()


def on_hub(hub: Hub, url: str, **options: Any) -> EventSource:
    options.setdefault("retry_delay", 0)
    options.setdefault("timeout", (5, 10))
    return EventSource(url, hub=hub, **options)


# -- its shape --------------------------------------------------------------------------------


def test_a_hub_source_is_started_not_iterated(hub: Hub) -> None:
    source = on_hub(hub, "http://127.0.0.1:9/")
    with pytest.raises(RuntimeError, match="started, not iterated"):
        iter(source)
    with pytest.raises(RuntimeError, match="hub"):
        source.stream()


def test_session_is_refused_with_a_hub(hub: Hub) -> None:
    with requests.Session() as session, pytest.raises(ValueError, match="session"):
        EventSource("http://127.0.0.1:9/", hub=hub, session=session)


@pytest.mark.parametrize(("workers", "error"), [(0, ValueError), (1.5, TypeError)])
def test_connect_workers_are_checked(workers: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="connect_workers"):
        Hub(connect_workers=workers)  # type: ignore[arg-type]


def test_len_counts_the_running_sources_and_leaving_the_block_closes_them(
    sse_server: SSEServer,
) -> None:
    sse_server.route("/s", events_then_stall("x"))
    got = Collector()
    with Hub() as hub:
        sources = [on_hub(hub, sse_server.url_for("/s")) for _ in range(3)]
        for source in sources:
            source.on("message", got)
            source.start()
        got.wait_for(3)
        assert len(hub) == 3
        sources[0].close()
        assert len(hub) == 2
    assert len(hub) == 0
    assert hub  # still a hub: `if hub:` must not read an empty one as absent
    assert all(source.ready_state is ReadyState.CLOSED for source in sources)
    assert settle(lambda: not ssesync_threads())
    with pytest.raises(RuntimeError, match="closed"):
        on_hub(hub, sse_server.url_for("/s")).start()


def test_handlers_of_all_sources_run_on_the_hubs_one_thread(
    hub: Hub, sse_server: SSEServer
) -> None:
    sse_server.route("/s", events_then_stall("a", "b"))
    seen = Collector()
    for _ in range(5):
        source = on_hub(hub, sse_server.url_for("/s"))
        source.on("message", lambda event: seen(threading.current_thread().name))
        source.start()
    assert set(seen.wait_for(10)) == {"ssesync-hub"}


# -- many sources -----------------------------------------------------------------------------


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        pytest.skip(f"needs {needed} file descriptors; the hard limit here is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_thousand_sources_through_drops_resumes_and_closes_lose_nothing(
    sse_server: SSEServer,
) -> None:
    # Each source's stream breaks at random points, the server resuming
    # after the Last-Event-ID it gets; a tenth of the sources are closed
    # midway. Every event reaches each source once, in order, up to its end.
    count, events = 1000, 20
    _raise_file_limit(4 * count + 256)
    rng = random.Random(7)

    def flaky(conn: StreamConnection) -> None:
        start = int(conn.request.last_event_id or -1) + 1
        stop = min(events, start + rng.randint(1, 8))
        conn.send_headers()
        for number in range(start, stop):
            conn.event(f"e{number}", id=str(number))
        if stop < events:
            conn.drop() if rng.random() < 0.5 else conn.end()
        else:
            conn.stall()

    sse_server.route("/s", flaky)
    received: list[list[int]] = [[] for _ in range(count)]
    finished = threading.Semaphore(0)
    closers: list[EventSource] = []
    with Hub(connect_workers=16) as hub:
        for number in range(count):
            source = on_hub(hub, sse_server.url_for("/s"))

            def record(event: Event, got: list[int] = received[number]) -> None:
                got.append(int(event.id or -1))
                if len(got) == events:
                    finished.release()

            source.on("message", record)
            source.start()
            if number % 10 == 0:
                closers.append(source)
        for source in closers:
            source.close()  # closed midway, from another thread
        done = len(closers)
        deadline = time.monotonic() + 120
        while done < count:
            assert finished.acquire(timeout=max(0.0, deadline - time.monotonic())), (
                f"{done} of {count} sources got every event"
            )
            done += 1
    for got in received:
        assert got == list(range(len(got)))  # in order, none twice, none skipped
    assert sum(len(got) == events for got in received) >= count - len(closers)
    assert settle(lambda: not ssesync_threads())


# -- one source, another's handler, a slow connect ------------------------------------------------


def test_one_sources_handler_closes_another_source(hub: Hub, sse_server: SSEServer) -> None:
    sse_server.route("/a", events_then_stall("close b"))
    sse_server.route("/b", events_then_stall("b1"))
    b_got = Collector()
    b = on_hub(hub, sse_server.url_for("/b"))
    b.on("message", b_got)
    b.start()
    b_got.wait_for(1)
    a = on_hub(hub, sse_server.url_for("/a"))
    closed = Collector()
    a.on("message", lambda event: closed(b.close()))
    a.start()
    assert closed.wait_for(1) == [True]  # b stopped at once: not its own handler
    assert b.ready_state is ReadyState.CLOSED
    assert b.join(WAIT)
    assert a.ready_state is ReadyState.OPEN


def test_a_handler_that_raises_touches_no_other_source(hub: Hub, sse_server: SSEServer) -> None:
    sse_server.route("/s", events_then_stall("1", "2", "3"))
    errors, good = Collector(), Collector()
    broken = on_hub(hub, sse_server.url_for("/s"))
    broken.on("message", lambda event: 1 / 0)
    broken.on_error(errors)
    fine = on_hub(hub, sse_server.url_for("/s"))
    fine.on("message", good)
    broken.start()
    fine.start()
    assert [e.data for e in good.wait_for(3)] == ["1", "2", "3"]
    assert len(errors.wait_for(3)) == 3
    assert broken.ready_state is ReadyState.OPEN


def test_a_connect_that_hangs_delays_no_reading(
    hub: Hub, sse_server: SSEServer, blackhole: str
) -> None:
    # The black hole accepts nothing: its connect waits on a worker, while
    # the other source's events arrive as they come.
    stuck = on_hub(hub, blackhole, timeout=(30, 30))
    stuck.start()
    gate = threading.Event()

    def paced(conn: StreamConnection) -> None:
        conn.send_headers()
        for number in range(3):
            conn.event(str(number))
            gate.wait(WAIT)
            gate.clear()
        conn.stall()

    sse_server.route("/s", paced)
    got = Collector()
    source = on_hub(hub, sse_server.url_for("/s"))
    source.on("message", lambda event: (got(event.data), gate.set()))
    source.start()
    assert [e for e in got.wait_for(3)] == ["0", "1", "2"]
    assert stuck.ready_state is ReadyState.CONNECTING
    started = time.monotonic()
    assert stuck.close(timeout=WAIT)
    assert time.monotonic() - started < 5


def test_tls_streams_with_records_left_inside_the_tls_layer(
    hub: Hub, tls: dict[str, Any]
) -> None:
    # Many events in few large writes: TLS records hold several events, and
    # a read may leave decrypted bytes the selector cannot see.
    with SSEServer(ssl_context=tls["server_context"]) as server:
        body = b"".join(b"id: %d\ndata: %s\n\n" % (n, b"x" * 300) for n in range(2000))
        server.route("/s", server.raw([body[:70000], body[70000:]], then="stall"))
        got = Collector()
        source = on_hub(hub, server.url_for("/s"), ca_certs=tls["ca_path"])
        source.on("message", got)
        source.start()
        assert [int(e.id) for e in got.wait_for(2000)] == list(range(2000))


def test_a_silent_stream_times_out_and_reconnects(hub: Hub, sse_server: SSEServer) -> None:
    sse_server.route("/s", events_then_stall("first"), events_then_stall("second"))
    got, errors = Collector(), Collector()
    source = on_hub(hub, sse_server.url_for("/s"), timeout=(5, 1.0))
    source.on("message", got)
    source.on_error(errors)
    source.start()
    assert [e.data for e in got.wait_for(2)] == ["first", "second"]
    assert "read timed out" in str(errors.items[0][1])


def test_a_slow_handler_makes_no_false_read_timeout_on_another_source(
    hub: Hub, sse_server: SSEServer
) -> None:
    # A's handler holds the hub's thread past B's read timeout, while B's
    # next event already waits in B's socket: B got data, so it must not
    # time out (it used to, judged by when the hub last read it).
    read_timeout = 1.0
    gate_a, gate_b, b1_sent = threading.Event(), threading.Event(), threading.Event()
    a_running, release = threading.Event(), threading.Event()

    def a_route(conn: StreamConnection) -> None:
        conn.send_headers()
        gate_a.wait(WAIT)
        conn.event("a")
        conn.stall()

    def b_route(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("b0")
        gate_b.wait(WAIT)
        conn.event("b1")
        b1_sent.set()
        conn.stall()

    sse_server.route("/a", a_route)
    sse_server.route("/b", b_route, events_then_stall("reconnected"))
    a = on_hub(hub, sse_server.url_for("/a"))
    a.on("message", lambda event: (a_running.set(), release.wait(WAIT)))
    a.start()
    b_got, b_errors = Collector(), Collector()
    b = on_hub(hub, sse_server.url_for("/b"), timeout=(5, read_timeout))
    b.on("message", lambda event: (b_got(event.data), gate_a.set()))
    b.on_error(b_errors)
    b.start()
    assert a_running.wait(WAIT)  # b0 was read before A's event was even sent
    gate_b.set()
    assert b1_sent.wait(WAIT)
    time.sleep(read_timeout + 0.2)  # B's deadline, counted from b0, has passed
    release.set()
    assert b_got.wait_for(2) == ["b0", "b1"]
    a.close()
    b.close()
    assert b_errors.items == []
    assert b_got.items == ["b0", "b1"]


def test_a_slow_handler_makes_no_false_read_timeout_on_its_own_source(
    hub: Hub, sse_server: SSEServer
) -> None:
    # "first" is sent only once a second source's event is handled, so the
    # hub reads it in a round of its own; its handler outlasts the read
    # timeout while "second" waits in the socket.
    read_timeout = 1.0
    go, sent, release = threading.Event(), threading.Event(), threading.Event()

    def route(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("zero")
        go.wait(WAIT)
        conn.event("first")
        release.wait(WAIT)  # (the handler of "first" runs meanwhile)
        conn.event("second")
        sent.set()
        conn.stall()

    def slow(event: Event) -> None:
        if event.data == "first":
            release.set()
            assert sent.wait(WAIT)
            time.sleep(read_timeout + 0.2)

    sse_server.route("/s", route, events_then_stall("reconnected"))
    sse_server.route("/go", events_then_stall("go"))
    got, errors = Collector(), Collector()
    source = on_hub(hub, sse_server.url_for("/s"), timeout=(5, read_timeout))
    source.on("message", slow)
    source.on("message", lambda event: got(event.data))
    source.on_error(errors)
    source.start()
    got.wait_for(1)
    trigger = on_hub(hub, sse_server.url_for("/go"))
    trigger.on("message", lambda event: go.set())
    trigger.start()
    assert got.wait_for(3) == ["zero", "first", "second"]
    source.close()
    assert errors.items == []
    assert got.items == ["zero", "first", "second"]


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("/s", {}),
        ("/s?a=1&b=%20x&token=t", {"headers": {"X-One": "1", "user-agent": "mine/1"}}),
        ("/s", {"last_event_id": "7", "headers": {"Accept-Encoding": "gzip", "Host": "h:1"}}),
        ("/a/../s", {}),
        ("/./s?x=%7c&y={}&z=a|b", {}),
        ("/s", {"headers": {"User-Agent": urllib3.util.SKIP_HEADER}}),
    ],
)
def test_the_hubs_lean_request_is_the_one_urllib3_sends(
    sse_server: SSEServer, path: str, options: dict[str, Any], lean_opens: list[str]
) -> None:
    # The hub's plain requests skip urllib3 (_transport._lean): what the
    # server receives must be byte for byte what a source's own urllib3 sends,
    # normalised target and left-out headers included.
    sse_server.route("/s", sse_server.raw([b"data: x\n\n"]))
    with Hub() as hub:
        for where in (None, hub):
            source = EventSource(sse_server.url_for(path), hub=where, reconnect=False, **options)
            source.start()
            assert source.join(WAIT)
    plain, lean = sse_server.requests
    assert lean.head == plain.head
    # The hub's request was the lean one, but for SKIP_HEADER, left to urllib3.
    skipped = urllib3.util.SKIP_HEADER in options.get("headers", {}).values()
    assert lean_opens == ([] if skipped else [sse_server.url_for(path)])


def test_a_redirect_from_the_lean_path_is_followed_by_urllib3(
    hub: Hub, sse_server: SSEServer
) -> None:
    sse_server.route("/old", sse_server.redirect("/new", code=307))
    sse_server.route("/new", events_then_stall("moved"))
    got = Collector()
    source = on_hub(hub, sse_server.url_for("/old"))
    source.on("message", got)
    source.start()
    assert [e.data for e in got.wait_for(1)] == ["moved"]
    assert source.response is not None
    assert source.response.url.endswith("/new")
    # One request per hop: the redirect the hub read is followed from there,
    # not asked for again (a signed or single-use URL answers only once).
    assert len(sse_server.requests_for("/old")) == 1


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_redirected_request_of_an_unsafe_method_is_sent_once(
    hub: Hub, sse_server: SSEServer, method: str
) -> None:
    # The lean path sends a redirected request again through urllib3: only a
    # GET may take it, never a method that could do something twice.
    sse_server.route("/old", sse_server.redirect("/new", code=307))
    sse_server.route("/new", events_then_stall("moved"))
    got = Collector()
    source = on_hub(hub, sse_server.url_for("/old"), method=method)
    source.on("message", got)
    source.start()
    assert [e.data for e in got.wait_for(1)] == ["moved"]
    assert [r.method for r in sse_server.requests_for("/old")] == [method]


def test_a_post_that_races_the_draining_of_wake_ups_still_wakes_the_hub() -> None:
    # post() writes a wake-up byte only while none is unread. A post made
    # while the hub drains its wake-ups (its byte drained with the older
    # ones) must leave the hub either awake or due to wake: never marked
    # woken with no byte left, which would stall every later post.
    import select

    from ssesync._reactor import Reactor

    reactor = Reactor(1, "ssesync-test-reactor")
    wake = reactor._wake_read

    class Racing:
        raced = False

        def recv(self, size: int) -> bytes:
            data = wake.recv(size)
            if not self.raced:
                self.raced = True
                reactor.post(lambda: None)  # in the middle of the drain
            return data

    try:
        reactor.post(lambda: None)
        reactor._wake_read = Racing()  # type: ignore[assignment]
        reactor._drain_wake()
        reactor._wake_read = wake
        unread = bool(select.select([wake], [], [], 0)[0])
        assert unread or not reactor._woken
    finally:
        reactor._release()


def test_a_storm_of_posted_work_lets_open_sockets_be_read_in_between() -> None:
    # 5,000 start() calls post 5,000 connects at once. Run in one go, they
    # held back every event of the sources already open (a p99 of 400 ms at
    # 5,000 streams); the reactor now reads between batches of posted work.
    import socket

    from ssesync._reactor import Reactor

    reactor = Reactor(1, "ssesync-test-reactor")
    ready, writer = socket.socketpair()
    ran: list[str] = []
    done = threading.Event()
    writer.send(b"x")  # readable before the reactor starts

    def readable() -> None:
        ready.recv(1)
        reactor.unregister(ready)
        ran.append("read")

    def last() -> None:
        ran.append("posted")
        done.set()

    try:
        reactor.register(ready, readable)
        for _ in range(500):
            reactor.post(lambda: ran.append("posted"))
        reactor.post(last)
        reactor.start(done.is_set)
        assert done.wait(WAIT)
        reactor.thread.join(WAIT)
    finally:
        ready.close()
        writer.close()
    assert "read" in ran
    assert ran.index("read") < 500  # not after all the posted work


# -- closing everything -------------------------------------------------------------------------


def test_hub_close_with_sources_in_every_state_leaves_nothing(
    sse_server: SSEServer, blackhole: str
) -> None:
    sse_server.route("/read", events_then_stall("x"))
    sse_server.route("/wait", sse_server.status(503))
    sse_server.route("/done", sse_server.status(204))

    def no_headers(conn: StreamConnection) -> None:
        conn.stall()  # the request was read; the response never comes

    sse_server.route("/headers", no_headers)
    baseline = open_fds()
    hub = Hub()
    opened, waiting, done = Collector(), Collector(), Collector()
    reading = on_hub(hub, sse_server.url_for("/read"))
    reading.on("message", opened)
    backing_off = on_hub(hub, sse_server.url_for("/wait"), retry_delay=60_000)
    backing_off.on_error(waiting)
    finished = on_hub(hub, sse_server.url_for("/done"))
    finished.on_close(done)
    sources = [
        reading,
        backing_off,
        finished,
        on_hub(hub, sse_server.url_for("/headers")),
        on_hub(hub, blackhole, timeout=(30, 30)),
        on_hub(hub, sse_server.url_for("/read")),  # never started
    ]
    for source in sources[:-1]:
        source.start()
    opened.wait_for(1)
    waiting.wait_for(1)
    done.wait_for(1)
    assert sse_server.wait_for_requests(4, timeout=WAIT)
    started = time.monotonic()
    assert hub.close(timeout=WAIT)
    assert time.monotonic() - started < 5
    assert all(source.ready_state is ReadyState.CLOSED for source in sources[:-1])
    assert len(hub) == 0
    assert settle(lambda: not ssesync_threads()), ssesync_threads()
    assert settle(lambda: open_fds() <= baseline), (open_fds(), baseline)


def test_a_content_length_body_and_a_deflate_body_are_read_by_the_hub(
    hub: Hub, sse_server: SSEServer
) -> None:
    import zlib

    body = b"data: counted\n\n"
    sse_server.route("/length", sse_server.raw([body], headers={"Content-Length": str(len(body))}))
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)  # raw deflate, as some servers send it
    squeezed = raw.compress(b"data: squeezed\n\n") + raw.flush()
    deflated = {"Content-Encoding": "deflate"}
    sse_server.route("/deflate", sse_server.raw([squeezed], headers=deflated))
    got = Collector()
    for path in ("/length", "/deflate"):
        source = on_hub(hub, sse_server.url_for(path), reconnect=False)
        source.on("message", got)
        source.start()
        assert source.join(WAIT)
    assert sorted(e.data for e in got.items) == ["counted", "squeezed"]


def test_an_encoding_the_hub_cannot_decode_is_a_clear_final_error(
    hub: Hub, sse_server: SSEServer
) -> None:
    sse_server.route("/s", sse_server.raw([b"\x00"], headers={"Content-Encoding": "br"}))
    errors = Collector()
    source = on_hub(hub, sse_server.url_for("/s"))
    source.on_error(errors)
    source.start()
    assert source.join(WAIT)
    (_, error), *_ = errors.wait_for(1)
    assert not error.retryable
    assert "br" in str(error)


# -- the options of section 2 that reach the transport ----------------------------------------


def _read_one_on(hub: Hub, url: str, **options: Any) -> list[str]:
    got: list[str] = []
    on_hubs_thread: list[bool] = []

    def handler(event: Event) -> None:
        got.append(event.data)
        on_hubs_thread.append(hub.in_thread())  # read by the hub, not a thread of its own

    source = on_hub(hub, url, reconnect=False, **options)
    source.on("message", handler)
    source.start()
    assert source.join(WAIT)
    assert on_hubs_thread == [True] * len(got)
    return got


def test_a_hub_source_streams_through_a_proxy(
    hub: Hub, sse_server: SSEServer, tls_server: SSEServer, tls: dict[str, Any]
) -> None:
    # API.md section 6: proxies work per source on a hub, plain and tunnelled.
    sse_server.route("/s", sse_server.events([{"data": "via proxy", "id": "1"}]))
    with ForwardProxy() as proxy:
        assert _read_one_on(hub, sse_server.url_for("/s"), proxy=proxy.url) == ["via proxy"]
        assert proxy.request_lines == [f"GET {sse_server.url_for('/s')} HTTP/1.1"]
        secure = _read_one_on(hub, tls_server.url_for("/s"), proxy=proxy.url,
                              verify=tls["ca_path"])  # fmt: skip
        assert secure == ["secure"]
        assert proxy.request_lines[1].startswith("CONNECT 127.0.0.1:")


def test_a_hub_source_uses_a_callers_pool_manager(hub: Hub, sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "pooled"}]))
    with urllib3.PoolManager() as manager:
        assert _read_one_on(hub, sse_server.url_for("/s"), pool_manager=manager) == ["pooled"]
        assert manager.pools  # the caller's manager made the connection
