"""Every read path delivers the same events and the same error, at the same point.

A body reaches the parser by one of several paths: the socket fast path
(``_transport._body._SocketBody``, with ``_transport._chunked`` for chunked framing),
urllib3's public ``read1``, the same two under the ``requests`` transport, and
a hub's two (over plain HTTP and over TLS, where bytes may wait decrypted
inside the TLS layer, out of the selector's sight).
A fast path is only as good as its agreement with the public one, so this
module builds bodies the way servers send them — chunked or close-delimited,
gzip or not, chunks cut anywhere into writes, the terminator with the last
event or apart, the connection kept open after the end as keep-alive servers
do, and errors mid-stream (a broken chunk size, a body cut off in the middle,
an event over ``max_event_size``) — serves each over loopback, and reads it
through every path. They must agree with each other, and with the events a
spec reference finds in the payload that was sent before the error.
"""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Optional

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import ssesync._transport._body as transport
from ssesync import Event, EventSource, Hub, SSEError
from ssesync.testing import SSEServer
from tests.spec_reference import reference_parse

#: Seconds any wait of a read may take.
WAIT = 10.0
#: The event types of the bodies below, for the hub's handlers.
EVENT_TYPES = ("message", "update")
#: The event size limit of every read: the "oversized" ending exceeds it.
MAX_EVENT_SIZE = 64
#: Each write of a body is followed by this pause (or none), so that most
#: cuts are also read boundaries (the outcome must not depend on it either way).
WRITE_PAUSE = 0.002
PATHS = [
    ("urllib3", "fast"),
    ("urllib3", "public"),
    ("requests", "fast"),
    ("requests", "public"),
    # A hub: opened on its thread (_transport._lean), or by urllib3 on a worker
    # (a source with transport options of its own), then read without blocking.
    ("hub", "lean"),
    ("hub", "urllib3"),
]

_paths = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def tls_server(tls: dict[str, Any]) -> Iterator[SSEServer]:
    """The same server over TLS, where reads come out of TLS records, not segments."""
    with SSEServer(ssl_context=tls["server_context"]) as srv:
        yield srv


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as sess:
        yield sess


@pytest.fixture
def hub() -> Iterator[Hub]:
    with Hub() as running:  # one for all of a test's examples
        yield running


# -- bodies -----------------------------------------------------------------------------

BLOCKS = st.sampled_from(
    [
        b"data: plain\n\n",
        b"data: two\ndata: lines\n\n",
        b"event: update\nid: 7\ndata: {\"a\": 1}\n\n",
        b"id: 8\r\ndata: crlf\r\n\r\n",
        b": keep-alive\n\n",
        b":\n",
        b"retry: 1000\n\n",
        "data: caf\u00e9 \U0001f600\n\n".encode(),
        b"data: no space after the colon is data:x\n\n",
        b"data:x\n\n",
    ]
)
ENDINGS = ["end", "end-with-last", "keep-open", "broken-size", "cut-off", "oversized", "corrupt"]


@dataclass
class Body:
    """One response body: its writes, and what a client must make of it."""

    framing: str
    gzip: bool
    ending: str
    writes: list[bytes]
    #: The decoded payload the server sent before the error (all of it if none).
    payload: bytes
    #: A word the error's message contains, or None for a clean end.
    error: Optional[str]
    #: Whether the first write goes out with the response head (one read).
    with_head: bool = False
    #: Served over TLS (hub: never the lean path, which is for http:// only).
    tls: bool = False
    #: The pause after each write; none lets TLS records pile up in one read,
    #: which leaves some decrypted inside the TLS layer after a recv.
    pause: float = WRITE_PAUSE

    @property
    def headers(self) -> dict[str, str]:
        headers = {"Connection": "keep-alive" if self.ending == "keep-open" else "close"}
        if self.framing == "chunked":
            headers["Transfer-Encoding"] = "chunked"
        elif self.framing == "length":
            headers["Content-Length"] = str(sum(map(len, self.writes)))
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        return headers


def decodable_start(data: bytes) -> bytes:
    """What gzip ``data`` decodes to before its first error, one byte at a time.

    (Gzip members may follow each other, with zero bytes between them; any
    other byte that cannot begin the next one is an error like any other.)
    """
    inflate, out = zlib.decompressobj(wbits=31), []
    for at in range(len(data)):
        if inflate.eof:
            if data[at] == 0:
                continue
            inflate = zlib.decompressobj(wbits=31)
        try:
            out.append(inflate.decompress(data[at : at + 1]))
        except zlib.error:
            break
    return b"".join(out)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=31)
    return compressor.compress(data) + compressor.flush()


