"""``ssesync.dispatchers.qt``: a real Qt application (offscreen), a real stream over loopback.

The same contract as for Tk: every call runs on the GUI thread, in order,
and the reader thread never waits for the GUI thread, so ``close()`` on the
GUI thread returns however fast events arrive. The Qt calls of the tests are
kept few: with PySide6 6.12 on Python 3.11, every call of a Qt method that
returns nothing drops a reference to ``None`` (see ``ssesync.dispatchers``).
"""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any, Callable, Optional

import pytest

from ssesync import dispatchers
from ssesync.testing import SSEServer
from tests.gui.guard import CLOSE_BOUND, closing_on_gui_thread, hang_guard
from tests.gui.loader import import_or_skip, load_example
from tests.helpers import WAIT, endless_stream, fast, reader_threads, settle

QtCore = import_or_skip("PySide6.QtCore", "pip install -e '.[gui]'")

#: How often the close-during-a-flood scenario runs.
FLOOD_RUNS = 50


class QtLoop:
    """Runs the Qt event loop of the GUI (main) thread until a condition holds."""

    def __init__(self) -> None:
        self.errors: list[BaseException] = []

    def run_until(
        self,
        condition: Callable[[], bool],
        timeout: float = WAIT,
        step: Optional[Callable[[], None]] = None,
    ) -> bool:
        """Run until ``condition()`` holds, calling ``step()`` on each 1 ms timer tick.

        An exception in ``step`` is kept in :attr:`errors` and ends the run.
        """
        loop = QtCore.QEventLoop()
        deadline = time.monotonic() + timeout

        def check() -> None:
            try:
                if step is not None:
                    step()
            except BaseException as exc:
                self.errors.append(exc)
            if condition() or self.errors or time.monotonic() > deadline:
                loop.quit()

        timer = QtCore.QTimer()
        timer.setInterval(1)
        timer.timeout.connect(check)
        timer.start()
        loop.exec()
        timer.stop()
        return condition()


@pytest.fixture
def qt(qt_app: Any) -> QtLoop:
    return QtLoop()


def gui_thread() -> Optional[int]:
    return threading.main_thread().ident


def test_events_arrive_in_order_on_the_gui_thread_across_a_reconnect(
    qt: QtLoop, sse_server: SSEServer
) -> None:
    first = [{"data": str(i), "id": str(i)} for i in range(5)]
    rest = [{"data": str(i), "id": str(i)} for i in range(5, 10)]
    sse_server.route(
        "/s", SSEServer.events(first, then="drop"), SSEServer.events(rest, then="stall")
    )
    got: list[tuple[str, int]] = []
    source = fast(sse_server.url_for("/s"), dispatcher=dispatchers.qt())
    source.on("message", lambda event: got.append((event.data, threading.get_ident())))
    with closing_on_gui_thread(source.start()):
        assert qt.run_until(lambda: len(got) >= 10), got
    assert [data for data, _ in got] == [str(i) for i in range(10)]
    assert {thread for _, thread in got} == {gui_thread()}
    assert sse_server.connection_count == 2
    assert sse_server.requests[1].last_event_id == "4"


def test_the_dispatcher_never_waits_for_the_gui_thread(qt: QtLoop) -> None:
    # The GUI thread is busy (as in close(), which joins the reader) while
    # another thread hands it 1,000 calls — more than the ~570 queued signal
    # emits that abort PySide6 6.12 on Python 3.11.
    dispatch = dispatchers.qt()
    ran: list[tuple[int, int]] = []
    handed_over = threading.Event()
    outcome: list[bool] = []

    def reader() -> None:
        for i in range(1000):
            dispatch(lambda i=i: ran.append((i, threading.get_ident())))
        handed_over.set()

    thread = threading.Thread(target=reader, name="fake-reader", daemon=True)

    def busy_gui_thread() -> None:
        if not outcome:
            thread.start()
            outcome.append(handed_over.wait(5))  # the GUI thread runs no event now

    assert qt.run_until(lambda: len(ran) == 1000, step=busy_gui_thread)
    thread.join(WAIT)
    assert outcome == [True], "the dispatcher waited for the GUI thread"
    assert ran == [(i, gui_thread()) for i in range(1000)]


def test_wake_ups_lose_no_reference_to_none_or_true(qt: QtLoop) -> None:
    # Each of the 2,000 calls here is its own wake-up. Signal.emit, postEvent
    # or QTimer.singleShot would drop 2,000 references to True or None with
    # PySide6 6.12 on Python 3.11 (and abort the interpreter soon after).
    dispatch = dispatchers.qt()
    counts: list[tuple[int, int]] = []
    ran = threading.Event()
    failures: list[int] = []

    def reader() -> None:
        counts.append((sys.getrefcount(None), sys.getrefcount(True)))
        for i in range(2000):
            ran.clear()
            dispatch(ran.set)
            if not ran.wait(5):
                failures.append(i)
                return
        counts.append((sys.getrefcount(None), sys.getrefcount(True)))

    thread = threading.Thread(target=reader, name="fake-reader", daemon=True)
    thread.start()
    assert qt.run_until(lambda: not thread.is_alive())
    assert failures == []
    (none_before, true_before), (none_after, true_after) = counts
    assert none_after - none_before > -100, "wake-ups drop references to None"
    assert true_after - true_before > -100, "wake-ups drop references to True"


