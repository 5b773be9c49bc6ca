"""``ssesync.dispatchers.tk``: a real Tk window on Xvfb, a real stream over loopback.

What matters is the thread contract: every call runs on the Tk thread, in
order, and the reader thread never waits for the Tk thread — which is what
lets ``close()`` on the Tk thread return however fast events arrive.
"""

from __future__ import annotations

import functools
import gc
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import pytest

from ssesync import dispatchers
from ssesync.testing import SSEServer
from tests.gui.guard import CLOSE_BOUND, Hung, closing_on_gui_thread, hang_guard
from tests.gui.loader import import_or_skip, load_example
from tests.helpers import WAIT, endless_stream, fast, reader_threads, settle

tkinter = import_or_skip("tkinter", "Debian: apt-get install python3-tk")

#: How often the close-during-a-flood scenario runs.
FLOOD_RUNS = 50


class TkApp:
    """A Tk root whose callback errors and Tcl background errors are kept for the test."""

    def __init__(self, root: Any = None) -> None:
        self.root = root if root is not None else tkinter.Tk()
        self.errors: list[object] = []
        self.root.report_callback_exception = self._callback_failed
        self.root.tk.createcommand("bgerror", self.errors.append)

    def _callback_failed(self, kind: type, value: BaseException, tb: object) -> None:
        self.errors.append(value)

    def run_until(
        self, condition: Callable[[], bool], timeout: float = WAIT, stop_on_error: bool = True
    ) -> bool:
        """Run Tk's event loop until ``condition()`` holds (or an error, or the timeout)."""
        deadline = time.monotonic() + timeout

        def check() -> None:
            done = condition() or (stop_on_error and self.errors)
            if done or time.monotonic() > deadline:
                self.root.quit()
            else:
                self.root.after(2, check)

        self.root.after(0, check)
        self.root.mainloop()
        return condition()

    def run_for(self, seconds: float) -> None:
        """Run the event loop for a while, e.g. to let a pump tick a few times."""
        self.root.after(int(seconds * 1000), self.root.quit)
        self.root.mainloop()

    def timers(self) -> set[str]:
        """The ids of the Tcl timers (``after``) pending now."""
        return set(self.root.tk.splitlist(self.root.tk.call("after", "info")))

    def destroy(self) -> None:
        try:
            self.root.destroy()
        except tkinter.TclError:
            pass  # already destroyed


class Call:
    """A call that does nothing, and can be watched with a weak reference."""

    def __call__(self) -> None:
        pass


@pytest.fixture
def tk_app(display: str) -> Iterator[TkApp]:
    app = TkApp()
    yield app
    app.destroy()


def gui_thread() -> int | None:
    return threading.main_thread().ident


def test_events_arrive_in_order_on_the_tk_thread_across_a_reconnect(
    tk_app: TkApp, sse_server: SSEServer
) -> None:
    first = [{"data": str(i), "id": str(i)} for i in range(5)]
    rest = [{"data": str(i), "id": str(i)} for i in range(5, 10)]
    sse_server.route(
        "/s", SSEServer.events(first, then="drop"), SSEServer.events(rest, then="stall")
    )
    got: list[tuple[str, int]] = []
    source = fast(sse_server.url_for("/s"), dispatcher=dispatchers.tk(tk_app.root))
    source.on("message", lambda event: got.append((event.data, threading.get_ident())))
    with closing_on_gui_thread(source.start()):
        assert tk_app.run_until(lambda: len(got) >= 10), got
    assert [data for data, _ in got] == [str(i) for i in range(10)]
    assert {thread for _, thread in got} == {gui_thread()}
    assert sse_server.connection_count == 2
    assert sse_server.requests[1].last_event_id == "4"
    assert tk_app.errors == []


def test_the_dispatcher_never_waits_for_the_tk_thread(tk_app: TkApp) -> None:
    # The Tk thread is busy (as in close(), which joins the reader) while
    # another thread hands it 1,000 calls: they must all be taken without it.
    dispatch = dispatchers.tk(tk_app.root)
    ran: list[tuple[int, int]] = []
    handed_over = threading.Event()
    outcome: list[bool] = []

    def reader() -> None:
        for i in range(1000):
            dispatch(lambda i=i: ran.append((i, threading.get_ident())))
        handed_over.set()

    thread = threading.Thread(target=reader, name="fake-reader", daemon=True)

    def busy_tk_thread() -> None:
        thread.start()
        outcome.append(handed_over.wait(5))  # the Tk thread serves no Tk call now

    tk_app.root.after(0, busy_tk_thread)
    assert tk_app.run_until(lambda: len(ran) == 1000)
    thread.join(WAIT)
    assert outcome == [True], "the dispatcher waited for the Tk thread"
    assert ran == [(i, gui_thread()) for i in range(1000)]