@st.composite
def bodies(draw: st.DrawFn) -> Body:
    blocks = draw(st.lists(BLOCKS, max_size=6))
    if blocks and draw(st.integers(0, 3)) == 0:
        # A busy stream: reads that fill their buffer (and grow it, see
        # _body.MIN_READ), many chunks per read (the decoder's bulk path),
        # many blocks per read (the parser's).
        # No bare comment lines (a run of them is one block, over the limit);
        # CRLF ends, which the bulk paths leave to the loops, only at times.
        crlf = draw(st.booleans())
        blocks = [b for b in blocks if b != b":\n" and (crlf or b"\r" not in b)]
        blocks *= draw(st.integers(20, 120))
    framing = draw(st.sampled_from(["chunked", "close", "length"]))
    gzip = draw(st.booleans())
    ending = draw(st.sampled_from(ENDINGS))
    if framing == "close" and ending in ("broken-size", "end-with-last", "keep-open"):
        ending = "end"  # these are about chunked framing
    if framing == "length" and ending not in ("end", "keep-open", "oversized", "corrupt"):
        ending = "keep-open"  # the length ends the body: the connection may stay open
    if ending == "corrupt" and not gzip:
        ending = "end"  # about compressed data
    # gzip as one member, or (as some servers write it) one member per write.
    members = gzip and ending != "cut-off" and draw(st.booleans())
    if ending == "oversized":
        blocks = [*blocks, b"data: " + b"x" * (MAX_EVENT_SIZE + 10) + b"\n\n", b"data: after\n\n"]
    # The body as the server's writes of payload: per block, or cut anywhere.
    payload = b"".join(blocks)
    if draw(st.booleans()):
        pieces = [block for block in blocks]
    else:
        cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=5)))
        pieces = [payload[a:b] for a, b in zip([0, *cuts], [*cuts, len(payload)])]
    pieces = [piece for piece in pieces if piece]
    if members:
        pieces = [_gzip_member(piece) for piece in pieces]
    elif gzip:
        compressor = zlib.compressobj(wbits=31)
        pieces = [compressor.compress(p) + compressor.flush(zlib.Z_SYNC_FLUSH) for p in pieces]
        if ending != "corrupt":
            pieces.append(compressor.flush())
    if ending == "corrupt":
        # Bytes that are not compressed data, then some that would be: with
        # the last events in one write (however the writes are cut), what
        # decoded before them must still be delivered, and nothing after.
        lost = _gzip_member(b"data: lost\n\n")
        garbage = draw(st.sampled_from([b"\xff", lost[:10] + b"\xff", b"not gzip"]))
        last = pieces.pop() if pieces else b""
        pieces.append(last + garbage + lost)
    wire = [_chunk(piece) for piece in pieces] if framing == "chunked" else list(pieces)
    sent = b"".join(pieces)
    error: Optional[str] = None
    if ending == "oversized":
        error = "max_event_size"
    elif ending == "corrupt":
        error = "not the compressed data"
    elif ending == "broken-size":
        wire.append(b"zz\r\ndata: lost\n\n\r\n")
        error = "invalid chunked body"
    elif ending == "cut-off" and framing == "chunked":
        # The server closes in the middle of a chunk: what came of it is
        # delivered, then the break is reported.
        extra = b"data: cut\n\ndata: off"
        if gzip:
            extra = zlib.compressobj(wbits=31).compress(extra) + b"\x00"
        keep = draw(st.integers(0, len(extra)))
        wire.append(b"%x\r\n" % (len(extra) + 5) + extra[:keep])
        sent += extra[:keep]
        error = "in the middle of the stream"
    if framing == "chunked" and (error is None or ending == "corrupt"):
        if ending == "end-with-last" and wire:
            wire[-1] += b"0\r\n\r\n"
        else:
            wire.append(b"0\r\n\r\n")
    # Cut the bytes on the wire into writes anywhere too.
    data = b"".join(wire)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    writes = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])]
    if ending == "corrupt":
        decoded = decodable_start(sent)
    elif members:
        decoded = payload
    else:
        decoded = zlib.decompressobj(wbits=31).decompress(sent) if gzip else sent
    with_head, tls = draw(st.booleans()), draw(st.integers(0, 3)) == 0
    pause = draw(st.sampled_from([WRITE_PAUSE, 0.0]))
    return Body(
        framing, gzip, ending, [w for w in writes if w], decoded, error, with_head, tls, pause
    )


# -- reading ------------------------------------------------------------------------------


