"""Our pools' light queue of idle connections does what urllib3 asks of ``LifoQueue``."""

from __future__ import annotations

import queue
import threading
from typing import Any, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssesync._transport._connect import build_pool_manager
from ssesync._transport._pool_queue import LightQueue

BOUND = 10.0


def test_last_in_first_out_within_maxsize() -> None:
    q = LightQueue(2)
    q.put("a")
    q.put("b", block=False)
    with pytest.raises(queue.Full):
        q.put("c", block=False)
    assert q.qsize() == 2
    assert q.get(block=False) == "b"
    assert q.get() == "a"
    assert not q._nonempty.is_set()  # so a waiting get() waits instead of spinning
    with pytest.raises(queue.Empty):
        q.get(block=False)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(ValueError, match="non-negative"):
        q.get(timeout=-1)


def test_a_waiting_get_is_woken_by_a_put() -> None:
    q = LightQueue(2)
    barrier = threading.Barrier(3)
    got: list[Any] = []

    def take() -> None:
        barrier.wait(BOUND)
        try:
            got.append(q.get(timeout=BOUND))
        except queue.Empty:
            got.append("empty")

    takers = [threading.Thread(target=take) for _ in range(2)]
    for thread in takers:
        thread.start()
    barrier.wait(BOUND)
    q.put("one")
    q.put("two")
    for thread in takers:
        thread.join(BOUND)
    assert sorted(got) == ["one", "two"]


Operation = Union[tuple[str, int], tuple[str]]
OPERATIONS = st.lists(
    st.one_of(st.tuples(st.just("put"), st.integers(0, 9)), st.tuples(st.just("get"))),
    max_size=40,
)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(maxsize=st.integers(-1, 4), operations=OPERATIONS)
def test_non_blocking_use_matches_lifoqueue(maxsize: int, operations: list[Operation]) -> None:
    ours, theirs = LightQueue(maxsize), queue.LifoQueue(maxsize)

    def apply(q: Any, operation: Operation) -> object:
        try:
            if operation[0] == "put":
                q.put(operation[1], block=False)
                return None
            return q.get(block=False)
        except (queue.Full, queue.Empty) as exc:
            return type(exc)

    for operation in operations:
        assert apply(ours, operation) == apply(theirs, operation)
        assert ours.qsize() == theirs.qsize()


def test_our_pools_keep_their_idle_connections_in_it() -> None:
    manager = build_pool_manager()
    pool = manager.connection_from_url("http://127.0.0.1:9/")
    assert isinstance(pool.pool, LightQueue)
    assert pool.pool.qsize() == 1  # urllib3 fills it with one placeholder per slot