def test_close_on_the_tk_thread_during_a_flood_never_hangs(
    display: str, sse_server: SSEServer, record_property: Callable[[str, object], None]
) -> None:
    # 1 event/ms; close() is called from a Tk callback while the reader is
    # handing calls over, FLOOD_RUNS times, each in a fresh Tk application.
    sse_server.route("/flood", endless_stream)
    url = sse_server.url_for("/flood")
    close_times = [_close_during_flood(url, run) for run in range(FLOOD_RUNS)]
    record_property("close_seconds_worst", max(close_times))
    print(f"\n{FLOOD_RUNS} runs; close() worst {max(close_times) * 1000:.1f} ms")


def _close_during_flood(url: str, run: int) -> float:
    """One run: wait for 20 events, close() from a Tk callback; how long close() took."""
    app = TkApp()
    try:
        seen: list[str] = []
        seen_at_close: list[int] = []
        close_time: list[float] = []
        source = fast(url, dispatcher=dispatchers.tk(app.root))
        source.on("message", lambda event: seen.append(event.data))

        def close_when_flooded() -> None:
            if len(seen) < 20:
                app.root.after(1, close_when_flooded)
                return
            started = time.monotonic()
            with hang_guard(CLOSE_BOUND, "close() on the Tk thread"):
                source.close()
            close_time.append(time.monotonic() - started)
            seen_at_close.append(len(seen))

        app.root.after(1, close_when_flooded)
        with closing_on_gui_thread(source.start()):
            assert app.run_until(lambda: bool(seen_at_close)), (run, app.errors)
        assert not reader_threads(), run
        app.run_for(0.06)  # the pump runs what was still queued: every call is skipped
        assert len(seen) == seen_at_close[0], f"run {run}: a handler ran after close()"
        assert app.errors == [], run
        return close_time[0]
    finally:
        app.destroy()


def test_destroying_the_widget_stops_the_dispatcher_cleanly(tk_app: TkApp) -> None:
    frame = tkinter.Frame(tk_app.root)
    timers_before = tk_app.timers()
    dispatch = dispatchers.tk(frame, interval_ms=5)
    ran: list[str] = []
    dispatch(lambda: ran.append("before"))
    assert tk_app.run_until(lambda: ran == ["before"])
    dispatch(lambda: ran.append("queued when destroyed"))
    frame.destroy()
    dispatch(lambda: ran.append("handed over after"))
    tk_app.run_for(0.05)  # ten intervals
    assert ran == ["before"]
    assert tk_app.timers() <= timers_before, "the pump's timer is still set"
    assert tk_app.errors == []  # no Tcl error such as "invalid command name"


def test_destroying_the_root_mid_stream_stops_the_pump_and_close_still_returns(
    display: str, sse_server: SSEServer
) -> None:
    sse_server.route("/flood", endless_stream)
    app = TkApp()
    seen: list[str] = []
    source = fast(sse_server.url_for("/flood"), dispatcher=dispatchers.tk(app.root))
    source.on("message", lambda event: seen.append(event.data))
    source.start()
    assert app.run_until(lambda: len(seen) >= 5)
    app.root.destroy()  # the window is gone, the source still reads
    with hang_guard(CLOSE_BOUND, "close() after the root was destroyed"):
        source.close()
    assert not reader_threads()
    assert app.errors == []


def test_a_destroyed_root_holds_no_calls(tk_app: TkApp) -> None:
    # Once the window is gone nothing can run the calls, so none is kept: a
    # source still reading must not pile its events up behind a dead window.
    dispatch = dispatchers.tk(tk_app.root)
    queued, late = Call(), Call()
    dispatch(queued)
    tk_app.root.destroy()
    dispatch(late)
    alive = [weakref.ref(queued), weakref.ref(late)]
    del queued, late
    gc.collect()
    assert [ref() for ref in alive] == [None, None]


