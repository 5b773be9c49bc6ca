"""Resources: nothing leaks, and ``close()`` is prompt wherever the source is.

After many sources are opened and closed in every way a program ends one —
started and closed, iterated part way, failed with a ``404``, closed while
reconnecting, closed by its client, abandoned to the garbage collector — no
reader thread, no file descriptor and no memory may remain. And ``close()``
must return (or end the iteration) promptly whatever the source is doing:
connecting, waiting for response headers, sleeping before a reconnect,
reading a silent stream, or running a handler or hook of its own.

Promptness is the behaviour here, so it is asserted, with bounds (``PROMPT``)
far above what a working close takes and far below the timeouts that a
broken one would wait out.
"""

from __future__ import annotations

import gc
import logging
import ssl
import threading
import time
import tracemalloc
from typing import Any, Callable

import pytest
import trustme

from ssesync import EventSource, ReadyState, SSEClient, SSEConnectionError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, endless_stream, open_fds, reader_threads, settle

PROMPT = 2.0  # seconds; a close that takes longer than this is not prompt










def fast(url: str, **options: Any) -> EventSource:
    options.setdefault("retry_delay", 0)
    options.setdefault("timeout", (5, 300))  # a read timeout a test would notice
    return EventSource(url, **options)


def hold_open(conn: StreamConnection) -> None:
    """Three events, then silence until the client goes away."""
    conn.send_headers()
    conn.event("a", id="1")
    conn.event("b", id="2")
    conn.event("c")
    conn.stall()


def never_answers(conn: StreamConnection) -> None:
    conn.stall()


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


class Iteration:
    """Iterates a source in a thread of its own, as a script's main loop would."""

    def __init__(self, source: EventSource) -> None:
        self.source = source
        self.events: list[Any] = []
        self.error: BaseException | None = None
        self.first = threading.Event()
        self.ended_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="test-iteration", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self.source:
                self.events.append(event)
                self.first.set()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended_at = time.monotonic()

    def join(self, timeout: float = WAIT) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def close_and_time_the_end(iteration: Iteration) -> float:
    """Call close() from this thread; seconds until the iteration had ended."""
    started = time.monotonic()
    iteration.source.close()
    assert iteration.join(), "the iteration did not end after close()"
    assert iteration.ended_at is not None
    return iteration.ended_at - started


# -- many sources, ended in every way ------------------------------------------------------


def _one_source(server: SSEServer, kind: int) -> None:
    """Open one source and end it the ``kind``-th way."""
    url = server.url_for
    if kind == 0:  # started, then closed from outside
        got = threading.Event()
        source = fast(url("/hold"))
        source.on("message", lambda event: got.set())
        source.start()
        assert got.wait(WAIT)
        source.close()
    elif kind == 1:  # iterated part way, then closed
        source = fast(url("/hold"))
        events = iter(source)
        next(events)
        next(events)
        source.close()
    elif kind == 2:  # a 404 ends it
        with pytest.raises(SSEConnectionError):
            list(fast(url("/missing")))
    elif kind == 3:  # started on a server that keeps breaking; closed while reconnecting
        failed = threading.Event()
        source = fast(url("/flaky"))
        source.on_error(lambda src, exc: failed.set())
        source.start()
        assert failed.wait(WAIT)
        source.close()
    elif kind == 4:  # a 404 on a thread ends it by itself (heard by on_error, not the excepthook)
        source = fast(url("/missing"))
        source.on_error(lambda src, exc: None)
        source.start()
        assert source.join(WAIT)
    elif kind == 5:  # opened by a client, ended by leaving the client
        with SSEClient(retry_delay=0) as client:
            next(iter(client.connect(url("/hold"))))
    else:  # iterated with break and dropped, never closed: the collector ends it
        for _ in fast(url("/hold")):
            break


KINDS = 7


