"""Handlers and hooks (``ssesync._handlers``): order, races, signatures.

Handlers of one type run in registration order; ``on()`` from another thread
is never lost, even in the middle of a lookup; a hook with the wrong
signature is refused when registered, with the expected one.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any, Callable

import blinker
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ssesync import EventSource
from ssesync._handlers import _plainly_accepts, check_signature
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, Collector, events_then_stall, fast

#: Every test here runs with a thread per source, and again on a hub.
pytestmark = pytest.mark.usefixtures("started_by")


def test_handlers_of_a_type_run_in_registration_order(sse_server: SSEServer) -> None:
    sse_server.route("/s", events_then_stall("x"))
    calls = Collector()
    source = fast(sse_server.url_for("/s"))
    for number in range(40):
        source.on("message", lambda event, n=number: calls(n))
    with source:
        source.start()
        assert calls.wait_for(40) == list(range(40))


def test_on_during_the_handler_lookup_is_not_lost(
    sse_server: SSEServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The handler cache was filled from blinker and stored afterwards: an
    # on() from another thread in between was lost while events flowed.
    # Force that interleaving: hold the reader inside blinker's lookup (if
    # the source still looks handlers up there) while another thread calls on().
    inside, resume = threading.Event(), threading.Event()
    lookup = blinker.Signal.receivers_for

    def held(self: blinker.Signal, sender: Any) -> Any:
        receivers = list(lookup(self, sender))
        if not inside.is_set():
            inside.set()
            resume.wait(WAIT)
        return iter(receivers)

    monkeypatch.setattr(blinker.Signal, "receivers_for", held)
    gate = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("first")
        gate.wait(WAIT)
        for n in range(5):
            conn.event(f"later {n}")
        conn.stall()

    sse_server.route("/s", handler)
    first, second = Collector(), Collector()
    source = fast(sse_server.url_for("/s"))
    source.on("message", first)
    with source:
        source.start()
        inside.wait(2)  # the old code stops here; a lookup-free one never does
        source.on("message", second)
        resume.set()
        first.wait_for(1)
        gate.set()
        assert [e.data for e in first.wait_for(6)][1:] == [f"later {n}" for n in range(5)]
        assert [e.data for e in second.wait_for(5)] == [f"later {n}" for n in range(5)]


@pytest.mark.parametrize(
    ("register", "expected"),
    [
        (lambda s: s.on_error(lambda exc: None), r"hook\(source, exc\)"),
        (lambda s: s.on_open(lambda: None), r"hook\(source\)"),
        (lambda s: s.on_comment(lambda text: None), r"hook\(source, text\)"),
        (lambda s: s.on_close(lambda a, b: None), r"hook\(source\)"),
        (lambda s: s.on("message", lambda: None), r"handler\(event\)"),
    ],
    ids=["on_error", "on_open", "on_comment", "on_close", "on"],
)
def test_a_hook_with_the_wrong_signature_is_refused_with_the_expected_one(
    register: Callable[[EventSource], Any], expected: str
) -> None:
    # The one-argument on_error(lambda exc: ...) other libraries use used to
    # raise TypeError inside the hook, where nobody saw it.
    source = EventSource("http://127.0.0.1:9/")
    with pytest.raises(TypeError, match=expected):
        register(source)


def test_hooks_with_defaults_and_varargs_are_accepted() -> None:
    source = EventSource("http://127.0.0.1:9/")
    source.on_error(lambda *args: None)
    source.on_error(lambda src, exc, extra=None: None)
    source.on("message", print)  # a builtin: no signature to check
    source.on_open(Collector())


@given(
    positional=st.integers(0, 3),
    defaults=st.integers(0, 3),
    varargs=st.booleans(),
    keyword_only=st.integers(0, 2),
    keyword_defaults=st.integers(0, 2),
    varkw=st.booleans(),
    slash=st.booleans(),
    count=st.integers(1, 2),
)
def test_the_quick_signature_check_agrees_with_inspect(
    positional: int,
    defaults: int,
    varargs: bool,
    keyword_only: int,
    keyword_defaults: int,
    varkw: bool,
    slash: bool,
    count: int,
) -> None:
    # check_signature reads plain functions off their code object (a hub
    # registers handlers on thousands of sources); it must accept exactly
    # what inspect's bind accepts, and leave everything else to inspect.
    names = [f"p{k}" for k in range(positional)]
    params = [n if k < positional - min(defaults, positional) else f"{n}=0"
              for k, n in enumerate(names)]  # fmt: skip
    if slash and params:
        params.append("/")
    if varargs:
        params.append("*args")
    elif keyword_only:
        params.append("*")
    params += [f"k{k}" if k >= keyword_defaults else f"k{k}=0" for k in range(keyword_only)]
    if varkw:
        params.append("**kw")
    function = eval(f"lambda {', '.join(params)}: None")  # a generated signature
    try:
        inspect.signature(function).bind(*range(count))
        binds = True
    except TypeError:
        binds = False
    assert not _plainly_accepts(function, count) or binds
    try:
        check_signature(function, "on" if count == 1 else "error")
        accepted = True
    except TypeError:
        accepted = False
    assert accepted == binds


def test_decorated_functions_are_checked_by_their_wrapped_signature() -> None:
    def handler(event: Any) -> None:
        pass

    @functools.wraps(handler)
    def wrapper(*args: Any) -> None:
        pass

    @functools.wraps(lambda: None)
    def refused(*args: Any) -> None:
        pass

    source = EventSource("http://127.0.0.1:9/")
    source.on("message", wrapper)
    with pytest.raises(TypeError, match=r"handler\(event\)"):
        source.on("message", refused)


def test_a_keyword_only_argument_without_its_own_default_is_refused() -> None:
    # Counting defaults is not enough: __kwdefaults__ may name other arguments.
    def handler(event: Any, *, needed: Any) -> None:
        pass

    handler.__kwdefaults__ = {"unrelated": 1}
    with pytest.raises(TypeError, match=r"handler\(event\)"):
        EventSource("http://127.0.0.1:9/").on("message", handler)
