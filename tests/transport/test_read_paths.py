"""Both ways of reading a body give the same events, however the server cuts it.

Bodies that are chunked or run to the end of the connection are read through
a fast path (the connection's socket, and ``ssesync._transport._chunked`` for chunked
framing) with urllib3's public ``read1`` as the fallback; these tests run
every case over both, and over both transports. On Linux the fast path also
moves a plain socket's read timeout into the kernel (``SO_RCVTIMEO``); the
timeout tests at the end pin that it still fires, and only on plain sockets.
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import trustme
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ssesync._transport._body as transport
from ssesync import EventSource, SSEConnectionError
from ssesync._parser import Parser
from ssesync._transport import Attempt, Request, Urllib3Transport
from ssesync.testing import SSEServer, StreamConnection

PATHS = ["fast", "public"]


@pytest.fixture(params=PATHS)
def read_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(transport, "FAST_READS", request.param == "fast")
    return str(request.param)


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


def events_of(body: bytes) -> list[tuple[Any, ...]]:
    return [tuple(tuple.__iter__(e)) for e in Parser().feed(body) if not isinstance(e, str)]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close"])
def test_fast_path_is_taken_only_when_enabled(
    server: SSEServer, read_path: str, chunked: bool
) -> None:
    # More than one buffer's worth in the first write: part of it is in
    # http.client's buffered reader when the fast path takes over.
    body = b"".join(b"data: %05d %s\n\n" % (i, b"x" * 90) for i in range(200))
    path = f"/which-{chunked}"
    server.route(path, server.raw([body, b"data: last\n\n"], chunked=chunked, pause=0.05))
    request = Request("GET", server.url_for(path), {}, None, (5.0, 5.0))
    stream_transport = Urllib3Transport()
    stream = stream_transport.open(request, Attempt())
    try:
        fast_name = "read_chunked" if chunked else "read_until_close"
        assert stream.read.__name__ == (fast_name if read_path == "fast" else "read_public")
        received = b""
        while True:
            data = stream.read()
            if not data:
                break
            received += data
        assert received == body + b"data: last\n\n"
    finally:
        stream.close()
        stream_transport.close()


def test_content_length_body_uses_the_public_path(server: SSEServer) -> None:
    server.route("/length", server.raw([b"data: x\n\n"], headers={"Content-Length": "9"}))
    stream_transport = Urllib3Transport()
    url = server.url_for("/length")
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


# -- read timeouts on the fast path --------------------------------------------------------


def _one_event_then_silence(conn: StreamConnection) -> None:
    conn.send_headers()
    conn.event("only")
    conn.stall()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SSEServer, str]]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    with SSEServer(ssl_context=context) as srv:
        yield srv, str(ca_path)


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_read_timeout_fires_on_every_path(
    server: SSEServer, tls_server: tuple[SSEServer, str], read_path: str, scheme: str
) -> None:
    target, ca_path = (server, "") if scheme == "http" else tls_server
    target.route("/quiet", _one_event_then_silence)
    # The read timeout covers the response head too: one second, so that a
    # loaded machine's slow TLS server does not trip it before the body.
    options: dict[str, Any] = {"reconnect": False, "timeout": (5, 1.0)}
    if ca_path:
        options["verify"] = ca_path
    source = EventSource(target.url_for("/quiet"), **options)
    events = iter(source)
    assert next(events).data == "only"
    started = time.monotonic()
    with pytest.raises(SSEConnectionError, match="read timed out"):
        next(events)
    assert 0.9 < time.monotonic() - started < 5
    source.close()


@pytest.mark.skipif(not transport.KERNEL_READ_TIMEOUT, reason="the kernel timeout is for Linux")
@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close"])
def test_plain_socket_waits_with_the_kernel_timeout_and_tls_with_pythons(
    server: SSEServer, tls_server: tuple[SSEServer, str], chunked: bool
) -> None:
    # Pins where the read timeout lives once the body is being read: the
    # test above shows it fires, this one that the poll() is gone.
    for target, tls in ((server, {}), (tls_server[0], {"verify": tls_server[1]})):
        path = f"/socket-{chunked}"
        target.route(path, target.raw([b"data: a\n\n", b"data: b\n\n"], chunked=chunked))
        stream_transport = Urllib3Transport(**tls)
        url = target.url_for(path)
        stream = stream_transport.open(Request("GET", url, {}, None, (5.0, 1.25)), Attempt())
        try:
            assert stream.read()  # the first read hands over to the socket
            sock = stream._response._fp.fp.raw._sock  # type: ignore[attr-defined]
            if tls:
                assert sock.gettimeout() == 1.25
            else:
                assert sock.gettimeout() is None
                timeval = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)
                seconds, micros = struct.unpack("@ll", timeval)
                assert seconds + micros / 1e6 == pytest.approx(1.25, abs=0.02)  # kernel ticks
        finally:
            stream.close()
            stream_transport.close()


# -- the end of a chunked body --------------------------------------------------------------


@pytest.mark.parametrize("transport_name", ["urllib3", "requests"])
def test_last_chunk_with_the_last_event_ends_the_stream_at_once(
    server: SSEServer, read_path: str, transport_name: str
) -> None:
    # Node's res.end(data) sends the last event and the terminating chunk in
    # one segment and keeps the connection open: the socket fast path read
    # again after the terminator and waited for the read timeout.
    def node_like(conn: StreamConnection) -> None:
        conn.send_headers(headers={"Connection": "keep-alive"})
        conn.event("first")
        conn.end(last=b"data: last\n\n", keep_open=True)

    path = f"/node-like-{read_path}-{transport_name}"
    server.route(path, node_like)
    options: dict[str, Any] = {}
    if transport_name == "requests":
        options["session"] = requests.Session()
    source = EventSource(server.url_for(path), reconnect=False, timeout=(5, 3), **options)
    with source:
        assert [e.data for e in source] == ["first", "last"]  # no "read timed out"


def test_reads_grow_while_busy_and_shrink_while_quiet() -> None:
    from ssesync._transport._body import MIN_READ, READ_SIZE, next_read_size

    size = MIN_READ
    while size < READ_SIZE:
        size = next_read_size(size, size)  # full reads: the stream is busy
    assert size == READ_SIZE == next_read_size(READ_SIZE, READ_SIZE)
    assert next_read_size(size, size // 2) == size  # a fair read keeps it
    while size > MIN_READ:
        size = next_read_size(size, 1)  # tiny reads: the stream is quiet
    assert size == MIN_READ == next_read_size(MIN_READ, 1)
