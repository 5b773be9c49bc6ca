"""Where a source's events and lifecycle news go: the three sinks.

- :class:`IterationSink`: ``for event in source``. Events are yielded by the
  driver; the hooks run in the iterating thread, and the error a source ends
  with is raised by the iterator rather than reported as uncaught.
- :class:`CallbackSink`: ``start()`` (and the hub). Each event goes to the
  handlers of its type, on the reading thread, in registration order.
- :class:`QueueSink`: ``source.stream(idle=...)``. A reading thread puts
  events and comments into a queue, which the caller's iterator takes them
  from with a timeout, so it can wake while the upstream is silent.
- :class:`DispatcherSink`: ``dispatcher=``. Each event, and each hook call,
  is handed to the application's dispatcher as a zero-argument function, in
  stream order, to run where the application wants (a GUI thread).

The callback path is the hot path of callback mode, so it reads the handler
tuples straight from the registry (see ``_handlers`` for why that is safe
from any thread) and has a path of its own for reads of plain messages.
"""

from __future__ import annotations

import functools
import queue
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from ._event import Comment, Event
from ._handlers import HandlerRegistry
from .exceptions import SSEError

if TYPE_CHECKING:
    from ._loop import Item, ReadLoop

__all__ = ["CallbackSink", "DispatcherSink", "IterationSink", "QueueSink"]

Dispatcher = Callable[[Callable[[], None]], Any]


class IterationSink:
    """The hooks of an iterated source, run in the iterating thread."""

    __slots__ = ("registry",)

    def __init__(self, registry: HandlerRegistry) -> None:
        self.registry = registry

    def opened(self) -> None:
        self.registry.call_hooks(self.registry.open_hooks)

    def comment(self, text: str) -> None:
        self.registry.call_hooks(self.registry.comment_hooks, text)

    def error(self, exc: SSEError, fatal: bool) -> None:
        self.registry.report_error(exc, uncaught=False)  # a fatal one: the iterator raises it

    def closed(self) -> None:
        self.registry.call_hooks(self.registry.close_hooks)


class CallbackSink(IterationSink):
    """Handlers per event type, called on the thread that reads."""

    __slots__ = ("loop",)

    def __init__(self, registry: HandlerRegistry, loop: ReadLoop) -> None:
        super().__init__(registry)
        self.loop = loop

    def error(self, exc: SSEError, fatal: bool) -> None:
        self.registry.report_error(exc, uncaught=fatal)

    def deliver(self, items: list[Item], plain: bool) -> None:
        """Dispatch a read's items: events to their handlers, comments to the hooks."""
        if plain:
            self._deliver_messages(items)  # type: ignore[arg-type]
            return
        registry, loop = self.registry, self.loop
        by_type = registry.by_type
        for item in items:
            if loop.closing:
                break
            if item.__class__ is not Event:
                registry.call_hooks(registry.comment_hooks, item)
                continue
            loop.last_event_id = item.last_event_id
            type_ = item.type
            handlers = by_type.get(type_)
            if handlers:
                registry.running = type_
                for handler in handlers:
                    try:
                        handler(item)
                    except Exception as exc:
                        registry.handler_failed(type_, exc)
        registry.running = None
        parser = loop.parser
        if parser is not None and not loop.closing:
            loop.last_event_id = parser.last_event_id

    def dispatch(self, event: Event) -> None:
        """Call the handlers of one event (what :meth:`deliver` does per event)."""
        registry = self.registry
        type_ = event.type
        handlers = registry.by_type.get(type_)
        if handlers:
            registry.running = type_
            for handler in handlers:
                try:
                    handler(event)
                except Exception as exc:
                    registry.handler_failed(type_, exc)
            registry.running = None

    def _deliver_messages(self, events: list[Event]) -> None:
        """Dispatch a read's worth of id-less ``message`` events.

        At high rates this is the whole callback path, so per event it checks
        one flag, ``registry.changed``, instead of ``loop.closing`` and the
        handler tuple: ``on()``/``off()`` set it after changing the handlers,
        and ``close()`` after setting ``closing``. It is cleared *before* both
        are read again, so a change made meanwhile sets it anew and is seen at
        the next event.
        """
        registry, loop = self.registry, self.loop
        handlers: tuple[Callable[[Event], Any], ...] = ()
        handler: Optional[Callable[[Event], Any]] = None
        registry.changed = True
        registry.running = "message"
        for event in events:
            if registry.changed:
                registry.changed = False
                if loop.closing:
                    break
                handlers = registry.by_type.get("message", ())
                handler = handlers[0] if len(handlers) == 1 else None
            if handler is not None:
                try:
                    handler(event)
                except Exception as exc:
                    registry.handler_failed("message", exc)
            else:
                for each in handlers:
                    try:
                        each(event)
                    except Exception as exc:
                        registry.handler_failed("message", exc)
        registry.running = None


