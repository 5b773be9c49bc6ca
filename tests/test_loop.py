"""The read loop's logic, driven by hand: no socket, no thread, no blocking call.

``ssesync._loop.ReadLoop`` is told what happened and answers with the next
step; a driver does the I/O. These tests are that driver, step by step, with
a stream that is a list of reads, so each rule of the loop (what a response
means, when to wait and how long, what a reconnect sends, what is a replay)
is pinned without the network, as a hub driving the loop from a selector
relies on.
"""

from __future__ import annotations

from typing import Any, Optional

import pytest

from ssesync import Event, ReadyState, SSEConnectionError, SSEParsingError
from ssesync._loop import ReadLoop, Step
from ssesync._request import Options, RequestPlan
from ssesync._transport import Attempt, Request

URL = "http://stream.example/s"


class FakeStream:
    def __init__(self, status: int = 200, content_type: str = "text/event-stream") -> None:
        self.status = status
        self.headers = {"Content-Type": content_type}
        self.url = URL
        self.closed_with: Optional[bool] = None

    def read(self) -> bytes:  # the tests call loop.received() themselves
        raise AssertionError("not read by these tests")

    def abort(self) -> None:
        pass

    def close(self, reuse: bool = False) -> None:
        self.closed_with = reuse


class FakeTransport:
    def open(self, request: Request, attempt: Attempt) -> Any:
        raise AssertionError("not opened by these tests")

    def close(self) -> None:
        pass


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def opened(self) -> None:
        self.calls.append(("opened",))

    def comment(self, text: str) -> None:
        self.calls.append(("comment", text))

    def error(self, exc: Any, fatal: bool) -> None:
        self.calls.append(("error", type(exc).__name__, fatal))

    def closed(self) -> None:
        self.calls.append(("closed",))


def make_loop(**overrides: Any) -> tuple[ReadLoop, RecordingSink]:
    options: dict[str, Any] = {
        "method": "GET", "params": None, "data": None, "json": None, "last_event_id": None,
        "reconnect": True, "retry_delay": 1000, "max_retry_delay": 30000, "max_retries": None,
        "timeout": (5, 5), "dedupe": True, "strict": False, "max_event_size": 64,
        "keep_connection": False,
    }  # fmt: skip
    options.update(overrides)
    checked = Options.check(URL, **options)
    sink = RecordingSink()
    loop = ReadLoop(
        checked, RequestPlan(checked, {}), FakeTransport(), sink,
        owns_transport=False, last_event_id=checked.last_event_id,
    )  # fmt: skip
    loop.backoff._random = lambda: 0.0  # the bottom of every jitter range
    return loop, sink


def connect(loop: ReadLoop, stream: Optional[FakeStream] = None) -> tuple[Request, Step]:
    begun = loop.begin_attempt()
    assert begun is not None
    request, _ = begun
    return request, loop.opened(stream or FakeStream())


def data(items: list[Any]) -> list[Any]:
    return [item.data if isinstance(item, Event) else ("comment", item) for item in items]


def test_a_stream_opens_reads_ends_and_waits_the_reconnection_time() -> None:
    loop, sink = make_loop()
    assert loop.step is Step.CONNECT
    _, step = connect(loop)
    assert step is Step.READ
    assert loop.state is ReadyState.OPEN
    assert data(loop.received(b"data: a\n\n: ping\n")) == ["a", ("comment", "ping")]
    assert loop.ended() is Step.WAIT
    assert loop.delay == pytest.approx(1.0)  # the reconnection time is a floor
    assert loop.state is ReadyState.CONNECTING
    assert loop.waited() is Step.CONNECT
    assert sink.calls == [("opened",), ("error", "SSEConnectionError", False)]


def test_the_reconnect_sends_the_last_event_id_of_the_last_complete_block() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"id: 7\ndata: a\n\nid: 8\ndata: cut off")
    loop.ended(SSEConnectionError("broke"))
    loop.waited()
    request, _ = connect(loop)
    assert request.headers["Last-Event-ID"] == b"7"


