"""Both ways of reading a body give the same events, however the server cuts it.

Chunked bodies are read through a fast path (the connection's buffered
reader and ``ssesync._chunked``) with urllib3's public ``read1`` as the
fallback; these tests run every case over both, and over both transports.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssesync._transport as transport
from ssesync import EventSource, SSEConnectionError
from ssesync._parser import Parser
from ssesync._transport import Attempt, Request, Urllib3Transport
from ssesync.testing import SSEServer, StreamConnection

PATHS = ["fast", "public"]


@pytest.fixture(params=PATHS)
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(transport, "FAST_CHUNKED", request.param == "fast")
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def events_of(body: bytes) -> list[tuple[Any, ...]]:
    return [tuple(tuple.__iter__(e)) for e in Parser().feed(body) if not isinstance(e, str)]


def test_fast_path_is_taken_only_when_enabled(server: SSEServer, read_path: str) -> None:
    server.route("/which", server.events([{"data": "x"}]))
    url = server.url_for("/which")
    request = Request("GET", url, {"Accept": "text/event-stream"}, None, (5.0, 5.0))
    stream_transport = Urllib3Transport()
    stream = stream_transport.open(request, Attempt())
    try:
        expected = "read_chunked" if read_path == "fast" else "read_public"
        assert stream.read.__name__ == expected
        assert stream.read() == b"data: x\n\n"
        assert stream.read() == b""
    finally:
        stream.close()
        stream_transport.close()


def test_close_delimited_body_uses_the_public_path(server: SSEServer) -> None:
    server.route("/close", server.raw([b"data: x\n\n"], chunked=False))
    url = server.url_for("/close")
    stream_transport = Urllib3Transport()
    stream = stream_transport.open(Request("GET", url, {}, None, (5.0, 5.0)), Attempt())
    try:
        assert stream.read.__name__ == "read_public"
    finally:
        stream.close()
        stream_transport.close()


def test_connection_for_reuse_uses_the_public_path(server: SSEServer) -> None:
    server.route("/reuse", server.events([{"data": "x"}]))
    url = server.url_for("/reuse")
    request = Request("GET", url, {}, None, (5.0, 5.0), reuse_connection=True)
    stream_transport = Urllib3Transport()
    stream = stream_transport.open(request, Attempt())
    try:
        assert stream.read.__name__ == "read_public"
    finally:
        stream.close()
        stream_transport.close()


block = st.builds(
    lambda data, event, id_, comment: (
        (f": {comment}\n" if comment is not None else "")
        + (f"event: {event}\n" if event is not None else "")
        + (f"id: {id_}\n" if id_ is not None else "")
        + "".join(f"data: {line}\n" for line in data.split("\n"))
        + "\n"
    ),
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\x00"),
        max_size=30,
    ),
    st.none() | st.text(alphabet="abcxyz- é", max_size=8),
    st.none() | st.text(alphabet="0123456789ab", max_size=5),
    st.none() | st.text(alphabet="keep-alive ", max_size=10),
)


@st.composite
def cut_stream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    text = "".join(draw(st.lists(block, min_size=1, max_size=8)))
    line_end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    body = text.replace("\n", line_end).encode("utf-8")
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(body) - 1)), max_size=12)))
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
    return body, pieces


@pytest.mark.parametrize("via", ["urllib3", "requests"])
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close"])
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cut_stream())
def test_any_cut_of_the_body_gives_the_same_events(
    server: SSEServer, read_path: str, via: str, chunked: bool, case: tuple[bytes, list[bytes]]
) -> None:
    body, pieces = case
    path = f"/prop-{read_path}-{via}-{chunked}"
    server.route(path, server.raw(pieces, chunked=chunked))
    options: dict[str, Any] = {"reconnect": False, "dedupe": False, "timeout": (5, 5)}
    if via == "requests":
        options["session"] = requests.Session()
    got = [tuple(tuple.__iter__(e)) for e in EventSource(server.url_for(path), **options)]
    assert got == events_of(body)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"zz\r\ndata: x\n\n\r\n0\r\n\r\n", "invalid chunk"),
        (b"9\r\ndata: x\n\nXX0\r\n\r\n", "chunk|CRLF"),
        (b"a\r\ndata: x\n\n\r\n", "middle of the stream|broke"),
    ],
    ids=["bad-size", "missing-crlf", "cut-short"],
)
def test_broken_chunked_framing_is_a_connection_error(
    server: SSEServer, read_path: str, raw: bytes, message: str
) -> None:
    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=False, headers={"Transfer-Encoding": "chunked"})
        conn.send(raw)
        conn.end()

    path = f"/broken-{read_path}-{abs(hash(raw))}"
    server.route(path, handler)
    source = EventSource(server.url_for(path), reconnect=False, timeout=(5, 5))
    if read_path == "public" and message == "chunk|CRLF":
        # http.client skips the two bytes after a chunk without looking at them.
        assert [e.data for e in source] == ["x"]
        return
    with pytest.raises(SSEConnectionError, match=message):
        list(source)
