"""Ready dispatchers that run a source's calls on a GUI toolkit's thread.

A source started with ``dispatcher=`` does not call its handlers itself: from
its reader thread it hands each call, as a function of no arguments, to the
dispatcher and reads on. A GUI may be touched from its own thread only, so a
GUI dispatcher moves those calls there. It must do so without ever waiting
for the GUI thread: the GUI thread is usually the one that calls
``source.close()``, and ``close()`` waits for the reader thread to end. A
dispatcher that holds the reader until the GUI thread has taken the call
deadlocks the first time the two meet — and with a fast stream they meet.

So both dispatchers here work the same way. The reader thread only appends
the call to a Python deque, which never blocks and touches no toolkit object;
the GUI thread takes the calls out and runs them, oldest first. Nothing is
dropped while the GUI lives, nothing is reordered, and no thread is created.

Tk. Tkinter lets other threads call Tk, but makes them wait until the Tk
thread has carried the call out — exactly the wait above, so even
``widget.after(0, fn)`` from the reader thread can deadlock ``close()``. The
reader therefore never calls Tk at all: the Tk thread polls the deque with
``after`` every ``interval_ms`` and runs what it finds there.

Qt. Qt can post a call to an object's thread from any thread without
waiting, so the GUI thread is woken by a queued invocation of a slot of a
``QObject`` that lives in it. Only one wake-up is in flight at a time: the
reader posts one when the deque was idle, and each wake-up runs everything
queued by then. That keeps the calls into Qt down to one per batch of events
instead of one per event, and the one call used is
``QMetaObject.invokeMethod`` by slot name. Not ``Signal.emit`` nor
``QTimer.singleShot``, nor ``QCoreApplication.postEvent``: with PySide6 6.12
on Python 3.11, each of those drops a reference to ``True`` or ``None`` per
call, and the interpreter aborts after a few thousand calls
(``bool_dealloc``/``none_dealloc``); ``invokeMethod`` by name does not.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:  # the toolkits are imported only when a dispatcher is made
    import tkinter

__all__ = ["Call", "Dispatcher", "qt", "tk"]

log = logging.getLogger("ssesync")

Call = Callable[[], object]
"""A call a source hands to its dispatcher: a function of no arguments."""

Dispatcher = Callable[[Call], None]
"""What ``EventSource(url, dispatcher=...)`` takes: given a call, run it somewhere."""


# -- Tk ------------------------------------------------------------------------


def tk(widget: tkinter.Misc, interval_ms: int = 20) -> Dispatcher:
    """A dispatcher that runs each call on the Tk thread, in order.

    Calls are queued and the Tk thread runs them every ``interval_ms``
    milliseconds, from Tk's event loop (``mainloop()``); the reader thread
    never calls Tk, so ``close()`` from the Tk thread never waits for it.
    Make the dispatcher on the Tk thread — the thread that created the
    ``Tk()`` root — typically right before the source.

    It runs whatever it is given, in order, one call at a time. Calls still
    queued when the source closes run too; those that deliver events find
    the source closed and call no handler. When ``widget`` is
    destroyed the dispatcher stops: calls still queued then, and any handed
    to it later, are dropped unrun. So close the source first (``close()``
    returns once the reader thread has ended), then destroy the window. A
    call that raises is reported by Tk as any callback error is
    (``report_callback_exception``); the calls after it still run.

    :param widget: any widget of the application; its lifetime bounds the
        dispatcher's.
    :param interval_ms: how often the queue is drained, in ms. Each call
        waits up to this long, and an idle application wakes this often.
    """
    import tkinter

    if interval_ms < 1:
        raise ValueError(f"interval_ms must be at least 1, not {interval_ms!r}")
    return _TkPump(widget, int(interval_ms), tkinter.TclError)


class _TkPump:
    """The Tk dispatcher: a deque the reader appends to and the Tk thread drains."""

    def __init__(
        self, widget: tkinter.Misc, interval_ms: int, tcl_error: type[Exception]
    ) -> None:
        self._calls: deque[Call] = deque()
        self._widget = widget
        # The timer is set on the root window, not on the widget: destroying
        # a widget deletes the Tcl commands registered on it, and a timer
        # whose command is gone fires a Tcl error ("invalid command name").
        self._root = widget.nametowidget(".")
        self._interval = interval_ms
        self._tcl_error = tcl_error
        self._stopped = False
        self._running = False  # whether a tick is running calls
        # Stop the moment the widget is destroyed: once the root is gone no
        # tick would ever run again to notice, and the reader would go on
        # queueing calls that can never run.
        widget.bind("<Destroy>", self._on_destroy, add="+")
        self._timer: str | None = self._root.after(interval_ms, self._tick)

    def __call__(self, call: Call) -> None:
        # The reader thread's side: no Tk, no lock, nothing that can wait.
        if not self._stopped:
            self._calls.append(call)

    def _tick(self) -> None:
        if not self._alive():  # destroyed, and <Destroy> was unbound
            self._stop()
            return
        # Set the next tick before running anything, so that a call that
        # raises (Tk reports it and ends this tick) does not stop the pump;
        # the calls after it stay queued for the next tick.
        self._timer = self._root.after(self._interval, self._tick)
        if self._running:
            return  # a call is running a nested event loop (a modal dialog)
        self._running = True
        try:
            calls = self._calls
            # Only what is queued now: in a flood the reader appends as fast
            # as this loop pops, and Tk must get its own events in between.
            for _ in range(len(calls)):
                calls.popleft()()
                if self._stopped:  # the call destroyed the widget
                    return
        finally:
            self._running = False

    def _on_destroy(self, event: tkinter.Event[tkinter.Misc]) -> None:
        # A toplevel also sees the <Destroy> of each widget inside it.
        if str(event.widget) == str(self._widget):
            self._stop()

    def _alive(self) -> bool:
        try:
            return bool(self._widget.winfo_exists())
        except self._tcl_error:  # the application itself was destroyed
            return False

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        timer, self._timer = self._timer, None
        if timer is not None:
            try:
                self._root.after_cancel(timer)
            except self._tcl_error:
                pass
        dropped = len(self._calls)
        self._calls.clear()
        if dropped:
            log.debug("the Tk widget was destroyed; %d queued calls dropped", dropped)


# -- Qt ------------------------------------------------------------------------


def qt() -> Dispatcher:
    """A dispatcher that runs each call on the Qt application's thread, in order.

    Calls are queued and run by the Qt event loop (``app.exec()``) of the
    thread the ``QApplication`` lives in; the reader thread only posts a
    wake-up, which never waits, so ``close()`` from the GUI thread never
    waits for it. Call it on the GUI thread, after the ``QApplication`` (or
    ``QCoreApplication``) has been created. It uses PySide6, or PyQt6 when
    only that is installed (or already imported).

    It runs whatever it is given, in order, one call at a time. Calls still
    queued when the source closes run too; those that deliver events find
    the source closed and call no handler. Calls still queued when the
    event loop ends are not run. A call that raises is reported with
    :func:`sys.excepthook` (a traceback on stderr by default); the calls
    after it still run.

    :raises RuntimeError: when there is no application yet, or when called
        on another thread than the application's.
    :raises ImportError: when neither PySide6 nor PyQt6 is installed.
    """
    qtcore = _qt_core()
    app = qtcore.QCoreApplication.instance()
    if app is None:
        raise RuntimeError("create the QApplication before ssesync.dispatchers.qt()")
    if qtcore.QThread.currentThread() != app.thread():
        raise RuntimeError("call ssesync.dispatchers.qt() on the Qt application's thread")
    return _QtPoster(qtcore, app)


def _qt_core() -> Any:
    """The QtCore module of the binding in use: PySide6 first, then PyQt6."""
    for name in ("PySide6.QtCore", "PyQt6.QtCore"):
        if name in sys.modules:  # the application already chose its binding
            return sys.modules[name]
    for name in ("PySide6.QtCore", "PyQt6.QtCore"):
        try:
            return importlib.import_module(name)
        except ImportError:
            pass
    raise ImportError("ssesync.dispatchers.qt() needs PySide6 or PyQt6")


class _QtPoster:
    """The Qt dispatcher: a deque the reader appends to, drained on the GUI thread."""

    def __init__(self, qtcore: Any, app: Any) -> None:
        self._lock = threading.Lock()  # held for deque and flag updates only
        self._calls: deque[Call] = deque()
        self._posted = False  # whether a wake-up is on its way to the GUI thread
        self._draining = False  # whether the GUI thread is running calls
        self._skipped = False  # whether a wake-up came while it was
        # Parented to the application, the receiver lives in its thread and
        # is deleted there, with it; it holds the dispatcher weakly, so a
        # dispatcher nobody uses any more can go away.
        self._receiver = _receiver_type(qtcore)(app, weakref.ref(self))
        invoke = qtcore.QMetaObject.invokeMethod
        queued = qtcore.Qt.ConnectionType.QueuedConnection
        receiver = self._receiver

        def wake() -> None:
            invoke(receiver, "drain", queued)

        self._wake = wake

    def __call__(self, call: Call) -> None:
        # The reader thread's side: the lock is never held while code runs.
        with self._lock:
            self._calls.append(call)
            if self._posted:
                return
            self._posted = True
        self._wake()

    def _drain(self) -> None:
        """Run the calls queued so far (on the GUI thread, from the receiver's slot)."""
        with self._lock:
            if self._draining:
                # A call of the drain below runs a nested event loop (a modal
                # dialog). Calls run one at a time, so this one waits: the
                # flag stays set, so the reader posts no more wake-ups, and
                # the outer drain posts one when it ends.
                self._skipped = True
                return
            self._posted = False
            calls, self._calls = self._calls, deque()
            self._draining = True
        try:
            while calls:
                call = calls.popleft()
                try:
                    call()
                except Exception:
                    sys.excepthook(*sys.exc_info())
                except BaseException:
                    # KeyboardInterrupt and the like end this drain; the calls
                    # not run yet go back ahead of the newer ones.
                    with self._lock:
                        calls.extend(self._calls)
                        self._calls = calls
                        self._skipped = True
                    raise
        finally:
            with self._lock:
                self._draining = False
                repost = False
                if self._skipped:
                    self._skipped = False
                    repost = self._posted = bool(self._calls)
            if repost:
                self._wake()


_RECEIVER_TYPES: dict[str, type[Any]] = {}


def _receiver_type(qtcore: Any) -> type[Any]:
    """The ``QObject`` subclass whose slot drains a dispatcher, for this binding."""
    cls = _RECEIVER_TYPES.get(qtcore.__name__)
    if cls is None:
        # PySide6's Slot, PyQt6's pyqtSlot: it makes drain() callable by name.
        slot: Callable[[], Callable[[Callable[[Any], None]], Callable[[Any], None]]]
        slot = getattr(qtcore, "Slot", None) or qtcore.pyqtSlot

        class _Receiver(qtcore.QObject):  # type: ignore[misc]
            def __init__(self, parent: Any, poster: weakref.ref[_QtPoster]) -> None:
                super().__init__(parent)
                self._poster = poster

            @slot()
            def drain(self) -> None:
                poster = self._poster()
                if poster is not None:
                    poster._drain()

        cls = _RECEIVER_TYPES[qtcore.__name__] = _Receiver
    return cls
