"""The read loop's logic, driven by hand: no socket, no thread, no blocking call.

``ssesync._loop.ReadLoop`` is told what happened and answers with the next
step; a driver does the I/O. These tests are that driver, step by step, with
a stream that is a list of reads, so each rule of the loop (what a response
means, when to wait and how long, what a reconnect sends, what is a replay)
is pinned without the network, as a hub driving the loop from a selector
relies on.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Optional

import pytest

from ssesync import Event, ReadyState, SSEConnectionError, SSEParsingError
from ssesync import _drive as drive
from ssesync._dedupe import DEDUPE_WINDOW, KEPT_DATA, ReplayFilter, data_key
from ssesync._loop import ReadLoop, Response, Step
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
    def __init__(self) -> None:
        self.closed = False

    def open(self, request: Request, attempt: Attempt) -> Any:
        raise AssertionError("not opened by these tests")

    def close(self) -> None:
        self.closed = True


class RecordingSink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.errors: list[Any] = []  # the exceptions themselves, in order
        #: Called inside a hook, by name ("opened", "error"): what a handler does there.
        self.during: dict[str, Callable[[], None]] = {}

    def opened(self) -> None:
        self.calls.append(("opened",))
        self._during("opened")

    def comment(self, text: str) -> None:
        self.calls.append(("comment", text))

    def error(self, exc: Any, fatal: bool) -> None:
        self.calls.append(("error", type(exc).__name__, fatal))
        self.errors.append(exc)
        self._during("error")

    def closed(self) -> None:
        self.calls.append(("closed",))

    def _during(self, hook: str) -> None:
        if hook in self.during:
            self.during[hook]()


def make_loop(*, owns_transport: bool = False, **overrides: Any) -> tuple[ReadLoop, RecordingSink]:
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
        owns_transport=owns_transport, last_event_id=checked.last_event_id,
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
    assert loop.fatal.retryable is False
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


@pytest.mark.parametrize("control", ["close", "request_reconnect", "keep_connection=False"])
def test_a_stream_that_ends_cleanly_is_not_returned_after_close_reconnect_or_by_default(
    control: str,
) -> None:
    # close() and reconnect() may have shut its socket down already, and
    # without keep_connection a connection never goes back to a shared pool.
    loop, _ = make_loop(keep_connection=control != "keep_connection=False")
    stream = FakeStream()
    connect(loop, stream)
    if control != "keep_connection=False":
        getattr(loop, control)()
    loop.ended()
    assert stream.closed_with is False


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


def test_comments_and_skipped_replays_do_not_start_the_backoff_over() -> None:
    # A server answering every reconnect with a keep-alive and a replay of
    # the last event delivers nothing new: the backoff goes on growing (and
    # max_retries is reached) instead of a reconnect storm at retry: 0.
    loop, _ = make_loop(retry_delay=100)
    connect(loop)
    loop.received(b"id: 5\ndata: same\n\n")
    loop.ended()
    assert loop.backoff.attempts == 1
    for attempts in (2, 3, 4):
        loop.waited()
        connect(loop)
        assert loop.received(b": keep-alive\n\nid: 5\ndata: same\n\n") == ["keep-alive"]
        loop.ended()
        assert loop.backoff.attempts == attempts


def test_the_loop_counts_an_id_delivered_again_as_recent() -> None:
    # The loop's own copy of the replay rule (inlined for speed) keeps the
    # window's order as ReplayFilter does.
    loop, _ = make_loop(max_event_size=1 << 20)
    connect(loop)
    limit = loop.replay.limit  # type: ignore[union-attr]
    body = b"id: A\ndata: v1\n\n" + b"".join(b"id: %d\ndata: x\n\n" % i for i in range(limit - 1))
    loop.received(body)
    newer = b"".join(b"id: b%d\ndata: y\n\n" % i for i in range(200))
    loop.received(b"id: A\ndata: v2\n\n" + newer)
    assert data(loop.received(b"id: A\ndata: v2\n\ndata: end\n\n")) == ["end"]


def test_a_server_retry_field_sets_the_next_wait() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"retry: 250\n\n")
    loop.ended()
    assert loop.delay == pytest.approx(0.25)


def test_a_new_loop_connects_first_and_holds_nothing_yet() -> None:
    loop, sink = make_loop()
    assert loop.step is Step.CONNECT
    assert loop.state is ReadyState.CONNECTING
    assert loop.response is None  # source.response before the first response
    assert loop.driver_thread is None  # no driver yet: close() finishes the loop itself
    assert loop.pending_error is None
    loop.finish()  # a source closed before it ever connected
    assert loop.step is Step.STOP
    assert loop.begin_attempt() is None
    assert sink.calls == [("closed",)]


def test_the_first_request_sends_the_last_event_id_option() -> None:
    loop, _ = make_loop(last_event_id="5")
    request, _ = connect(loop)
    assert request.headers["Last-Event-ID"] == b"5"
    (event,) = loop.received(b"data: a\n\n")
    assert event.last_event_id == "5"  # the parser starts from it


def test_each_response_is_kept_for_source_response() -> None:
    loop, _ = make_loop()
    stream = FakeStream()
    stream.url = URL + "?after=redirect"
    connect(loop, stream)
    assert loop.response == Response(200, stream.headers, URL + "?after=redirect")


def test_the_step_taken_is_kept_in_step() -> None:
    loop, _ = make_loop()
    connect(loop)
    assert loop.step is Step.READ
    loop.ended()
    assert loop.step is Step.WAIT
    loop.waited()
    assert loop.step is Step.CONNECT


# -- close() and reconnect() at every point -----------------------------------------------


@pytest.mark.parametrize("control", ["close", "request_reconnect"])
def test_close_and_reconnect_abort_the_attempt_in_progress(control: str) -> None:
    # A blocked connect returns at once because its sockets are shut down.
    loop, _ = make_loop()
    begun = loop.begin_attempt()
    assert begun is not None
    _, attempt = begun
    assert not attempt.aborted
    getattr(loop, control)()
    assert attempt.aborted


def test_close_during_a_connect_stops_whatever_the_connect_gives() -> None:
    loop, sink = make_loop()
    loop.begin_attempt()
    loop.close()
    assert loop.open_failed(SSEConnectionError("the abort broke it")) is Step.STOP
    loop, sink = make_loop()
    loop.begin_attempt()
    loop.close()
    stream = FakeStream()
    assert loop.opened(stream) is Step.STOP
    loop.finish()
    assert stream.closed_with is False  # released by finish(), never reused
    assert sink.calls == [("closed",)]  # no on_open, no on_error


def test_a_reconnect_requested_during_a_connect_connects_again_without_an_error() -> None:
    loop, sink = make_loop()
    connect(loop)  # OPEN
    loop.request_reconnect()
    assert loop.ended(SSEConnectionError("the abort broke the read")) is Step.CONNECT
    loop.begin_attempt()
    assert loop.state is ReadyState.CONNECTING
    loop.request_reconnect()
    assert loop.open_failed(SSEConnectionError("the abort broke the connect")) is Step.CONNECT
    assert sink.calls == [("opened",)]
    # The request is taken once: the next failure is reported and waited for.
    loop.begin_attempt()
    assert loop.open_failed(SSEConnectionError("refused")) is Step.WAIT
    assert sink.calls[-1] == ("error", "SSEConnectionError", False)


@pytest.mark.parametrize("hook", ["opened", "error"])
def test_close_from_a_hook_stops_the_loop(hook: str) -> None:
    # on_open and on_error handlers run inside the loop's step: a close()
    # there must end it, not be overwritten by the step that follows.
    loop, sink = make_loop()
    sink.during[hook] = loop.close
    begun = loop.begin_attempt()
    assert begun is not None
    if hook == "opened":
        assert loop.opened(FakeStream()) is Step.STOP
    else:
        assert loop.open_failed(SSEConnectionError("refused")) is Step.STOP
    assert loop.state is ReadyState.CLOSED


def test_close_while_the_stream_is_being_set_up_skips_on_open() -> None:
    loop, sink = make_loop()

    class CloseMeanwhile(ReplayFilter):
        def reconnected(self) -> None:
            super().reconnected()
            loop.close()  # another thread's close(), just then

    loop.replay = CloseMeanwhile()
    loop.begin_attempt()
    assert loop.opened(FakeStream()) is Step.STOP
    assert loop.state is ReadyState.CLOSED
    assert sink.calls == []


def test_close_while_reading_stops_when_the_read_ends() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.close()
    assert loop.ended(SSEConnectionError("the abort broke the read")) is Step.STOP


def test_finish_closes_a_transport_the_loop_owns() -> None:
    loop, _ = make_loop(owns_transport=True)
    transport = loop.transport
    assert isinstance(transport, FakeTransport)
    loop.finish()
    assert transport.closed
    loop, _ = make_loop()
    loop.finish()
    assert not loop.transport.closed  # type: ignore[attr-defined]  # a shared pool stays


# -- what a read gives ----------------------------------------------------------------------


def test_a_read_of_only_id_less_messages_is_plain_any_other_is_not() -> None:
    # The driver skips per-item bookkeeping for a plain read: a comment or an
    # id in one would be yielded as an event, or the last event ID lost.
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"data: a\n\n")
    assert loop.plain
    for read in (b"id: 1\ndata: b\n\n", b": ping\ndata: c\n\n", b"event: x\ndata: d\n\n"):
        loop.received(read)
        assert not loop.plain, read


def test_an_id_only_block_moves_the_last_event_id() -> None:
    loop, _ = make_loop()
    connect(loop)
    assert loop.received(b"id: 9\n\n") == []
    assert loop.last_event_id == "9"


def test_strict_mode_reaches_the_parser() -> None:
    loop, _ = make_loop(strict=True, reconnect=False)
    connect(loop)
    loop.received(b"data: ok\n\nfoo: bar\n\n")
    assert isinstance(loop.pending_error, SSEParsingError)


def test_a_parse_error_is_retried_when_reconnecting() -> None:
    loop, sink = make_loop()
    connect(loop)
    loop.received(b"data: ok\n\ndata: " + b"x" * 100 + b"\n\n")
    assert loop.ended(loop.pending_error) is Step.WAIT
    assert loop.pending_error is None  # the next stream starts clean
    assert sink.calls[-1] == ("error", "SSEParsingError", False)


def test_a_retry_line_of_an_unfinished_block_sets_the_next_wait() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"retry: 250\ndata: cut off")
    loop.ended()
    assert loop.delay == pytest.approx(0.25)


# -- replays, as the loop filters them --------------------------------------------------------


def reconnect(loop: ReadLoop) -> None:
    loop.ended()
    loop.waited()
    connect(loop)


def test_replayed_ids_are_skipped_after_a_reconnect_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop, _ = make_loop()
    connect(loop)
    assert data(loop.received(b"id: 1\ndata: a\n\nid: 2\ndata: b\n\n")) == ["a", "b"]
    reconnect(loop)
    caplog.set_level(logging.DEBUG, logger="ssesync")
    replayed = b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\nid: 4\ndata: d\n\n"
    assert data(loop.received(replayed)) == ["c", "d"]
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped")]
    assert skips == [
        "skipped a replay of the event with id '1'",
        "skipped a replay of the event with id '2'",
    ]


def test_an_id_less_replay_of_an_event_with_an_id_is_skipped() -> None:
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"data: a\n\nid: 5\ndata: state\n\n")
    reconnect(loop)
    assert data(loop.received(b"data: state\n\n")) == []


def test_after_an_event_with_an_id_repeated_data_is_new() -> None:
    # Only the first event after a reconnect can be an id-less replay.
    loop, _ = make_loop()
    connect(loop)
    loop.received(b"data: x\n\n")
    reconnect(loop)
    assert data(loop.received(b"id: 9\ndata: x\n\ndata: x\n\n")) == ["x", "x"]


def test_long_data_with_the_same_id_and_length_but_new_content_is_new() -> None:
    loop, _ = make_loop(max_event_size=4096)
    connect(loop)
    first, second = "a" * 1000, "b" * 1000
    assert data(loop.received(f"id: 1\ndata: {first}\n\n".encode())) == [first]
    reconnect(loop)
    assert data(loop.received(f"id: 1\ndata: {second}\n\n".encode())) == [second]
    reconnect(loop)
    assert data(loop.received(f"id: 1\ndata: {second}\n\n".encode())) == []


@pytest.mark.parametrize("length", [KEPT_DATA, KEPT_DATA + 1])
def test_the_loop_remembers_an_id_by_its_data_or_only_its_length_and_hash(length: int) -> None:
    # As ReplayFilter does (tests/test_dedupe.py): long data is not kept alive.
    loop, _ = make_loop(max_event_size=4096)
    connect(loop)
    payload = "d" * length
    loop.received(f"id: 1\ndata: {payload}\n\n".encode())
    assert loop.replay is not None
    assert loop.replay.seen == {"1": data_key(payload)}


def test_the_loop_forgets_the_oldest_ids_once_it_holds_two_windows() -> None:
    loop, _ = make_loop()
    connect(loop)
    assert loop.replay is not None
    blocks = "".join(f"id: {n}\ndata: d\n\n" for n in range(ReplayFilter.limit))
    loop.received(blocks.encode())
    assert len(loop.replay.seen) == ReplayFilter.limit  # two windows: all still held
    loop.received(b"id: new\ndata: d\n\n")
    assert len(loop.replay.seen) == DEDUPE_WINDOW
    assert "new" in loop.replay.seen


def test_dedupe_off_delivers_replays() -> None:
    loop, _ = make_loop(dedupe=False)
    connect(loop)
    loop.received(b"id: 1\ndata: a\n\n")
    reconnect(loop)
    assert data(loop.received(b"id: 1\ndata: a\n\n")) == ["a"]


# -- backoff: healthy streams, giving up ------------------------------------------------------


def test_a_stream_that_ended_before_any_event_counts_as_a_failed_attempt() -> None:
    loop, _ = make_loop(retry_delay=100)
    connect(loop)
    loop.ended()
    loop.waited()
    connect(loop)
    loop.ended()  # opened, delivered nothing, ended at once
    assert loop.backoff.attempts == 2
    assert loop.delay == pytest.approx(0.1)  # 200 ms, jitter down to half


@pytest.mark.parametrize(
    ("open_for", "attempts"),
    [(4.9, 2), (5.0, 1), (600.0, 1)],
    ids=["not-yet-healthy", "healthy-at-5s", "long-healthy"],
)
def test_a_stream_open_for_five_seconds_is_healthy_without_an_event(
    monkeypatch: pytest.MonkeyPatch, open_for: float, attempts: int
) -> None:
    # A quiet stream that stays up is not a failure: the backoff starts over
    # (HEALTHY_AFTER), as after one that delivered an event.
    now = [1000.0]
    monkeypatch.setattr("ssesync._loop.time.monotonic", lambda: now[0])
    loop, _ = make_loop()
    connect(loop)
    loop.ended()
    loop.waited()
    connect(loop)
    now[0] += open_for
    loop.ended()
    assert loop.backoff.attempts == attempts


def test_give_up_carries_the_last_failure_its_status_and_the_url() -> None:
    loop, sink = make_loop(max_retries=1)
    loop.begin_attempt()
    loop.open_failed(SSEConnectionError("503 from the server", status=503, url=URL))
    loop.waited()
    loop.begin_attempt()
    last = SSEConnectionError("503 again", status=503, url=URL)
    assert loop.open_failed(last) is Step.STOP
    fatal = loop.fatal
    assert isinstance(fatal, SSEConnectionError)
    assert (fatal.status, fatal.url, fatal.__cause__) == (503, URL, last)
    assert str(fatal) == "gave up after 1 failed retry: 503 again"
    assert loop.state is ReadyState.CLOSED
    assert sink.errors[-1] is fatal


@pytest.mark.parametrize(
    ("failure", "words"),
    [
        ("refused", "gave up without a retry (max_retries=0): refused"),
        ("ended", "gave up without a reconnect attempt (max_retries=0): "
                  "the server ended the stream of " + URL),
        ("broke", "gave up without a reconnect attempt (max_retries=0): broke"),
        ("unparsable", "gave up without a reconnect attempt (max_retries=0): bad stream"),
    ],
)  # fmt: skip
def test_max_retries_zero_gives_up_at_the_first_failure(failure: str, words: str) -> None:
    # max_retries=0 is accepted: no retry, and no reconnect after a stream ends.
    loop, _ = make_loop(max_retries=0)
    if failure == "refused":
        loop.begin_attempt()
        step = loop.open_failed(SSEConnectionError("refused"))
    else:
        connect(loop)
        errors = {"ended": None, "broke": SSEConnectionError("broke"),
                  "unparsable": SSEParsingError("bad stream")}  # fmt: skip
        step = loop.ended(errors[failure])
    assert step is Step.STOP
    assert str(loop.fatal) == words
    assert isinstance(loop.fatal, SSEConnectionError)
    assert loop.fatal.status is None  # a parse error has no status to carry


def test_the_end_of_a_stream_is_reported_with_the_url() -> None:
    loop, sink = make_loop()
    connect(loop)
    loop.ended()
    (error,) = sink.errors
    assert isinstance(error, SSEConnectionError)
    assert str(error) == f"the server ended the stream of {URL}"
    assert error.url == URL


def test_the_open_failure_itself_is_reported() -> None:
    loop, sink = make_loop()
    loop.begin_attempt()
    failure = SSEConnectionError("refused")
    loop.open_failed(failure)
    assert sink.errors == [failure]


def test_retry_after_of_the_failure_sets_a_floor_on_the_wait() -> None:
    loop, _ = make_loop(retry_delay=100)
    loop.begin_attempt()
    loop.open_failed(SSEConnectionError("429", status=429, retry_after=20))
    assert loop.delay == pytest.approx(20.0)


def test_a_clean_end_without_reconnect_stops_quietly() -> None:
    loop, sink = make_loop(reconnect=False)
    connect(loop)
    assert loop.ended() is Step.STOP
    assert loop.fatal is None
    assert sink.calls == [("opened",)]


# -- what the ssesync logger hears ------------------------------------------------------------


def test_connects_reconnects_and_errors_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ssesync")
    loop, _ = make_loop()
    connect(loop)
    loop.ended()  # the server ended it: INFO, a reconnect follows
    loop.waited()
    connect(loop)
    loop.ended(SSEConnectionError("broke"))  # it broke: WARNING
    loop.waited()
    connect(loop)
    loop.request_reconnect()
    loop.ended()
    connect(loop, FakeStream(status=204))
    loop, _ = make_loop(reconnect=False)
    connect(loop)
    loop.ended()
    loop, _ = make_loop()
    connect(loop, FakeStream(status=404))
    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    ended = f"the server ended the stream of {URL}"
    assert records == [
        ("DEBUG", f"connecting to {URL}"),
        ("INFO", f"connected to {URL}"),
        ("INFO", f"{ended}; reconnecting in 1.00 s"),
        ("DEBUG", f"connecting to {URL}"),
        ("INFO", f"connected to {URL}"),
        ("WARNING", "broke; reconnecting in 1.00 s"),
        ("DEBUG", f"connecting to {URL}"),
        ("INFO", f"connected to {URL}"),
        ("INFO", f"reconnecting to {URL} on request"),
        ("DEBUG", f"connecting to {URL}"),
        ("INFO", f"{URL} answered 204 No Content: the stream is over"),
        ("DEBUG", f"connecting to {URL}"),
        ("INFO", f"connected to {URL}"),
        ("INFO", f"the stream of {URL} ended"),
        ("DEBUG", f"connecting to {URL}"),
        ("ERROR", records[-1][1]),
    ]
    assert "404" in records[-1][1]
    assert records[-1][1] == str(loop.fatal)  # the error's own words, nothing around them


# -- the blocking driver's wait (ssesync._drive.wait) -----------------------------------------


class ScriptedWake(threading.Event):
    """A loop's ``wake`` event with a close() or reconnect() landing at one point of the wait.

    ``before-clear``: between the loop deciding to WAIT and the driver
    starting its wait; ``before-wait``: after the driver read the flags, just
    before it blocks. Either way the wait must not last the delay.
    """

    def __init__(self, control: Callable[[], None], at: str) -> None:
        super().__init__()
        self.control, self.at = control, at

    def clear(self) -> None:
        if self.at == "before-clear":
            self.control()
        super().clear()

    def wait(self, timeout: Optional[float] = None) -> bool:
        if self.at == "before-wait":
            self.control()
        return super().wait(timeout)


@pytest.mark.parametrize("at", ["before-clear", "before-wait"])
@pytest.mark.parametrize("control", ["close", "request_reconnect"])
def test_a_close_or_reconnect_just_before_the_backoff_wait_cuts_it_short(
    control: str, at: str
) -> None:
    loop, _ = make_loop(retry_delay=30000)
    loop.begin_attempt()
    assert loop.open_failed(SSEConnectionError("refused")) is Step.WAIT
    assert loop.delay == pytest.approx(30.0)
    loop.wake = ScriptedWake(getattr(loop, control), at)
    started = time.monotonic()
    step = drive.wait(loop)
    assert time.monotonic() - started < 1.0  # not the 30 s delay
    assert step is (Step.STOP if control == "close" else Step.CONNECT)


def test_a_wake_left_from_an_earlier_reconnect_does_not_cut_the_next_wait() -> None:
    waits: list[tuple[Optional[float], bool]] = []

    class RecordingWake(threading.Event):
        def wait(self, timeout: Optional[float] = None) -> bool:
            waits.append((timeout, self.is_set()))
            return False  # the delay passed

    loop, _ = make_loop()
    loop.wake = RecordingWake()
    connect(loop)
    loop.request_reconnect()  # sets wake; taken by the loop at once
    assert loop.ended() is Step.CONNECT
    loop.begin_attempt()
    assert loop.open_failed(SSEConnectionError("refused")) is Step.WAIT
    assert drive.wait(loop) is Step.CONNECT
    assert waits == [(pytest.approx(1.0), False)]