def read_through(
    servers: tuple[SSEServer, SSEServer, str], session: requests.Session, hub: Hub, body: Body,
    via: str, path: str, lean_opens: list[str],
) -> tuple[list[tuple[Any, ...]], Optional[str]]:
    """The events and the error message of one read of ``body``."""
    plain, secure, ca_path = servers
    server = secure if body.tls else plain
    route = f"/differential/{next(_paths)}"
    # After corrupt data too the server holds the connection: the report must
    # come at once, not at the read timeout.
    then = "stall" if body.ending in ("keep-open", "corrupt") else "end"
    server.route(
        route,
        server.raw(
            body.writes, chunked=False, pause=body.pause, then=then, headers=body.headers,
            with_head=body.with_head,
        ),
    )
    options: dict[str, Any] = {"session": session} if via == "requests" else {}
    if body.tls:
        options["verify"] = ca_path
    if via == "hub":
        options["hub"] = hub
        if path == "urllib3" and not body.tls:
            options["verify"] = False  # a transport of its own: opened by urllib3
    source = EventSource(
        server.url_for(route),
        reconnect=False,
        timeout=(5, 5),  # a path that waits for more after the end fails by timing out
        max_event_size=MAX_EVENT_SIZE,
        dedupe=False,  # the reference knows nothing of replays
        **options,
    )
    if via == "hub":
        opened = len(lean_opens)
        outcome = _read_on_hub(source, server.url_for(route))
        lean = path == "lean" and not body.tls
        assert len(lean_opens) - opened == lean, "the hub opened it the other way"
        return outcome
    previous = transport.FAST_READS
    transport.FAST_READS = path == "fast"
    events: list[tuple[Any, ...]] = []
    error: Optional[str] = None
    try:
        with source:
            for event in source:
                events.append(tuple(tuple.__iter__(event))[:5])
    except SSEError as exc:
        error = str(exc).replace(server.url_for(route), "URL")
    finally:
        transport.FAST_READS = previous
    return events, error


def _read_on_hub(source: EventSource, url: str) -> tuple[list[tuple[Any, ...]], Optional[str]]:
    events: list[tuple[Any, ...]] = []
    errors: list[str] = []

    def record(event: Event) -> None:
        events.append(tuple(tuple.__iter__(event))[:5])

    for type_ in EVENT_TYPES:
        source.on(type_, record)
    source.on_error(lambda src, exc: errors.append(str(exc).replace(url, "URL")))
    source.start()
    assert source.join(WAIT)
    return events, errors[-1] if errors else None


def expected_events(body: Body) -> list[tuple[Any, ...]]:
    """What the spec reference finds in the payload sent before the error."""
    payload = body.payload
    if body.ending == "oversized":
        payload = payload[: payload.index(b"data: xxx")]
    items, _ = reference_parse(payload)
    return [item for item in items if len(item) == 5]  # events, not comments


#: Node's res.end(data): the last event and the terminator in one write, kept open.
NODE_END = Body(
    "chunked", False, "keep-open", [_chunk(b"data: a\n\n") + b"0\r\n\r\n"], b"data: a\n\n", None
)
#: Intact chunks and a broken size line in one write.
BROKEN_AFTER_INTACT = Body(
    "chunked", False, "broken-size", [_chunk(b"data: ok\n\n") + b"zz\r\nx\r\n"],
    b"data: ok\n\n", "invalid chunked body",
)

#: Complete events and bytes that are not gzip data, in one read.
_flushed = zlib.compressobj(wbits=31)
CORRUPT_AFTER_EVENTS = Body(
    "chunked", True, "corrupt",
    [_chunk(_flushed.compress(b"data: ok\n\n") + _flushed.flush(zlib.Z_SYNC_FLUSH) + b"\xff")
     + b"0\r\n\r\n"],
    b"data: ok\n\n", "not the compressed data",
)  # fmt: skip


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(body=bodies())
@example(body=NODE_END)
@example(body=BROKEN_AFTER_INTACT)
@example(body=CORRUPT_AFTER_EVENTS)
def test_every_read_path_gives_the_same_events_and_error(
    server: SSEServer, tls_server: SSEServer, tls: dict[str, Any], session: requests.Session,
    hub: Hub, body: Body, lean_opens: list[str],
) -> None:  # fmt: skip
    servers = (server, tls_server, tls["ca_path"])
    outcomes = {
        (via, path): read_through(servers, session, hub, body, via, path, lean_opens)
        for via, path in PATHS
    }
    (first_events, first_error), *_ = outcomes.values()
    for key, outcome in outcomes.items():
        assert outcome == (first_events, first_error), (key, outcomes)
    assert first_events == expected_events(body)
    if body.error is None:
        assert first_error is None
    else:
        assert first_error is not None
        assert body.error in first_error
