"""The hub's lean path against urllib3's, over loopback: same events, same error.

A plain ``http://`` GET on a hub's shared transport is opened on the hub's
own thread without urllib3 (``_transport._lean``); every other source is
opened by urllib3. For any response — well-formed or not, its head cut into
several writes or sent with the first events, interim responses first, the
connection closed before, during or after the head — a source on a hub and
a source on a thread of its own must see the same events, the same errors
(type, message, whether retryable) and the same response status.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any, Optional

import pytest

from ssesync import EventSource, Hub, SSEConnectionError
from ssesync.testing import SSEServer
from tests.helpers import WAIT, Collector, RawServer, closed_port, settle
from tests.test_faults import BAD_HEADS, SSE_HEAD

GOOD = {
    "chunked": SSE_HEAD
    + b"Transfer-Encoding: chunked\r\n\r\n7\r\ndata: a\r\n2\r\n\n\n\r\n0\r\n\r\n",
    "close-delimited": SSE_HEAD + b"Connection: close\r\n\r\ndata: a\n\ndata: b\n\n",
    "http-1.0": b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: a\n\n",
    "content-length": SSE_HEAD + b"Content-Length: 18\r\n\r\ndata: a\n\ndata: b\n\nignored",
    "interim-first": b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + SSE_HEAD
    + b"\r\ndata: after\n\n",
    "folded-header": SSE_HEAD + b"X-Folded: one\r\n two\r\n\r\ndata: a\n\n",
    "bare-lf-head": b"HTTP/1.1 200 OK\nContent-Type: text/event-stream\n\ndata: a\n\n",
    "no-content": b"HTTP/1.1 204 No Content\r\n\r\n",
    "not-found": b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    "unavailable": b"HTTP/1.1 503 Busy\r\nRetry-After: 1\r\nContent-Length: 0\r\n\r\n",
    "wrong-type": b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<p>",
    "head-cut-short": SSE_HEAD + b"X-Half",
    "bare-lf-continue": b"HTTP/1.1 100 Continue\n\n" + SSE_HEAD + b"\r\ndata: a\n\n",
    "odd-interim": b"HTTP/1.1  103 Early\r\n\r\nHTTP/1.1 0103 x\r\n\r\n" + SSE_HEAD
    + b"\r\ndata: a\n\n",
    "interim-over-100-headers": b"HTTP/1.1 103 Early\r\n" + b"Link: <a>\r\n" * 150
    + b"\r\n" + SSE_HEAD + b"\r\ndata: a\n\n",
    "exactly-100-headers": SSE_HEAD + b"X: y\r\n" * 99 + b"\r\ndata: a\n\n",
    "redirect-without-follow": b"HTTP/1.1 300 Choices\r\nLocation: /x\r\n\r\n",
    "empty-location": b"HTTP/1.1 302 Found\r\nLocation: \r\nContent-Length: 0\r\n\r\n",
    # Chunked in urllib3's eyes (it looks for "chunked" in the list), so its
    # check of conflicting lengths does not apply (a hub used to refuse it);
    # http.client then reads the first length's five bytes: no event.
    "listed-chunked-with-conflicting-lengths": SSE_HEAD
    + b"Transfer-Encoding: gzip, chunked\r\nContent-Length: 5\r\nContent-Length: 9\r\n"
    + b"Connection: close\r\n\r\ndata: a\n\n",
}
CASES = {**GOOD, **BAD_HEADS}


def outcome(url: str, hub: Optional[Hub], timeout: Any = (WAIT, WAIT)) -> tuple[Any, ...]:
    """What a started source saw: events, errors and the response status."""
    return outcome_with(url, hub, timeout=timeout)


def outcome_with(url: str, hub: Optional[Hub], **options: Any) -> tuple[Any, ...]:
    """:func:`outcome`, with options for the source."""
    got: list[str] = []
    errors: list[tuple[str, str, bool]] = []
    options.setdefault("timeout", (WAIT, WAIT))
    source = EventSource(url, hub=hub, reconnect=False, **options)
    source.on("message", lambda event: got.append(event.data))
    source.on_error(lambda _s, exc: errors.append((type(exc).__name__, str(exc), exc.retryable)))
    source.start()
    assert source.join(WAIT)
    source.close()
    status = source.response.status if source.response is not None else None
    return got, errors, status


@pytest.mark.parametrize("split", ["whole", "bytewise-head"])
@pytest.mark.parametrize("payload", list(CASES.values()), ids=list(CASES))
def test_a_hub_and_a_thread_see_the_same_response(
    payload: bytes, split: str, lean_opens: list[str]
) -> None:
    if split == "whole":
        pieces = [payload]
    else:  # the head a few bytes per write, so it arrives over many reads
        head = payload[:200]
        pieces = [head[at : at + 7] for at in range(0, len(head), 7)] + [payload[200:]]
    with RawServer(pieces, pause=0.002) as server, Hub() as hub:
        url = server.url
        on_thread = outcome(url, None)
        on_hub = outcome(url, hub)
    assert on_hub == on_thread
    assert lean_opens == [url]


def test_a_refused_connection_reads_the_same_on_a_hub(lean_opens: list[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/s"
    with Hub() as hub:
        assert outcome(url, hub) == outcome(url, None)
    assert lean_opens == [url]


def test_a_host_name_is_resolved_off_the_hubs_thread(lean_opens: list[str]) -> None:
    with RawServer(CASES["chunked"]) as server, Hub() as hub:
        url = server.url.replace("127.0.0.1", "localhost")
        got, errors, status = outcome(url, hub)
    assert (got, errors, status) == (["a"], [], 200)
    assert lean_opens == [url]


def test_a_host_that_does_not_resolve_reads_the_same_on_a_hub(
    lean_opens: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolver is answered here: a machine without DNS could take seconds.
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("unknown.example", b"unknown.example"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    url = "http://unknown.example/s"
    with Hub() as hub:
        on_hub = outcome(url, hub)
    assert on_hub == outcome(url, None)
    assert on_hub == ([], [("SSEConnectionError", f"cannot resolve the host of {url}", True)], None)
    assert lean_opens == [url]


def test_a_silent_server_is_a_read_timeout_on_the_lean_path_too(lean_opens: list[str]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))  # accepts (the kernel does), never answers
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/s"
    try:
        with Hub() as hub:
            source = EventSource(url, hub=hub, reconnect=False, timeout=(WAIT, 0.2))
            errors: list[BaseException] = []
            source.on_error(lambda _s, exc: errors.append(exc))
            source.start()
            assert source.join(WAIT)
    finally:
        listener.close()
    assert [str(exc) for exc in errors] == [f"read timed out on {url}"]
    assert isinstance(errors[0], SSEConnectionError)
    assert errors[0].retryable


def test_a_connect_that_hangs_times_out_on_the_lean_path(
    blackhole: str, lean_opens: list[str]
) -> None:
    with Hub() as hub:
        on_hub = outcome(blackhole, hub, timeout=(0.2, WAIT))
    assert on_hub == outcome(blackhole, None, timeout=(0.2, WAIT))
    assert on_hub[1] == [("SSEConnectionError", f"connecting to {blackhole} timed out", True)]
    assert lean_opens == [blackhole]


@pytest.mark.parametrize("where", ["connect", "head"])
def test_close_ends_a_lean_connect_at_once(
    where: str, blackhole: str, lean_opens: list[str]
) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    silent = f"http://127.0.0.1:{listener.getsockname()[1]}/s"
    url = blackhole if where == "connect" else silent
    try:
        with Hub() as hub:
            source = EventSource(url, hub=hub, timeout=(60, 60))
            source.start()
            assert settle(lambda: bool(lean_opens))
            time.sleep(0.05)  # let it reach the wait (connect, or the head)
            started = time.monotonic()
            assert source.close(timeout=WAIT)
            assert time.monotonic() - started < WAIT / 2
            assert len(hub) == 0
    finally:
        listener.close()


def test_an_ipv6_literal_is_connected_to_on_the_lean_path(lean_opens: list[str]) -> None:
    try:
        listener = socket.socket(socket.AF_INET6)
        listener.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    listener.listen(1)
    url = f"http://[::1]:{listener.getsockname()[1]}/s"

    def answer() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(CASES["close-delimited"])

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    try:
        with Hub() as hub:
            assert outcome(url, hub) == (["a", "b"], [], 200)
    finally:
        server.join(WAIT)
        listener.close()
    assert lean_opens == [url]


def test_reconnect_on_the_lean_path_reconnects_at_once_with_the_last_id(
    sse_server: SSEServer, lean_opens: list[str]
) -> None:
    # reconnect() aborts the attempt and posts a wake-up to the hub; when
    # the end of the old connection was seen first, the wake-up cancelled the
    # NEW attempt (an error, then the whole retry delay).
    served = iter(range(100))

    def handler(conn: Any) -> None:
        conn.send_headers()
        conn.event(f"x{next(served)}", id="7")  # new data: not a replay to skip
        conn.stall()

    sse_server.route("/s", handler)
    errors: list[BaseException] = []
    got = Collector()
    with Hub() as hub:
        source = EventSource(sse_server.url_for("/s"), hub=hub, retry_delay=30_000)
        source.on("message", got)
        source.on_error(lambda _s, exc: errors.append(exc))
        source.start()
        for round_ in range(1, 6):
            got.wait_for(round_)
            source.reconnect()
        got.wait_for(6)
        source.close()
    assert errors == []
    assert [r.headers.get("Last-Event-ID") for r in sse_server.requests_for("/s")][1:] == ["7"] * 5
    assert len(lean_opens) == 6


def test_an_answer_before_the_request_is_sent_is_read(lean_opens: list[str]) -> None:
    # A server may answer (431 Request Header Fields Too Large) and close
    # before reading the whole request; the send then fails, but the answer
    # is there to read, as urllib3 reads it.
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/s"
    stop = threading.Event()

    def answer() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.1 431 Too Large\r\nConnection: close\r\n\r\n")

    server = threading.Thread(target=answer, daemon=True)
    server.start()
    big = {"X-Big": "a" * 16_000_000}
    try:
        with Hub() as hub:
            on_hub = outcome_with(url, hub, headers=big)
            on_thread = outcome_with(url, None, headers=big)
    finally:
        stop.set()
        server.join(WAIT)
        listener.close()
    assert on_hub == on_thread
    assert on_hub[2] == 431


def _chunked(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload)


TWO_MEMBERS = gzip.compress(b"data: a\n\n") + gzip.compress(b"data: b\n\n")
GZIP_HEAD = SSE_HEAD + b"Content-Encoding: gzip\r\n"
#: Bodies the hub reads itself, however it opened the response.
BODIES = {
    "gzip-two-members-close": GZIP_HEAD + b"Connection: close\r\n\r\n" + TWO_MEMBERS,
    "gzip-two-members-chunked": GZIP_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    + _chunked(TWO_MEMBERS),
    "empty-body-kept-open": SSE_HEAD + b"Content-Length: 0\r\n\r\n",
    "gzip-zero-padding": GZIP_HEAD + b"Connection: close\r\n\r\n"
    + gzip.compress(b"data: a\n\n") + b"\x00" * 8 + gzip.compress(b"data: b\n\n") + b"\x00",
}
#: A plain http:// source on a hub is opened on the hub's thread (lean);
#: with an option of its own it is opened by urllib3 on a worker.
HUB_ROUTES = {"lean": {}, "urllib3": {"verify": False}}


@pytest.mark.parametrize("route", list(HUB_ROUTES))
@pytest.mark.parametrize("payload", list(BODIES.values()), ids=list(BODIES))
def test_a_hub_reads_a_body_as_a_thread_does(
    payload: bytes, route: str, lean_opens: list[str]
) -> None:
    # The server keeps each connection open after its response: a body that
    # is complete must end at once (a wait would end in a read timeout).
    # One server per source: a RawServer serves one connection at a time.
    options = {**HUB_ROUTES[route], "timeout": (WAIT, 3.0)}
    hold = WAIT if b"Content-Length" in payload else 0.0
    first, second = RawServer(payload, hold=hold), RawServer(payload, hold=hold)
    with first, second, Hub() as hub:
        url = second.url
        on_thread = outcome_with(first.url, None, **options)
        on_hub = outcome_with(url, hub, **options)
    assert on_hub == on_thread
    assert on_hub[1] == []
    assert lean_opens == ([url] if route == "lean" else [])


def _flushed(wbits: int, payload: bytes) -> bytes:
    """``payload`` compressed so far as a stream that goes on (sync-flushed)."""
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH)


#: Complete events, then bytes that are not the compressed data the head
#: names, in the same read. Each body says "data: a" before the corruption.
CORRUPT_BODIES = {
    "gzip-member-then-garbage": GZIP_HEAD + b"Connection: close\r\n\r\n"
    + gzip.compress(b"data: a\n\n") + b"not gzip",
    "gzip-stream-broken": GZIP_HEAD + b"Connection: close\r\n\r\n"
    + _flushed(31, b"data: a\n\n") + b"\xff" + gzip.compress(b"data: lost\n\n"),
    "gzip-chunked-broken-kept-open": GZIP_HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    + _chunked(_flushed(31, b"data: a\n\n") + b"\xff\xff"),
    "deflate-then-garbage": SSE_HEAD + b"Content-Encoding: deflate\r\nConnection: close\r\n\r\n"
    + zlib.compress(b"data: a\n\n") + b"more",
    "zlib-deflate-broken": SSE_HEAD + b"Content-Encoding: deflate\r\nConnection: close\r\n\r\n"
    + _flushed(15, b"data: a\n\n") + b"\xff",
}


@pytest.mark.parametrize("route", ["thread", "thread-public", *HUB_ROUTES])
@pytest.mark.parametrize("payload", list(CORRUPT_BODIES.values()), ids=list(CORRUPT_BODIES))
def test_events_before_corrupt_compressed_data_are_delivered_then_it_is_reported(
    payload: bytes, route: str, lean_opens: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # zlib raises for a whole read and drops what it decoded of it; the
    # events complete before the corruption must still come first, on every
    # path, and the report must come at once (the server holds the
    # connection open: a wait for more would end in the read timeout).
    if route == "thread-public":
        monkeypatch.setattr("ssesync._transport._body.FAST_READS", False)
    hub_options = HUB_ROUTES.get(route, {})
    with RawServer(payload, hold=WAIT) as server, Hub() as hub:
        url = server.url
        got, errors, status = outcome_with(
            url, hub if route in HUB_ROUTES else None, **hub_options, timeout=(WAIT, WAIT)
        )
    assert (got, status) == (["a"], 200)
    assert errors == [
        ("SSEConnectionError", f"the body from {url} is not the compressed data it claims", True)
    ]
    assert lean_opens == ([url] if route == "lean" else [])


@pytest.mark.parametrize("route", list(HUB_ROUTES))
def test_a_hub_refuses_a_list_of_encodings_however_it_opened(
    route: str, lean_opens: list[str]
) -> None:
    # urllib3 (a thread) decodes "gzip, gzip"; the hub's reader decodes one
    # coding, and says so instead of handing compressed bytes to the parser.
    body = gzip.compress(gzip.compress(b"data: a\n\n"))
    payload = SSE_HEAD + b"Content-Encoding: gzip, gzip\r\nConnection: close\r\n\r\n" + body
    with RawServer(payload) as server, Hub() as hub:
        url = server.url
        assert outcome_with(url, None, **HUB_ROUTES[route])[0] == ["a"]
        got, errors, status = outcome_with(url, hub, **HUB_ROUTES[route])
    assert (got, status) == ([], 200)
    assert errors == [(
        "SSEConnectionError",
        f"a hub cannot decode the Content-Encoding 'gzip, gzip' of {url}",
        False,
    )]  # fmt: skip
    assert lean_opens == ([url] if route == "lean" else [])


@contextlib.contextmanager
def lean_stream(
    *, chunked: bool, initial: bytes, read_timeout: float
) -> Iterator[tuple[Any, socket.socket]]:
    """A :class:`LeanStream` over one end of a socket pair, and the other end to write to."""
    from ssesync._transport._direct import DirectBody, LeanStream

    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    try:
        body = DirectBody(ours, "http://h/s", chunked=chunked, length=None, encoding="identity",
                          initial=initial)  # fmt: skip
        yield LeanStream(ours, 200, {}, "http://h/s", body, read_timeout), theirs
    finally:
        ours.close()
        theirs.close()


def test_a_lean_streams_blocking_read_keeps_the_read_timeout() -> None:
    # The hub reads a lean stream's body itself; the blocking read() every
    # stream offers must still wait no longer than the read timeout.
    with lean_stream(chunked=False, initial=b"", read_timeout=0.1) as (stream, theirs):
        with pytest.raises(SSEConnectionError, match="read timed out"):
            stream.read()
        theirs.sendall(b"data: x\n\n")
        assert stream.read() == b"data: x\n\n"
        theirs.close()
        assert stream.read() == b""


def test_a_lean_streams_blocking_read_gives_no_empty_read_before_the_end() -> None:
    # A read of chunk framing alone holds no payload: read() must wait for
    # more rather than return b"", which every stream's caller takes for the end.
    with lean_stream(chunked=True, initial=b"9\r", read_timeout=WAIT) as (stream, theirs):
        theirs.sendall(b"\ndata: x\n\n\r\n0\r\n\r\n")
        assert stream.read() == b"data: x\n\n"
        assert stream.read() == b""
        assert stream.body.ended


def test_a_redirect_loop_ends_alike_on_a_hub_and_a_thread(
    sse_server: SSEServer, lean_opens: list[str]
) -> None:
    # The first hop is read by the hub and handed to urllib3 (follow()),
    # which must count it toward the same limit, with as many requests.
    sse_server.route("/loop", sse_server.redirect("/loop", code=302))
    url = sse_server.url_for("/loop")
    with Hub() as hub:
        on_hub = outcome(url, hub)
    hub_requests = len(sse_server.requests_for("/loop"))
    on_thread = outcome(url, None)
    thread_requests = len(sse_server.requests_for("/loop")) - hub_requests
    assert on_hub == on_thread
    assert "too many redirects" in on_hub[1][0][1]
    assert hub_requests == thread_requests
    assert lean_opens == [url]