class DispatcherSink(CallbackSink):
    """Everything through the application's dispatcher, in stream order.

    The dispatcher must not wait for the thread it hands work to: ``close()``
    on that thread waits for the reader, and the two would wait for each
    other (``ssesync.dispatchers`` has ready ones for Tk and Qt).
    """

    __slots__ = ("_calls", "_running", "dispatcher")

    def __init__(self, registry: HandlerRegistry, loop: ReadLoop, dispatcher: Dispatcher) -> None:
        super().__init__(registry, loop)
        self.dispatcher = dispatcher
        # The threads running a handed-over event or hook now, so that
        # close() can wait for them as it waits for the reader's handlers.
        self._calls = threading.Condition()
        self._running: list[int] = []

    def _hand(self, function: Callable[..., None], *args: Any) -> None:
        self.dispatcher(functools.partial(function, *args))

    def opened(self) -> None:
        self._hand(self._unless_closed, super().opened)

    def comment(self, text: str) -> None:
        self._hand(self._unless_closed, super().comment, text)

    def error(self, exc: SSEError, fatal: bool) -> None:
        # Hooks may run after close() began: the error that ended the
        # source is still news to the application.
        self._hand(super().error, exc, fatal)

    def closed(self) -> None:
        self._hand(super().closed)

    def deliver(self, items: list[Item], plain: bool) -> None:
        for item in items:
            if item.__class__ is Event:
                self._hand(self._event, item)
            else:
                self.comment(item)  # type: ignore[arg-type]
        parser = self.loop.parser
        if parser is not None:
            self.loop.last_event_id = parser.last_event_id

    def _unless_closed(self, function: Callable[..., None], *args: Any) -> None:
        calls, me = self._calls, threading.get_ident()
        with calls:
            if self.loop.closing:
                return
            self._running.append(me)
        try:
            function(*args)
        finally:
            with calls:
                self._running.remove(me)
                calls.notify_all()

    def _event(self, event: Event) -> None:
        self._unless_closed(self.dispatch, event)

    def runs_here(self) -> bool:
        """Whether the calling thread is running a handed-over call."""
        with self._calls:
            return threading.get_ident() in self._running

    def settled(self, timeout: Optional[float]) -> bool:
        """Wait until no handed-over call runs; ``False`` if one still runs after ``timeout``."""
        with self._calls:
            return self._calls.wait_for(lambda: not self._running, timeout)


#: Put into a QueueSink's queue when the source is over.
END = object()


class QueueSink(IterationSink):
    """Events and comments into a bounded queue, for an iterator on another thread.

    The queue is bounded, so a consumer slower than the stream holds the
    reader back (as a slow handler does) instead of letting events pile up;
    a put waits at most :data:`POLL` seconds at a time, so ``close()`` is
    noticed even while the queue is full. The end of the source waits for
    room like an event: only ``close()`` (the iterator left) drops items.
    """

    __slots__ = ("loop", "queue")

    POLL = 0.1

    def __init__(self, registry: HandlerRegistry, loop: ReadLoop, size: int = 1024) -> None:
        super().__init__(registry)
        self.loop = loop
        self.queue: queue.Queue[object] = queue.Queue(size)

    def comment(self, text: str) -> None:
        super().comment(text)
        self._put(Comment(text))

    def deliver(self, items: list[Item], plain: bool) -> None:
        loop = self.loop
        for item in items:
            if loop.close_called:
                return  # the iterator left: what is left of this read goes nowhere
            if item.__class__ is Event:
                loop.last_event_id = item.last_event_id
                self._put(item)
            else:
                self.comment(item)  # type: ignore[arg-type]
        parser = loop.parser
        if parser is not None:
            loop.last_event_id = parser.last_event_id

    def end(self) -> None:
        """The source is over: the iterator stops once it has taken everything."""
        self._put(END)

    def _put(self, item: object) -> None:
        try:
            self.queue.put_nowait(item)
        except queue.Full:
            # Wait for room, a little at a time, until the iterator leaves:
            # then nobody takes from the queue any more.
            while not self.loop.close_called:
                try:
                    self.queue.put(item, timeout=self.POLL)
                    return
                except queue.Full:
                    pass
