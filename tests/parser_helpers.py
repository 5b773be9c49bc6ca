"""How parser tests compare parser output with the reference's (tests/spec_reference.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

from ssesync import Event

Item = tuple[object, ...]

#: Retry values from this many ms up are held at a cap by the parser (int()
#: refuses more than 4300 digits); for comparisons they all count as equal.
HUGE_RETRY = 10**15


def encode(items: Sequence[Union[Event, str]]) -> list[Item]:
    """Parser items in the reference's encoding: 5-tuples and ("comment", text)."""
    out: list[Item] = []
    for item in items:
        if isinstance(item, Event):
            fields = tuple(tuple.__iter__(item))
            # The sixth slot is the type, which every path must fill the same way.
            assert fields[5] == (fields[1] or "message"), f"wrong type in {item!r}"
            out.append(fields[:5])
        else:
            assert isinstance(item, str), f"unexpected item {item!r}"
            out.append(("comment", item))
    return out


def canon_retry(retry: object) -> object:
    if isinstance(retry, int) and retry >= HUGE_RETRY:
        return "huge"
    return retry


def canon(items: Sequence[Item]) -> list[Item]:
    """``items`` with every retry value of HUGE_RETRY or more as "huge"."""
    return [
        (*item[:3], canon_retry(item[3]), item[4]) if len(item) == 5 else item for item in items
    ]