def test_two_hundred_sources_leave_no_thread_descriptor_or_memory(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture
) -> None:
    sse_server.route("/hold", hold_open)
    sse_server.route("/flaky", sse_server.events([], then="drop"))
    # The failures are expected; captured log records would look like growth.
    caplog.set_level(logging.CRITICAL, logger="ssesync")
    baseline_fds = open_fds()
    # Allocations made by the loopback server (it keeps every request) are left out.
    only_client = [
        tracemalloc.Filter(False, "*/ssesync/testing.py", all_frames=True),
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "*/fnmatch.py"),
    ]
    tracemalloc.start(25)
    try:
        for n in range(35):  # warm-up: caches, pools, the first of everything
            _one_source(sse_server, n % KINDS)
        gc.collect()
        warm = tracemalloc.take_snapshot().filter_traces(only_client)
        for n in range(35, 200):
            _one_source(sse_server, n % KINDS)
        gc.collect()
        after = tracemalloc.take_snapshot().filter_traces(only_client)
    finally:
        tracemalloc.stop()
    growth = sum(stat.size_diff for stat in after.compare_to(warm, "traceback"))
    # A leaked source, response or thread is kilobytes each: 165 would be far beyond this.
    assert growth < 64 * 1024, after.compare_to(warm, "traceback")[:5]
    assert reader_threads() == []
    # The server closes its side of each connection lazily (it polls every 0.1 s).
    assert settle(lambda: open_fds() <= baseline_fds), (open_fds(), baseline_fds)
    assert sse_server.errors == []


# -- close() from another thread, while iterating ---------------------------------------------