def test_204_ends_the_source_and_finish_tells_the_sink_once() -> None:
    loop, sink = make_loop()
    stream = FakeStream(status=204)
    _, step = connect(loop, stream)
    assert step is Step.STOP
    assert stream.closed_with is False
    loop.finish()
    loop.finish()
    assert sink.calls == [("closed",)]
    assert loop.state is ReadyState.CLOSED
    assert loop.fatal is None


def test_a_404_is_fatal_and_reported_as_such() -> None:
    loop, sink = make_loop()
    _, step = connect(loop, FakeStream(status=404))
    assert step is Step.STOP
    assert isinstance(loop.fatal, SSEConnectionError)
    assert loop.fatal.status == 404
    assert sink.calls == [("error", "SSEConnectionError", True)]


def test_giving_up_is_not_retryable() -> None:
    loop, sink = make_loop(max_retries=1)
    assert loop.open_failed(SSEConnectionError("refused")) is Step.WAIT
    loop.waited()
    loop.begin_attempt()
    assert loop.open_failed(SSEConnectionError("refused")) is Step.STOP
    assert loop.fatal is not None
    assert not loop.fatal.retryable
    assert str(loop.fatal).startswith("gave up")
    assert sink.calls[-1] == ("error", "SSEConnectionError", True)


def test_close_during_a_wait_stops_and_reads_closed_at_once() -> None:
    loop, _ = make_loop()
    loop.open_failed(SSEConnectionError("refused"))
    loop.close()
    assert loop.state is ReadyState.CLOSED
    assert loop.wake.is_set()  # a blocking driver's wait returns at once
    assert loop.waited() is Step.STOP
    assert loop.begin_attempt() is None


def test_a_reconnect_request_connects_at_once_without_an_error() -> None:
    loop, sink = make_loop()
    connect(loop)
    loop.request_reconnect()
    assert loop.ended(SSEConnectionError("the abort broke the read")) is Step.CONNECT
    assert ("error", "SSEConnectionError", False) not in sink.calls


def test_a_parse_error_comes_after_the_events_before_it() -> None:
    loop, _ = make_loop(reconnect=False)
    connect(loop)
    items = loop.received(b"data: ok\n\ndata: " + b"x" * 100 + b"\n\n")
    assert data(items) == ["ok"]
    error = loop.pending_error
    assert isinstance(error, SSEParsingError)
    assert loop.ended(error) is Step.STOP
    assert loop.fatal is error


def test_keep_connection_returns_only_a_cleanly_ended_stream() -> None:
    for error, reuse in ((None, True), (SSEConnectionError("broke"), False)):
        loop, _ = make_loop(keep_connection=True)
        stream = FakeStream()
        connect(loop, stream)
        loop.ended(error)
        assert stream.closed_with is reuse


def test_id_less_replay_after_a_reconnect_is_of_the_last_message_of_the_last_read() -> None:
    loop, _ = make_loop()
    connect(loop)
    assert data(loop.received(b"data: m1\n\ndata: m2\n\ndata: m3\n\n")) == ["m1", "m2", "m3"]
    loop.ended()
    loop.waited()
    connect(loop)
    # The server re-sends its latest state: m3 (not m1) is the replay.
    assert data(loop.received(b"data: m3\n\ndata: m4\n\n")) == ["m4"]
    loop.ended()
    loop.waited()
    connect(loop)
    assert data(loop.received(b"data: m1\n\n")) == ["m1"]


def test_backoff_starts_over_after_a_stream_that_delivered() -> None:
    loop, _ = make_loop(retry_delay=100)
    loop.open_failed(SSEConnectionError("refused"))
    loop.waited()
    loop.begin_attempt()
    loop.open_failed(SSEConnectionError("refused"))
    assert loop.delay == pytest.approx(0.1)  # 200 ms, jitter down to half
    loop.waited()
    connect(loop)
    loop.received(b"data: a\n\n")
    loop.ended()
    assert loop.delay == pytest.approx(0.1)  # a first reconnect again: 100-150 ms
    assert loop.backoff.attempts == 1


def test_a_server_retry_field_sets_the_next_wait() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"retry: 250\n\n")
    loop.ended()
    assert loop.delay == pytest.approx(0.25)
