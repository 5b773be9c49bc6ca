"""The reconnect-delay arithmetic of ``ssesync._retry``: pure, so exact."""

from __future__ import annotations

import email.utils
import threading
import time

import pytest

from ssesync._retry import LONGEST_WAIT_MS, Backoff, parse_retry_after


def backoff(base: float = 1000, cap: float = 30000, draw: float = 1.0, **kw: object) -> Backoff:
    # random() of 1.0 draws the top of the jitter range, 0.0 its bottom.
    return Backoff(base, cap, random=lambda: draw, **kw)  # type: ignore[arg-type]


def test_first_wait_is_between_one_and_one_and_a_half_reconnection_times() -> None:
    # The reconnection time is a floor (the specification): jitter is added.
    assert backoff(draw=0.0).next_delay() == pytest.approx(1.0)
    assert backoff(draw=1.0).next_delay() == pytest.approx(1.5)


def test_delay_doubles_per_failed_attempt_up_to_the_cap() -> None:
    b = backoff(base=1000, cap=5000)
    assert [b.next_delay() for _ in range(5)] == pytest.approx([1.5, 2, 4, 5, 5])


def test_backoff_waits_are_jittered_down_but_never_below_the_reconnection_time() -> None:
    b = backoff(base=1000, cap=5000, draw=0.0)
    assert [b.next_delay() for _ in range(5)] == pytest.approx([1, 1, 2, 2.5, 2.5])


def test_a_reconnection_time_above_the_cap_is_still_the_floor() -> None:
    b = backoff(base=1000, cap=5000, draw=0.0)
    b.set_server_delay(8000)  # the server asks for more than max_retry_delay
    assert [b.next_delay() for _ in range(3)] == pytest.approx([8, 8, 8])
    b = backoff(base=8000, cap=5000, draw=1.0)
    assert b.next_delay() == pytest.approx(8)  # the first wait adds no jitter above it


def test_zero_delay_means_at_once() -> None:
    assert backoff(base=0).next_delay() == 0


def test_zero_delay_failures_after_the_first_back_off_from_a_floor() -> None:
    b = backoff(base=0, cap=1000)
    assert [b.next_delay() for _ in range(6)] == pytest.approx([0, 0.1, 0.2, 0.4, 0.8, 1.0])
    b.reset()
    assert b.next_delay() == 0


def test_server_retry_replaces_the_base() -> None:
    b = backoff(base=3000)
    b.set_server_delay(200)
    assert b.next_delay() == pytest.approx(0.3)


def test_reset_returns_to_the_base_delay() -> None:
    b = backoff(base=1000)
    b.next_delay()
    b.next_delay()
    b.reset()
    assert b.next_delay() == pytest.approx(1.5)


def test_retry_after_is_a_floor_capped_by_max_retry_delay() -> None:
    assert backoff(base=100).next_delay(retry_after=2) == pytest.approx(2.0)
    assert backoff(base=100, cap=5000).next_delay(retry_after=86400) == pytest.approx(5.0)
    assert backoff(base=4000).next_delay(retry_after=1) == pytest.approx(6.0)
    # Retry-After of a second or less still counts, over a shorter delay.
    assert backoff(base=0).next_delay(retry_after=1) == pytest.approx(1.0)
    assert backoff(base=100, draw=0.0).next_delay(retry_after=0.5) == pytest.approx(0.5)


def test_a_cap_of_zero_turns_the_backoff_off() -> None:
    # max_retry_delay=0 is accepted: every wait is the reconnection time,
    # with no jitter and no doubling; the cap also bounds what comes on top
    # of it (the 100 ms floor after a reconnection time of 0, Retry-After).
    b = backoff(base=1000, cap=0, draw=1.0)
    assert [b.next_delay() for _ in range(4)] == pytest.approx([1, 1, 1, 1])
    b = backoff(base=0, cap=0, draw=1.0)
    assert [b.next_delay(retry_after=5) for _ in range(3)] == [0, 0, 0]


