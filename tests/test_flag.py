"""The loop's light flag behaves as ``threading.Event`` in every way the loop uses.

Each test runs on both, so a difference shows as one of the two failing.
Threads meet at barriers and every join has a bound: a hang fails.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Callable, Union

import pytest

from ssesync._flag import Flag

AnyFlag = Union[Flag, threading.Event]
KINDS: list[Callable[[], AnyFlag]] = [Flag, threading.Event]
BOUND = 10.0  # seconds a thread may take before the test fails instead of hanging


@pytest.fixture(params=KINDS, ids=["Flag", "Event"])
def flag(request: pytest.FixtureRequest) -> AnyFlag:
    made: AnyFlag = request.param()
    return made


@pytest.fixture
def fast_switching() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave between almost every bytecode
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def test_a_new_flag_is_clear_and_a_wait_times_out(flag: AnyFlag) -> None:
    assert not flag.is_set()
    assert flag.wait(0) is False
    assert flag.wait(-1) is False  # no wait at all, as for an Event
    assert flag.wait(0.01) is False


def test_set_and_clear(flag: AnyFlag) -> None:
    flag.set()
    flag.set()  # twice is fine
    assert flag.is_set()
    assert flag.wait() is True
    assert flag.wait(0) is True
    assert flag.wait(-1) is True
    flag.clear()
    flag.clear()
    assert not flag.is_set()
    assert flag.wait(0) is False
    flag.set()
    assert flag.wait(0) is True


def test_one_set_lets_every_waiter_through(flag: AnyFlag) -> None:
    waiters = 8
    barrier = threading.Barrier(waiters + 1)
    results: list[bool] = []

    def wait() -> None:
        barrier.wait(BOUND)
        results.append(flag.wait(BOUND))

    threads = [threading.Thread(target=wait) for _ in range(waiters)]
    for thread in threads:
        thread.start()
    barrier.wait(BOUND)
    flag.set()
    for thread in threads:
        thread.join(BOUND)
    assert not any(thread.is_alive() for thread in threads)
    assert results == [True] * waiters


def test_a_wait_with_a_huge_timeout_is_woken(flag: AnyFlag) -> None:
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def wait() -> None:
        barrier.wait(BOUND)
        results.append(flag.wait(threading.TIMEOUT_MAX))

    thread = threading.Thread(target=wait)
    thread.start()
    barrier.wait(BOUND)
    flag.set()
    thread.join(BOUND)
    assert results == [True]


@pytest.mark.usefixtures("fast_switching")
def test_set_and_clear_from_many_threads_at_once(flag: AnyFlag) -> None:
    """No error and a consistent flag after racing set() and clear().

    Under CPython's GIL no thread switch can fall between the check and the
    store inside ``set()`` (no eval-breaker point there), so the lock that
    orders them is not what this can catch; it catches a gate moved twice or
    left open by the interleaving of whole calls.
    """
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def churn(first: Callable[[], None], second: Callable[[], None]) -> None:
        try:
            barrier.wait(BOUND)
            for _ in range(1000):
                first()
                second()
                flag.wait(0)
        except BaseException as exc:  # e.g. a lock released twice
            errors.append(exc)

    pairs = [(flag.set, flag.clear), (flag.clear, flag.set)] * 2
    threads = [threading.Thread(target=churn, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    flag.set()  # still works both ways afterwards
    assert flag.wait(0) is True
    flag.clear()
    assert flag.wait(0) is False
