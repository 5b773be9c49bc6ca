"""The replay filter (``ssesync._dedupe``): replays are skipped, new information never.

Pure bookkeeping, so each rule of API.md section 4 is a few lines here; the
loopback tests of the same rules are in tests/test_source.py.
"""

from __future__ import annotations

import logging

import pytest

from ssesync import Event
from ssesync._dedupe import DEDUPE_WINDOW, KEPT_DATA, ReplayFilter, data_key


def test_the_same_id_and_data_is_a_replay() -> None:
    replay = ReplayFilter()
    assert not replay.is_replay("1", "a")
    assert replay.is_replay("1", "a")


def test_the_same_id_with_new_data_is_new_information() -> None:
    # A restarted server counting from 1 again, or a version id.
    replay = ReplayFilter()
    assert not replay.is_replay("1", "a")
    assert not replay.is_replay("1", "b")
    assert replay.is_replay("1", "b")
    # Compared with the data the id was last delivered with: a third version
    # that repeats the first is delivered (a duplicate, never a loss).
    assert not replay.is_replay("1", "a")


def test_an_id_less_event_is_a_replay_only_right_after_a_reconnect() -> None:
    replay = ReplayFilter()
    replay.reconnected()  # the first connection: nothing delivered yet
    assert not replay.is_replay(None, "state")
    assert not replay.is_replay(None, "state")  # a healthy stream repeats values
    replay.reconnected()
    assert replay.is_replay(None, "state")
    assert not replay.is_replay(None, "state")  # only the first event after it


def test_an_event_with_an_id_in_the_same_read_ends_the_check_after_a_reconnect() -> None:
    # The loop's inlined filter: an id-less event after an id event of the
    # same read is not the first after the reconnect.
    from ssesync._loop import ReadLoop

    replay = ReplayFilter()
    replay.is_replay(None, "state")
    replay.reconnected()
    items: list[object] = [Event("new", id="9"), Event("state")]
    kept = ReadLoop._without_replays(None, items, replay)  # type: ignore[arg-type]
    assert [e.data for e in kept] == ["new", "state"]  # type: ignore[attr-defined]
    replay.reconnected()
    kept = ReadLoop._without_replays(None, [Event("state"), Event("x", id="10")], replay)  # type: ignore[arg-type]
    assert [e.data for e in kept] == ["x"]  # type: ignore[attr-defined]


def test_an_event_with_an_id_ends_the_check_after_a_reconnect() -> None:
    replay = ReplayFilter()
    replay.is_replay(None, "x")
    replay.reconnected()
    assert not replay.is_replay("5", "y")
    assert not replay.is_replay(None, "y")


def test_long_data_is_remembered_by_length_and_hash_not_kept() -> None:
    long = "x" * (KEPT_DATA + 1)
    assert data_key(long) == (len(long), hash(long))
    assert data_key("short") == "short"
    replay = ReplayFilter()
    replay.is_replay("1", long)
    assert replay.is_replay("1", "x" * (KEPT_DATA + 1))
    assert not replay.is_replay("1", "x" * (KEPT_DATA + 2))


@pytest.mark.parametrize(
    ("size", "kept"),
    [(KEPT_DATA, True), (KEPT_DATA + 1, False)],
    ids=["up-to-kept-data", "longer"],
)
def test_what_is_remembered_of_an_id_is_its_data_up_to_kept_data_characters(
    size: int, kept: bool
) -> None:
    data = "d" * size
    assert (data_key(data) == data) is kept
    replay = ReplayFilter()
    replay.is_replay("1", data)
    assert replay.seen["1"] == data_key(data)  # long data is not kept alive


def test_long_data_of_the_same_length_with_new_content_is_new_information() -> None:
    replay = ReplayFilter()
    assert not replay.is_replay("1", "a" * 1000)
    assert not replay.is_replay("1", "b" * 1000)
    assert replay.is_replay("1", "b" * 1000)


def test_an_empty_first_event_is_delivered() -> None:
    # Nothing was delivered before the first connection: no data, not even
    # "", can be a replay of it.
    replay = ReplayFilter()
    replay.reconnected()
    assert not replay.is_replay(None, "")


def test_memory_holds_between_one_and_two_windows_of_the_newest_ids() -> None:
    replay = ReplayFilter()
    for number in range(2 * DEDUPE_WINDOW + 1):
        replay.is_replay(str(number), "d")
        assert len(replay.seen) <= 2 * DEDUPE_WINDOW
    assert len(replay.seen) >= DEDUPE_WINDOW
    assert replay.is_replay(str(2 * DEDUPE_WINDOW), "d")  # the newest are kept
    assert not replay.is_replay("0", "d")  # the oldest forgotten


def test_the_oldest_ids_are_forgotten_once_two_windows_are_held() -> None:
    replay = ReplayFilter()
    for number in range(ReplayFilter.limit):
        replay.is_replay(str(number), "d")
    assert len(replay.seen) == 2 * DEDUPE_WINDOW  # not yet over the limit
    replay.is_replay("new", "d")
    assert len(replay.seen) == DEDUPE_WINDOW
    assert list(replay.seen)[-1] == "new"


def test_every_skip_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ssesync")
    replay = ReplayFilter()
    replay.is_replay("1", "a")
    replay.is_replay("1", "a")
    replay.reconnected()
    replay.is_replay(None, "a")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "skipped a replay of the event with id '1'",
        "skipped an id-less replay of the last event after a reconnect",
    ]


def test_an_id_delivered_again_with_new_data_counts_as_recent() -> None:
    # An id first seen long ago, then delivered again with new data, is as
    # recent as that delivery: forgetting old ids must not forget it.
    replay = ReplayFilter()
    assert not replay.is_replay("A", "v1")
    for i in range(replay.limit - 1):
        assert not replay.is_replay(str(i), "x")
    assert not replay.is_replay("A", "v2")  # new information: delivered
    for i in range(200):
        assert not replay.is_replay(f"b{i}", "y")  # the window is trimmed meanwhile
    assert replay.is_replay("A", "v2")