def test_close_on_the_gui_thread_during_a_flood_never_hangs(
    qt: QtLoop, sse_server: SSEServer, record_property: Callable[[str, object], None]
) -> None:
    # 1 event/ms; close() is called from a Qt timer callback while the reader
    # is handing calls over, FLOOD_RUNS times, each with a fresh dispatcher.
    sse_server.route("/flood", endless_stream)
    url = sse_server.url_for("/flood")
    close_times = [_close_during_flood(url, run) for run in range(FLOOD_RUNS)]
    record_property("close_seconds_worst", max(close_times))
    print(f"\n{FLOOD_RUNS} runs; close() worst {max(close_times) * 1000:.1f} ms")


def _close_during_flood(url: str, run: int) -> float:
    """One run: wait for 20 events, close() from a Qt callback; how long close() took."""
    loop = QtLoop()
    seen: list[str] = []
    seen_at_close: list[int] = []
    close_time: list[float] = []
    source = fast(url, dispatcher=dispatchers.qt())
    source.on("message", lambda event: seen.append(event.data))

    def close_when_flooded() -> None:
        if len(seen) < 20 or seen_at_close:
            return
        started = time.monotonic()
        with hang_guard(CLOSE_BOUND, "close() on the GUI thread"):
            source.close()
        close_time.append(time.monotonic() - started)
        seen_at_close.append(len(seen))

    with closing_on_gui_thread(source.start()):
        assert loop.run_until(lambda: bool(seen_at_close), step=close_when_flooded), (
            run,
            loop.errors,
        )
    assert not reader_threads(), run
    # The calls still queued run now, and each is skipped: the source is closed.
    deadline = time.monotonic() + 0.03
    loop.run_until(lambda: time.monotonic() > deadline)
    assert len(seen) == seen_at_close[0], f"run {run}: a handler ran after close()"
    return close_time[0]


def test_a_call_that_raises_is_reported_and_the_next_calls_still_run(
    qt: QtLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    reported: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "excepthook", lambda kind, value, tb: reported.append(kind))
    dispatch = dispatchers.qt()
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("boom")

    dispatch(functools.partial(ran.append, 1))
    dispatch(fail)
    dispatch(functools.partial(ran.append, 3))
    assert qt.run_until(lambda: ran == [1, 3])
    assert reported == [ValueError]


def test_a_call_running_a_nested_event_loop_holds_the_later_calls(qt: QtLoop) -> None:
    # A handler that opens a modal dialog runs Qt's event loop inside it; a
    # wake-up that arrives there must not run the next call before it returns.
    dispatch = dispatchers.qt()
    ran: list[str] = []

    def modal() -> None:
        ran.append("modal opened")
        nested = QtCore.QEventLoop()
        QtCore.QTimer.singleShot(5, lambda: dispatch(lambda: ran.append("next")))
        QtCore.QTimer.singleShot(60, nested.quit)
        nested.exec()
        ran.append("modal closed")

    dispatch(modal)
    assert qt.run_until(lambda: len(ran) == 3)
    assert ran == ["modal opened", "modal closed", "next"]


def test_qt_refuses_another_thread(qt: QtLoop) -> None:
    errors: list[BaseException] = []

    def make() -> None:
        try:
            dispatchers.qt()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join(WAIT)
    assert len(errors) == 1
    assert "application's thread" in str(errors[0])


def test_qt_needs_the_application_first() -> None:
    code = textwrap.dedent(
        """
        import os
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from ssesync import dispatchers
        try:
            dispatchers.qt()
        except RuntimeError as exc:
            print("RuntimeError:", exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "RuntimeError: create the QApplication" in result.stdout


def test_the_guide_example_closes_its_stream_with_its_window(
    qt: QtLoop, sse_server: SSEServer
) -> None:
    example = load_example("qt_window.py")
    sse_server.route(
        "/stream", SSEServer.events([{"data": "41"}, {"data": "42"}], then="stall")
    )
    window = example.MessageLabel(sse_server.url_for("/stream"))
    window.show()
    assert qt.run_until(lambda: window.text() == "42")
    assert reader_threads()
    with hang_guard(CLOSE_BOUND, "closing the window"):
        window.close()
    assert settle(lambda: not reader_threads())