def test_calls_queued_by_a_call_wait_for_the_next_tick(tk_app: TkApp) -> None:
    # A tick runs what was queued when it began, no more: in a flood, Tk gets
    # its own events (input, redraws, timers) between ticks. Ticks are at
    # least 1 ms apart, so by the 30 ms timer far fewer than 500 have run.
    dispatch = dispatchers.tk(tk_app.root, interval_ms=1)
    chain: list[int] = []
    timer_fired: list[int] = []

    def again() -> None:
        chain.append(len(chain))
        if len(chain) < 500:
            dispatch(again)

    dispatch(again)
    tk_app.root.after(30, lambda: timer_fired.append(len(chain)))
    assert tk_app.run_until(lambda: len(chain) == 500 and bool(timer_fired))
    assert 0 < timer_fired[0] < 500, "one tick ran the calls queued during it"
    assert tk_app.errors == []


def test_a_widget_whose_destroy_binding_was_replaced_still_stops_cleanly(
    tk_app: TkApp,
) -> None:
    # bind() without add="+" replaces every <Destroy> binding, ours too.
    frame = tkinter.Frame(tk_app.root)
    timers_before = tk_app.timers()
    dispatch = dispatchers.tk(frame, interval_ms=5)
    frame.bind("<Destroy>", lambda event: None)
    ran: list[str] = []
    dispatch(lambda: ran.append("before"))
    assert tk_app.run_until(lambda: ran == ["before"])
    frame.destroy()
    dispatch(lambda: ran.append("after"))
    tk_app.run_for(0.05)
    assert ran == ["before"]
    assert tk_app.timers() <= timers_before
    assert tk_app.errors == []  # no "invalid command name" from a timer set on the frame


def test_a_call_that_raises_is_reported_by_tk_and_the_next_calls_still_run(
    tk_app: TkApp,
) -> None:
    dispatch = dispatchers.tk(tk_app.root, interval_ms=5)
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("boom")

    dispatch(functools.partial(ran.append, 1))
    dispatch(fail)
    dispatch(functools.partial(ran.append, 3))
    assert tk_app.run_until(lambda: ran == [1, 3], stop_on_error=False)
    assert [type(error) for error in tk_app.errors] == [ValueError]


def test_a_call_running_a_nested_event_loop_holds_the_later_calls(tk_app: TkApp) -> None:
    # A handler that opens a modal dialog runs Tk's event loop inside it; the
    # pump keeps ticking there, but calls still run one at a time, in order.
    dispatch = dispatchers.tk(tk_app.root, interval_ms=2)
    ran: list[str] = []
    dialog_closed = tkinter.BooleanVar(tk_app.root)

    def modal() -> None:
        ran.append("modal opened")
        tk_app.root.after(40, dialog_closed.set, True)  # twenty pump intervals
        tk_app.root.wait_variable(dialog_closed)
        ran.append("modal closed")

    dispatch(modal)
    dispatch(lambda: ran.append("next"))
    assert tk_app.run_until(lambda: len(ran) == 3)
    assert ran == ["modal opened", "modal closed", "next"]


def test_interval_must_be_positive(tk_app: TkApp) -> None:
    with pytest.raises(ValueError, match="interval_ms"):
        dispatchers.tk(tk_app.root, interval_ms=0)


def test_the_guide_example_closes_its_stream_with_its_window(
    display: str, sse_server: SSEServer
) -> None:
    example = load_example("tk_window.py")
    sse_server.route(
        "/stream", SSEServer.events([{"data": "41"}, {"data": "42"}], then="stall")
    )
    app = TkApp(example.open_window(sse_server.url_for("/stream")))
    (label,) = app.root.winfo_children()
    assert app.run_until(lambda: label.cget("text") == "42")
    assert reader_threads()
    # What the window manager does when the user closes the window.
    with hang_guard(CLOSE_BOUND, "closing the window"):
        app.root.tk.call(app.root.protocol("WM_DELETE_WINDOW"))
    assert settle(lambda: not reader_threads())
    assert app.errors == []
    with pytest.raises(tkinter.TclError):
        app.root.winfo_exists()  # destroyed


def test_hang_guard_interrupts_a_deadlocked_join() -> None:
    # The guard itself must work, or the flood test could hang instead of
    # failing: a join that would never end is interrupted.
    gate = threading.Event()
    stuck = threading.Thread(target=gate.wait, name="stuck", daemon=True)
    stuck.start()
    with pytest.raises(Hung), hang_guard(0.2, "join"):
        stuck.join()
    gate.set()
    stuck.join(WAIT)