def test_zero_max_retries_is_exhausted_by_the_first_failure() -> None:
    b = backoff(max_retries=0)
    assert not b.exhausted
    b.next_delay()
    assert b.exhausted


def test_a_failure_counts_as_one_to_open_a_stream_unless_told_otherwise() -> None:
    b = backoff(max_retries=1)
    b.next_delay()
    b.next_delay()
    assert b.summary() == "after 1 failed retry"


def test_max_retries_counts_consecutive_attempts() -> None:
    b = backoff(max_retries=2)
    b.next_delay()
    b.next_delay()
    assert not b.exhausted
    b.next_delay()
    assert b.exhausted
    b.reset()
    assert not b.exhausted


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = backoff(base=1000, cap=30000)
    for _ in range(2000):
        delay = b.next_delay()
    assert delay == pytest.approx(30.0)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("120", 120.0), ("0", 0.0), (" 7 ", 7.0), ("", None), (None, None), ("soon", None),
     ("-5", None), ("1.5", None)],
)
def test_parse_retry_after_seconds(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    header = email.utils.formatdate(now + 90, usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(90.0)
    past = email.utils.formatdate(now - 90, usegmt=True)
    assert parse_retry_after(past, now=now) == 0.0


def test_parse_retry_after_http_date_is_measured_from_the_clock_by_default() -> None:
    header = email.utils.formatdate(time.time() + 90, usegmt=True)
    wait = parse_retry_after(header)
    assert wait is not None
    assert 85 <= wait <= 90  # the date has whole seconds


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError, match=r"^retry delays must not be negative$"):
        Backoff(-1, 1000)
    with pytest.raises(ValueError, match=r"^retry delays must not be negative$"):
        Backoff(1000, -1)
    with pytest.raises(ValueError, match=r"^max_retries must not be negative$"):
        Backoff(1000, 1000, max_retries=-1)


@pytest.mark.parametrize(
    ("max_retries", "opened", "words"),
    [
        # The first failure is an opened stream ending: what follows are reconnects.
        (0, [True], "without a reconnect attempt (max_retries=0)"),
        (1, [True, False], "after 1 failed reconnect attempt"),
        (2, [True, False, False], "after 2 failed reconnect attempts"),
        # A reconnect that connected, then timed out before any event: not "failed".
        (1, [True, True],
         "after 1 reconnect attempt that opened the stream but delivered no event"),
        (2, [True, True, True],
         "after 2 reconnect attempts that opened the stream but delivered no event"),
        (3, [True, False, True, False],
         "after 3 reconnect attempts (2 failed, 1 opened the stream but delivered no event)"),
        # The first connection failed (max_retries asks to retry it): retries.
        (0, [False], "without a retry (max_retries=0)"),
        (1, [False, False], "after 1 failed retry"),
        (2, [False, True, False],
         "after 2 retries (1 failed, 1 opened the stream but delivered no event)"),
    ],
)
def test_summary_counts_and_words_the_attempts(
    max_retries: int, opened: list[bool], words: str
) -> None:
    b = Backoff(0, 0, max_retries=max_retries)
    for flag in opened:
        assert not b.exhausted
        b.next_delay(opened=flag)
    assert b.exhausted
    assert b.summary() == words


def test_summary_starts_over_after_a_healthy_connection() -> None:
    b = Backoff(0, 0, max_retries=1)
    b.next_delay(opened=True)
    b.next_delay(opened=True)
    b.reset()
    b.next_delay(opened=True)
    b.next_delay(opened=False)
    assert b.summary() == "after 1 failed reconnect attempt"


@pytest.mark.parametrize("opened", [True, False])
def test_a_wait_never_exceeds_what_a_thread_can_wait(opened: bool) -> None:
    backoff = Backoff(3000, 30000)
    backoff.set_server_delay(10**15)  # the parser's own cap of a retry: value
    for _ in range(3):
        delay = backoff.next_delay(retry_after=1e300, opened=opened)
        assert delay == LONGEST_WAIT_MS / 1000
        assert delay < threading.TIMEOUT_MAX
