"""A gzip-compressed event stream, read through both transports.

The server compresses incrementally and flushes (``Z_SYNC_FLUSH``) after each
event, then waits for the client's ack of that event before it sends the
next one: an event that the client could only decode after later bytes never
gets acked, and the server reports that in band (API.md §4: a compressed body
is decoded on every transport, ``session=`` included, without delaying
events).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ssesync import Event
from tests.helpers import WAIT, fast

from .scenarios import PLAIN, PROMPT, Watchdog, expected, seen
from .stacks import Stack


@pytest.fixture(params=["urllib3", "requests"])
def transport(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The options selecting a transport: the default, or ``session=requests.Session()``."""
    if request.param == "urllib3":
        yield {}
        return
    with requests.Session() as session:
        yield {"session": session}


@pytest.mark.parametrize("stack", ["flask", "http10"], indirect=True)
def test_gzip_stream_is_decoded_event_by_event(
    stack: Stack, key: str, transport: dict[str, Any]
) -> None:
    source = fast(
        stack.url("/gzip", k=key, wait=PROMPT),
        headers={"Accept-Encoding": "gzip"},
        reconnect=False,
        **transport,
    )
    got: list[Event] = []
    with Watchdog(source, WAIT) as dog:
        for event in source:
            got.append(event)
            stack.ack(key, len(got))
    assert not dog.fired, f"the watchdog closed the source after {WAIT} s; got {got}"
    assert [r["content_encoding"] for r in stack.log(key)] == ["gzip"]
    assert [seen(event) for event in got] == [expected(event) for event in PLAIN]
