"""Handlers and hooks: who hears about what, in which order, and what if they fail.

Each event type has a blinker signal in the source's own namespace, and
``on(type, handler)`` connects the handler to it, strongly (a lambda must
keep working). blinker keeps a signal's receivers in a set, though, and a
browser calls listeners in the order they were added; so the registry also
keeps, per type, a tuple of the handlers in registration order, and that is
what dispatch reads. ``on()`` and ``off()`` replace the tuple under a lock
(copy on write) and never touch one being iterated, so they are safe from any
thread while events flow, and a handler registered before an event was
parsed receives it: dispatch reads the dict entry afresh for each read, and
the plain-message fast path also whenever :attr:`HandlerRegistry.changed` is
set. There is no lazily filled cache to go stale.

Failures are never silent. A handler or hook that raises is logged on the
``ssesync`` logger and reported to the ``on_error`` hooks; with no
``on_error`` hook, a handler's exception and a started source's fatal error
are reported like an uncaught exception in a thread
(:func:`threading.excepthook`: a traceback on stderr by default). A hook with
the wrong signature is refused when it is registered, with the expected one.

The registry refers to its source weakly: the read loop holds the registry,
and must not keep a source alive that nobody else refers to.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
import threading
import types
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import blinker

from ._event import Event

if TYPE_CHECKING:
    from ._source import EventSource

__all__ = ["Handler", "HandlerRegistry"]

log = logging.getLogger("ssesync")

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[[Event], Any]

#: How each kind of hook is called, for the message that refuses a wrong one.
_SIGNATURES = {
    "on": ("handler(event)", 1),
    "open": ("hook(source)", 1),
    "error": ("hook(source, exc)", 2),
    "comment": ("hook(source, text)", 2),
    "close": ("hook(source)", 1),
}


def check_signature(function: Callable[..., Any], kind: str) -> None:
    """Refuse ``function`` if it cannot be called the way ``kind`` is called."""
    if not callable(function):
        raise TypeError(f"{kind} hooks must be callable, not {type(function).__name__}")
    expected, count = _SIGNATURES[kind]
    if _plainly_accepts(function, count):
        return
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin or an extension type: nothing to check it against
    try:
        signature.bind(*range(count))
    except TypeError:
        name = getattr(function, "__qualname__", type(function).__name__)
        what = "handlers" if kind == "on" else f"on_{kind} hooks"
        raise TypeError(
            f"{what} are called as {expected}; {name}{signature} does not accept that"
        ) from None


def _plainly_accepts(function: Callable[..., Any], count: int) -> bool:
    """Whether a plain function takes ``count`` positional arguments, read off its code.

    What ``inspect.signature(function).bind(*range(count))`` decides, at a
    fiftieth of its cost (a hub registers handlers on thousands of sources),
    for the common case only: a plain function or lambda that no decorator
    has given a ``__wrapped__`` or ``__signature__``. ``False`` means "ask
    inspect", not "refused".
    """
    if type(function) is not types.FunctionType:
        return False
    if "__wrapped__" in function.__dict__ or "__signature__" in function.__dict__:
        return False
    code = function.__code__
    positional = code.co_argcount
    required = positional - len(function.__defaults__ or ())
    keyword_only = code.co_varnames[positional : positional + code.co_kwonlyargcount]
    defaults = function.__kwdefaults__ or {}
    if any(name not in defaults for name in keyword_only):
        return False  # a keyword-only argument without a default
    takes_more = positional >= count or bool(code.co_flags & inspect.CO_VARARGS)
    return required <= count and takes_more


def report_uncaught(exc: BaseException) -> None:
    """Report ``exc`` as :func:`threading.excepthook` reports an uncaught exception."""
    args = threading.ExceptHookArgs(
        [type(exc), exc, exc.__traceback__, threading.current_thread()]
    )
    try:
        threading.excepthook(args)
    except Exception:  # a broken excepthook: fall back to the interpreter's
        sys.excepthook(type(exc), exc, exc.__traceback__)


class HandlerRegistry:
    """The handlers per event type and the lifecycle hooks of one source."""

    __slots__ = (
        "__weakref__",
        "_lock",
        "_signals",
        "_source",
        "by_type",
        "changed",
        "close_hooks",
        "comment_hooks",
        "error_hooks",
        "open_hooks",
        "running",
    )

    def __init__(self, source: EventSource) -> None:
        self._source = weakref.ref(source)
        self._lock = threading.Lock()
        self._signals = blinker.Namespace()
        #: Event type -> its handlers, in registration order (replaced, never changed).
        self.by_type: dict[str, tuple[Handler, ...]] = {}
        #: Set whenever a handler comes or goes; the fast path rereads then.
        self.changed = False
        self.open_hooks: tuple[Callable[..., Any], ...] = ()
        self.error_hooks: tuple[Callable[..., Any], ...] = ()
        self.comment_hooks: tuple[Callable[..., Any], ...] = ()
        self.close_hooks: tuple[Callable[..., Any], ...] = ()
        #: The type of the event whose handlers run now (for close()'s warning).
        self.running: Optional[str] = None

    @property
    def source(self) -> Optional[EventSource]:
        return self._source()

    # -- registering ---------------------------------------------------------------
    def on(self, type: str, handler: Optional[F] = None) -> Any:
        if handler is None:
            return functools.partial(self.on, type)
        if not isinstance(type, str):
            raise TypeError(f"an event type is a str, not {type.__class__.__name__}")
        check_signature(handler, "on")
        with self._lock:
            self._signals.signal(type).connect(handler, weak=False)
            current = self.by_type.get(type, ())
            if handler not in current:
                self.by_type[type] = (*current, handler)
            self.changed = True
        return handler

    def off(self, type: str, handler: Handler) -> None:
        with self._lock:
            self._signals.signal(type).disconnect(handler)
            current = self.by_type.get(type, ())
            remaining = tuple(h for h in current if h != handler)
            if remaining:
                self.by_type[type] = remaining
            else:
                self.by_type.pop(type, None)
            self.changed = True

    def add_hook(self, kind: str, hook: F) -> F:
        check_signature(hook, kind)
        with self._lock:
            name = f"{kind}_hooks"
            setattr(self, name, (*getattr(self, name), hook))
        return hook

    # -- calling -------------------------------------------------------------------
    def handler_failed(self, type_: str, exc: Exception) -> None:
        log.error("a handler for %r events raised", type_, exc_info=exc)
        self.report_error(exc, uncaught=True)

    def call_hooks(self, hooks: tuple[Callable[..., Any], ...], *args: Any) -> None:
        """Call each hook with the source and ``args``; a failing hook is reported."""
        if not hooks:
            return
        source = self._source()
        if source is None:
            return  # nobody refers to the source any more: nobody to tell
        for hook in hooks:
            try:
                hook(source, *args)
            except Exception as exc:
                log.exception("an ssesync hook raised")
                if hooks is not self.error_hooks:
                    self.report_error(exc, uncaught=True)
                else:
                    # Not back to the on_error hooks (they fail), but never
                    # silent: with the error it was given as its context.
                    given = args[0] if args and isinstance(args[0], BaseException) else None
                    if exc.__context__ is None and given is not exc:
                        exc.__context__ = given
                    report_uncaught(exc)

    def report_error(self, exc: BaseException, *, uncaught: bool) -> None:
        """Tell the ``on_error`` hooks; with none, report an ``uncaught`` one anyway.

        ``uncaught``: a handler's or hook's exception, or the fatal error of a
        started source (an iterator raises its fatal error to its caller).
        """
        if self.error_hooks:
            self.call_hooks(self.error_hooks, exc)
        elif uncaught:
            report_uncaught(exc)
