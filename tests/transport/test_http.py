"""The HTTP rules of API.md section 4, on every transport.

Requests (the query, the ``Last-Event-ID`` header) and responses (interim
``1xx`` responses, the MIME type, compressed bodies) as a loopback server
sees and sends them. Each test runs through the three ways a source sends:
its own urllib3 pool, a caller's ``pool_manager``, and a ``requests.Session``.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3

from ssesync import EventSource, SSEConnectionError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, fast, take, watchdog

TRANSPORTS = ["own-pool", "pool-manager", "session"]


@pytest.fixture(params=TRANSPORTS)
def transport_options(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The keyword arguments that pick the transport of a source."""
    if request.param == "own-pool":
        yield {}
    elif request.param == "pool-manager":
        manager = urllib3.PoolManager()
        yield {"pool_manager": manager}
        manager.clear()
    else:
        with requests.Session() as session:
            yield {"session": session}


# -- interim responses ----------------------------------------------------------------------


def test_interim_responses_before_the_stream_are_skipped(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    # http.client skips 100 Continue but hands back 103 Early Hints as the
    # final response, which made the source fail for good on a 103.
    def handler(conn: StreamConnection) -> None:
        conn.send_interim(103, {"Link": "</app.css>; rel=preload"})
        conn.send_interim(103, {"Link": "</app.js>; rel=preload"})
        conn.send_headers(headers={"X-Request-Id": "r1"})
        conn.event("after the hints", id="1")
        conn.end()

    sse_server.route("/s", handler)
    source = fast(sse_server.url_for("/s"), reconnect=False, **transport_options)
    with source, watchdog(source, WAIT):
        events = list(source)
    assert [e.data for e in events] == ["after the hints"]


def test_a_response_head_longer_than_the_read_buffer_is_read_whole(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    # Our connections read the head through a 1 KiB buffer (http.client's
    # default is 8 KiB, a quarter of a started source's memory): a long head,
    # and the first events in the same write, must come through intact.
    long_value = "v" * 20_000
    many = {f"X-Many-{n}": str(n) * 30 for n in range(60)}

    def handler(conn: StreamConnection) -> None:
        conn.send_headers(headers={"X-Long": long_value, **many})
        conn.event("first")
        conn.event("second")
        conn.end()

    sse_server.route("/s", handler)
    source = fast(sse_server.url_for("/s"), reconnect=False, **transport_options)
    with source, watchdog(source, WAIT):
        events = list(source)
    assert [e.data for e in events] == ["first", "second"]
    assert source.response is not None
    assert source.response.headers["X-Long"] == long_value
    assert source.response.headers["X-Many-59"] == "59" * 30


def hints_then_redirect(location: str, code: int = 302) -> Any:
    """A handler that sends ``103 Early Hints``, then a redirect to ``location``."""

    def handler(conn: StreamConnection) -> None:
        conn.send_interim(103)
        conn.respond(code, headers={"Location": location})

    return handler


def test_a_redirect_after_an_interim_response_is_followed(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    # With pool_manager= or session= urllib3 / requests decided on redirects
    # after reading the 103 only: "302 redirect without a usable Location".
    sse_server.route("/s", hints_then_redirect("/real"))
    sse_server.route("/real", sse_server.events([{"data": "moved"}]))
    source = fast(sse_server.url_for("/s"), reconnect=False, **transport_options)
    with source, watchdog(source, WAIT):
        assert [e.data for e in source] == ["moved"]
    assert source.response is not None
    assert source.response.url == sse_server.url_for("/real")


def test_a_redirect_after_an_interim_response_keeps_the_redirect_rules(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    with SSEServer() as other:
        other.route("/s", other.events([{"data": "elsewhere"}]))
        elsewhere = other.url_for("/s").replace("127.0.0.1", "localhost")
        sse_server.route("/s", hints_then_redirect("/see-other", 303))
        sse_server.route("/see-other", hints_then_redirect(elsewhere, 307))
        source = fast(
            sse_server.url_for("/s"),
            method="POST",
            data=b"body",
            headers={"Authorization": "Bearer secret", "Cookie": "session=secret"},
            reconnect=False,
            **transport_options,
        )
        with source, watchdog(source, WAIT):
            assert [e.data for e in source] == ["elsewhere"]
        (see_other,) = sse_server.requests_for("/see-other")
        (redirected,) = other.requests
    # 303 turns a POST into a GET without its body ...
    assert (see_other.method, see_other.body) == ("GET", b"")
    assert see_other.headers.get("content-type") is None
    assert see_other.headers.get("authorization") == "Bearer secret"
    # ... and the credentials stay on their host.
    assert redirected.headers.get("authorization") is None
    assert redirected.headers.get("cookie") is None


def test_redirects_after_interim_responses_are_limited(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    sse_server.route("/loop", hints_then_redirect("/loop"))
    source = fast(sse_server.url_for("/loop"), **transport_options)  # reconnect=True: final
    with source, watchdog(source, WAIT), pytest.raises(SSEConnectionError, match="redirects"):
        list(source)
    assert 10 <= len(sse_server.requests) <= 40


# -- the MIME type ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/event-stream",
        "Text/Event-Stream; charset=utf-8",
        "application/json, text/event-stream",
        'text/event-stream; note="a, b"',
        "text/event-stream, */*",
        "text/event-stream, not a type",
    ],
)
def test_content_types_accepted(
    sse_server: SSEServer, transport_options: dict[str, Any], content_type: str
) -> None:
    # The MIME type is extracted as the Fetch standard does: of a list, the
    # last valid type counts, and parameters are ignored.
    headers = {"Content-Type": content_type}
    sse_server.route("/s", sse_server.events([{"data": "x"}], headers=headers))
    source = fast(sse_server.url_for("/s"), reconnect=False, **transport_options)
    with source, watchdog(source, WAIT):
        assert [e.data for e in source] == ["x"]


@pytest.mark.parametrize(
    "content_type",
    ["text/event-stream, application/json", "text/plain", "text/event-streams", ""],
)
def test_content_types_refused(
    sse_server: SSEServer, transport_options: dict[str, Any], content_type: str
) -> None:
    headers = {"Content-Type": content_type}
    sse_server.route("/s", sse_server.events([{"data": "x"}], headers=headers))
    source = fast(sse_server.url_for("/s"), **transport_options)
    with source, pytest.raises(SSEConnectionError) as caught:
        list(source)
    assert caught.value.status == 200
    assert not caught.value.retryable


# -- the request --------------------------------------------------------------------------------


def test_params_go_into_the_query_before_a_fragment(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    url = sse_server.url_for("/s?a=1#section")
    source = fast(url, params={"b": "2"}, reconnect=False)
    with source, watchdog(source, WAIT):
        list(source)
    (request,) = sse_server.requests_for("/s")
    assert request.query == {"a": ["1"], "b": ["2"]}
    assert source.url == url


@pytest.mark.parametrize(
    ("id_line", "sent"),
    [
        (b"id:  7", b" 7"),  # two spaces: the id is " 7"
        (b"id: 7 ", b"7 "),
        (b"id: \x0b7", b"\x0b7"),  # a vertical tab: whitespace to requests
        ("id: caf\u00e9".encode(), "caf\u00e9".encode()),
    ],
    ids=["leading-space", "trailing-space", "leading-vertical-tab", "non-ascii"],
)
def test_last_event_id_is_sent_byte_exact_and_never_fatal(
    sse_server: SSEServer, transport_options: dict[str, Any], id_line: bytes, sent: bytes
) -> None:
    # requests refuses header values with leading whitespace; the id the
    # server sent once made every reconnect fail, and the source close.
    sse_server.route(
        "/s",
        sse_server.raw([id_line + b"\ndata: first\n\n"]),
        sse_server.events([{"data": "second"}]),
    )
    source = fast(sse_server.url_for("/s"), **transport_options)
    with source, watchdog(source, WAIT):
        assert [e.data for e in take(source, 2)] == ["first", "second"]
    second = sse_server.requests_for("/s")[1]
    assert b"\r\nLast-Event-ID: " + sent + b"\r\n" in second.head + b"\r\n"


# -- compressed bodies ------------------------------------------------------------------------


def _gzip_stream(events: list[bytes], gates: list[threading.Event]) -> Any:
    """A handler gzipping each event with a sync flush, waiting on a gate before each."""

    def handler(conn: StreamConnection) -> None:
        conn.send_headers(headers={"Content-Encoding": "gzip"})
        compressor = zlib.compressobj(wbits=31)
        for event, gate in zip(events, gates):
            gate.wait(WAIT)
            conn.send(compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH))
        conn.send(compressor.flush())
        conn.end()

    return handler


def test_gzip_body_is_decoded_at_once_on_every_transport(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    # requests opens responses with decode_content=False: its gzip bodies
    # reached the parser undecoded, which yielded no event and no error.
    events = [b"data: one\n\n", b"event: e\ndata: two\n\n", b"data: three\n\n"]
    gates = [threading.Event() for _ in events]
    gates[0].set()
    sse_server.route("/s", _gzip_stream(events, gates))
    source = fast(sse_server.url_for("/s"), reconnect=False, **transport_options)
    got = []
    with source, watchdog(source, WAIT):
        for index, event in enumerate(source):
            got.append(event.data)
            # The next event is only sent once this one arrived: nothing waits
            # for later bytes.
            if index + 1 < len(gates):
                gates[index + 1].set()
    assert got == ["one", "two", "three"]


def test_an_encoding_that_cannot_be_decoded_is_a_clear_error(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    sse_server.route(
        "/s", sse_server.raw([b"\x1f\x9d\x90garbage"], headers={"Content-Encoding": "compress"})
    )
    source = EventSource(sse_server.url_for("/s"), **transport_options)
    with source, pytest.raises(SSEConnectionError, match="Content-Encoding 'compress'") as caught:
        list(source)
    assert not caught.value.retryable


# -- connections ---------------------------------------------------------------------------


def test_a_finished_connection_never_serves_another_source(
    sse_server: SSEServer, transport_options: dict[str, Any]
) -> None:
    # urllib3 hands a connection back to its pool as soon as a body has been
    # read to its end; on a shared pool the next source then sent its request
    # on a connection the server was still busy with, and timed out.
    def keep_alive_server(conn: StreamConnection) -> None:
        body = b"data: first\n\n"
        conn.send_headers(
            headers={"Content-Length": str(len(body)), "Connection": "keep-alive"}, chunked=False
        )
        conn.send(body)
        conn.stall()  # a keep-alive server that reads no further request

    sse_server.route("/first", keep_alive_server)
    sse_server.route("/second", sse_server.events([{"data": "second"}]))
    for path, data in (("/first", "first"), ("/second", "second")):
        source = EventSource(
            sse_server.url_for(path), reconnect=False, timeout=(5, 3), **transport_options
        )
        with source:
            assert [e.data for e in source] == [data]
    assert sse_server.connection_count == 2


def test_verify_false_on_a_plain_http_url_works(sse_server: SSEServer) -> None:
    # verify=False is often set once for every URL; on urllib3 before 2.4 it
    # used to reach plain HTTP connections as assert_hostname= and fail with
    # a TypeError (CI runs this at the urllib3 floor).
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    source = fast(sse_server.url_for("/s"), reconnect=False, verify=False)
    assert [e.data for e in source] == ["x"]