def test_close_ends_an_iteration_blocked_on_a_silent_stream(sse_server: SSEServer) -> None:
    peer_gone = threading.Event()

    def silent(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("only")
        conn.stall()
        peer_gone.set()

    sse_server.route("/s", silent)
    iteration = Iteration(fast(sse_server.url_for("/s")))
    assert iteration.first.wait(WAIT)
    time.sleep(0.05)  # let it block in the read
    assert close_and_time_the_end(iteration) < PROMPT
    assert iteration.error is None  # a clean end, not an exception
    assert [e.data for e in iteration.events] == ["only"]
    assert iteration.source.ready_state is ReadyState.CLOSED
    assert peer_gone.wait(WAIT)  # the socket was closed, not left to the collector


def test_close_ends_an_iteration_waiting_for_response_headers(sse_server: SSEServer) -> None:
    sse_server.route("/s", never_answers)
    iteration = Iteration(fast(sse_server.url_for("/s")))
    assert sse_server.wait_for_requests(1, timeout=WAIT)
    time.sleep(0.05)  # let it block waiting for the status line
    assert close_and_time_the_end(iteration) < PROMPT
    assert iteration.error is None
    assert iteration.events == []


def test_close_ends_an_iteration_sleeping_before_a_reconnect(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(503))
    source = fast(sse_server.url_for("/s"), retry_delay=60_000)
    failed = threading.Event()
    source.on_error(lambda src, exc: failed.set())
    iteration = Iteration(source)
    assert failed.wait(WAIT)
    time.sleep(0.05)  # let it start the 30-60 s sleep
    assert close_and_time_the_end(iteration) < PROMPT
    assert iteration.error is None
    assert sse_server.connection_count == 1


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, str]:
    """A server context with a certificate for 127.0.0.1, and the CA file that trusts it."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return context, str(ca_path)


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("stage", ["reading", "waiting-for-headers"])
@pytest.mark.parametrize("mode", ["thread", "iteration"])
def test_close_is_prompt_over_tls(
    tls_files: tuple[ssl.SSLContext, str], stage: str, mode: str
) -> None:
    context, ca_path = tls_files

    def silent(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("only")
        conn.stall()

    with SSEServer(ssl_context=context) as server:
        server.route("/s", silent if stage == "reading" else never_answers)
        source = fast(server.url_for("/s"), verify=ca_path)
        got = threading.Event()
        if mode == "thread":
            source.on("message", lambda event: got.set())
            source.start()
        else:
            iteration = Iteration(source)
            got = iteration.first
        if stage == "reading":
            assert got.wait(WAIT)
        else:
            assert server.wait_for_requests(1, timeout=WAIT)
        time.sleep(0.05)  # let it block
        if mode == "thread":
            assert timed(source.close) < PROMPT
        else:
            assert close_and_time_the_end(iteration) < PROMPT
            assert iteration.error is None
    assert source.ready_state is ReadyState.CLOSED


@pytest.mark.usefixtures("started_by")
def test_close_from_many_threads_at_once(sse_server: SSEServer) -> None:
    sse_server.route("/s", hold_open)
    got = threading.Event()
    source = fast(sse_server.url_for("/s"))
    source.on("message", lambda event: got.set())
    closed: list[Any] = []
    source.on_close(closed.append)
    source.start()
    assert got.wait(WAIT)
    closers = [threading.Thread(target=source.close) for _ in range(8)]
    started = time.monotonic()
    for closer in closers:
        closer.start()
    for closer in closers:
        closer.join(WAIT)
    assert not any(closer.is_alive() for closer in closers), "close() deadlocked"
    assert time.monotonic() - started < PROMPT
    assert closed == [source]  # the close hooks ran once
    assert reader_threads() == []


# -- close() during the connect itself: TCP and TLS ---------------------------------------------




@pytest.mark.usefixtures("started_by")
def test_close_during_tcp_connect_returns_promptly_on_a_thread(blackhole: str) -> None:
    source = fast(blackhole, timeout=(2, 300)).start()
    time.sleep(0.3)  # let the reader block in connect()
    assert timed(source.close) < 1.0


def test_close_during_tcp_connect_ends_an_iteration_promptly(blackhole: str) -> None:
    iteration = Iteration(fast(blackhole, timeout=(2, 300)))
    time.sleep(0.3)
    assert close_and_time_the_end(iteration) < 1.0
    assert iteration.error is None


@pytest.mark.usefixtures("started_by")
def test_close_during_a_stalled_tls_handshake_returns_promptly(silent_tls: str) -> None:
    source = fast(silent_tls, timeout=(2, 300)).start()
    time.sleep(0.3)  # let the reader block in the handshake
    assert timed(source.close) < 1.0


# -- close() from the source's own code: the loop body, handlers and hooks -------------------------


def test_close_inside_the_for_loop_ends_it_at_once(sse_server: SSEServer) -> None:
    peer_gone = threading.Event()

    def endless(conn: StreamConnection) -> None:
        endless_stream(conn)
        peer_gone.set()

    sse_server.route("/s", endless)
    source = fast(sse_server.url_for("/s"))
    seen = []
    started = time.monotonic()
    for event in source:
        seen.append(event.data)
        if len(seen) == 3:
            source.close()
    assert time.monotonic() - started < PROMPT
    assert seen == ["0", "1", "2"]  # nothing after close(), though the server kept sending
    assert source.ready_state is ReadyState.CLOSED
    assert peer_gone.wait(WAIT)


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("mode", ["thread", "iteration"])
def test_close_from_on_error_stops_reconnecting(sse_server: SSEServer, mode: str) -> None:
    sse_server.route("/s", sse_server.status(503))
    source = fast(sse_server.url_for("/s"))
    errors: list[BaseException] = []

    @source.on_error
    def give_up(src: EventSource, exc: BaseException) -> None:
        errors.append(exc)
        src.close()

    if mode == "thread":
        source.start()
        assert source.join(WAIT)
    else:
        assert list(source) == []
    assert len(errors) == 1
    assert sse_server.connection_count == 1
    assert source.ready_state is ReadyState.CLOSED


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("mode", ["thread", "iteration"])
def test_close_from_on_open_delivers_nothing(sse_server: SSEServer, mode: str) -> None:
    sse_server.route("/s", hold_open)
    source = fast(sse_server.url_for("/s"))
    source.on_open(lambda src: src.close())
    got: list[Any] = []
    source.on("message", got.append)
    if mode == "thread":
        source.start()
        assert source.join(WAIT)
    else:
        got.extend(source)
    assert got == []
    assert source.ready_state is ReadyState.CLOSED


@pytest.mark.usefixtures("started_by")
def test_close_from_a_handler_during_a_burst(sse_server: SSEServer) -> None:
    # Many events arrive in one read: close() from the first handler must stop the rest.
    burst = "".join(f"data: {n}\n\n" for n in range(500)).encode()
    sse_server.route("/s", sse_server.raw([burst], then="stall"))
    source = fast(sse_server.url_for("/s"))
    got: list[str] = []

    @source.on("message")
    def handler(event: Any) -> None:
        got.append(event.data)
        if len(got) == 2:
            source.close()

    source.start()
    assert source.join(WAIT)
    assert got == ["0", "1"]
