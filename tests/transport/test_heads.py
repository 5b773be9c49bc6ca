"""The lean path's response heads (``_transport._heads``) against http.client's.

A hub opens plain ``http://`` streams without urllib3 or http.client, and
parses their response heads with a quick parser of its own for the common,
well-formed case. That parser is only as good as its agreement with
http.client, which every other path uses: for any head — odd status lines,
folded or bare-LF lines, characters ``str.splitlines`` breaks on, repeated
or malformed framing headers, interim responses first, cut into reads at
any point — it must find the same end of the head, and the same status,
headers, framing and error.
"""

from __future__ import annotations

import io
from http.client import HTTPResponse
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from urllib3 import HTTPHeaderDict

from ssesync._transport import _heads, _response
from ssesync._transport._heads import (
    HeadReader,
    _parsed_by_http_client,
    _Recorded,
    parse_head,
    plain_head,
)
from ssesync._transport._protocol import Request
from ssesync._transport._response import _FinalResponse

STATUS_LINES = [
    b"HTTP/1.1 200 OK",
    b"HTTP/1.0 200 OK",
    b"HTTP/1.1 200",
    b"HTTP/1.1 200 ",
    b"HTTP/1.1 200 \x1c",  # whitespace to str.split, not to int(): http.client refuses it
    b"HTTP/1.1 200 \x1f ",
    b"HTTP/1.1 200 OK\x1e",
    b"HTTP/1.1 204 No Content",
    b"HTTP/1.1 304 Not Modified",
    b"HTTP/1.1 404 Not Found",
    b"HTTP/1.1 301 Moved",
    b"HTTP/1.1 0200 OK",
    b"HTTP/1.1  200 OK",
    b"HTTP/2 200",
    b"HTTP/1.9 200 OK",
    b"HTTP/1.1 abc",
    b"HTTP/1.1 99 Low",
    b"ICY 200 OK",
    b"",
]
NAMES = [
    b"Content-Type",
    b"content-length",
    b"Content-Length",
    b"Transfer-Encoding",
    b"transfer-encoding",
    b"Connection",
    b"Location",
    b"X-A",
    b"x-a",
    b"Content-Encoding",
]
VALUES = [
    b"chunked",
    b"Chunked",
    b"gzip, chunked",
    b"12",
    b" 12",
    b"+5",
    b"-1",
    b"1_0",
    b"abc",
    b"",
    b"text/event-stream",
    b"multipart/mixed; boundary=x",
    b"message/http",
    b"close",
    b"/elsewhere",
]
ODD_LINES = [
    b" folded onto the last",
    b"\tfolded with a tab",
    b"No colon at all",
    b"Bad Name: x",
    b": no name",
    b"X-Trail: spaces after  ",
    b"X-Tab:\tvalue\t",
    b"X-Ff: a\x0cb",
    b"X-Nel: a\x85b",
    b"X-Latin: caf\xe9",
    b"X-Colons: a:b:c",
    b"X-Cr: a\rb",
]

header_lines = st.one_of(
    st.builds(
        lambda name, sep, value: name + sep + value,
        st.sampled_from(NAMES),
        st.sampled_from([b": ", b":", b":  ", b":\t"]),
        st.sampled_from(VALUES),
    ),
    st.sampled_from(ODD_LINES),
)


@st.composite
def heads(draw: Any, status_lines: list[bytes] = STATUS_LINES) -> bytes:
    """A response head: a status line, header lines and the blank line, mostly CRLF."""
    ends = st.sampled_from([b"\r\n"] * 6 + [b"\n"])
    lines = [draw(st.sampled_from(status_lines))]
    lines += draw(st.lists(header_lines, max_size=8))
    return b"".join(line + draw(ends) for line in lines) + draw(ends)


def outcome(parse: Any, head: bytes) -> Any:
    """What a parser makes of ``head``: the parts that matter, or the error it raises."""
    try:
        parsed = parse(head)
    except Exception as exc:  # compared by type and message
        return (type(exc), str(exc))
    if parsed is None or isinstance(parsed, tuple):
        return parsed
    return (parsed.status, list(parsed.headers.items()), parsed.chunked, parsed.length)


@given(heads())
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 9\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nX-Many: a\r\n" + b"X-Many: a\r\n" * 100 + b"\r\n")
@example(b"HTTP/1.1 200 OK\r\n" + b"X-Many: a\r\n" * 100 + b"\r\n")  # one line too many
@example(b"HTTP/1.1 200 OK\r\n" + b"X-Many: a\r\n" * 99 + b"\r\n")
@example(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nX-Ff: a\x0cb\r\nX-Nel: c\x85d\r\n\r\n")
@example(b"HTTP/1.1 200 OK\r\nX-Trail: a  \r\n folded\r\n\r\n")
def test_the_quick_head_parser_agrees_with_http_client(head: bytes) -> None:
    assert outcome(parse_head, head) == outcome(_parsed_by_http_client, head)


PLAIN_HEADS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",  # no length, as http.client says
    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
    b"HTTP/1.0 204 No Content\r\n\r\n",
]


@pytest.mark.parametrize("head", PLAIN_HEADS)
def test_plain_heads_take_the_quick_parser_and_agree(
    head: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The comparison above holds only where the quick parser answers itself:
    # these heads must not fall back to http.client.
    expected = outcome(_parsed_by_http_client, head)

    def no_fallback(_head: bytes) -> None:
        raise AssertionError("fell back to http.client")

    monkeypatch.setattr(_heads, "_parsed_by_http_client", no_fallback)
    assert outcome(parse_head, head) == expected


INTERIM = [
    b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
    b"HTTP/1.1 100 Continue\n\n",
    b"HTTP/1.1 103 Early Hints\nLink: <a>\n\n",
    b"HTTP/1.1  103 Early Hints\r\n\r\n",
    b"HTTP/1.1 0103 Early\r\n\r\n",
    b"HTTP/1.1 103\tEarly\r\n\r\n",
    b"HTTP/1.2 103 Early\r\n\r\n",
    b"HTTP/2 103 Early\r\n\r\n",
    b"HTTP/2 100 Continue\r\n\r\n",
    b"HTTP/1.1 102 Processing\r\n" + b"Link: <a>\r\n" * 99 + b"\r\n",
    b"HTTP/1.1 103 Early Hints\r\n" + b"Link: <a>\r\n" * 150 + b"\r\n",
    b"HTTP/1.1 100 Continue\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n",
]
FINAL_STATUS = [line for line in STATUS_LINES if not line.startswith(b"HTTP/1.1 1")]


@given(
    interim=st.lists(st.sampled_from(INTERIM), max_size=2),
    head=heads(FINAL_STATUS),
    body=st.sampled_from([b"", b"data: x\n\n", b"\r\n\r\ndata: x\n\n", b"5\r\nabcde\r\n"]),
    cuts=st.lists(st.integers(0, 400), max_size=6),
)
def test_the_head_ends_where_http_client_ends_it_however_it_arrives(
    interim: list[bytes], head: bytes, body: bytes, cuts: list[int]
) -> None:
    stream = b"".join(interim) + head + body
    # Fed in reads cut anywhere, the head is found once, the same as in one read.
    # The bytes after it that arrived with it are the body's first; the body
    # reader takes the rest.
    def read(pieces: list[bytes]) -> Any:
        reader = HeadReader()
        for number, piece in enumerate(pieces):
            found = reader.feed(piece) if piece else None
            if found is not None:
                return found[0], found[1] + b"".join(pieces[number + 1 :])
        return reader.feed(b"")

    cut = [0, *sorted(cuts), len(stream)]
    pieces = [stream[a:b] for a, b in zip(cut, cut[1:])]
    found = outcome(read, pieces)
    assert found == outcome(read, [stream])
    final, rest = found if isinstance(found[0], bytes) else (None, None)
    # ... and where http.client (reading past interim responses) ends it too.
    response = _FinalResponse(_Recorded(stream), method="GET")  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_response, "QUICK_HEADS", False)  # http.client's own parsing
        failed = outcome(lambda _: response.begin(), b"")
    if failed is not None:  # http.client refused it: so must the lean path
        assert (found if final is None else outcome(parse_head, final)) == failed
        return
    assert final is not None
    assert response.fp is not None
    assert rest == response.fp.read()
    headers = list(HTTPHeaderDict(response.msg.items()).items())
    expected = (response.status, headers, bool(response.chunked), response.length)
    assert outcome(parse_head, final) == expected


@pytest.mark.parametrize(
    ("url", "host", "port", "line", "host_header"),
    [
        ("http://Example.COM./a/../b", "example.com.", 80, b"GET /b HTTP/1.1", b"Host: example.com"),  # noqa: E501
        ("http://[::1]:8080/s?x=%7c", "::1", 8080, b"GET /s?x=%7C HTTP/1.1", b"Host: [::1]:8080"),
        ("http://h:80", "h", 80, b"GET / HTTP/1.1", b"Host: h"),
    ],
)
def test_the_lean_request_connects_where_urllib3_would(
    url: str, host: str, port: int, line: bytes, host_header: bytes
) -> None:
    # As urllib3's connection: the resolver gets the host as written (a
    # trailing dot picks the fully qualified name), the Host header without it.
    plain = plain_head(Request("GET", url, {}, None, (1.0, 1.0)))
    assert plain is not None
    assert (plain.host, plain.port) == (host, port)
    first, second = plain.head.split(b"\r\n")[:2]
    assert (first, second) == (line, host_header)


class _Arriving(io.RawIOBase):
    """A connection's bytes as they arrive: one piece per read."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = [piece for piece in pieces if piece]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if not self._pieces:
            return 0
        piece = self._pieces.pop(0)
        taken, rest = piece[: len(buffer)], piece[len(buffer) :]
        if rest:
            self._pieces.insert(0, rest)
        buffer[: len(taken)] = taken
        return len(taken)


class _Connection:
    """A stand-in socket for http.client, its bytes cut into reads."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    def makefile(self, mode: str, buffering: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
        return io.BufferedReader(_Arriving(self._pieces), buffering)


def payload_shape(payload: Any) -> Any:
    """A message's payload, comparable: text as it is, parts by their fields."""
    if payload is None or isinstance(payload, str):
        return payload
    return [list(part.items()) for part in payload]


def begun(pieces: list[bytes], method: str, quick: bool) -> Any:
    """What our connections' response makes of a head: its state and what is left, or the error."""
    response = _FinalResponse(_Connection(pieces), method=method)  # type: ignore[arg-type]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_response, "QUICK_HEADS", quick)
        try:
            response.begin()
        except Exception as exc:  # compared by type and message
            return (type(exc), str(exc))
    assert response.fp is not None
    return (
        response.status, response.reason, response.version, list(response.msg.items()),
        [(type(defect), str(defect)) for defect in response.msg.defects],
        response.msg.is_multipart(), payload_shape(response.msg.get_payload()),
        response.chunked, response.chunk_left, response.length, response.will_close,
        response.fp.read(),
    )  # fmt: skip


@given(
    interim=st.lists(st.sampled_from(INTERIM), max_size=1),
    head=heads(),
    connection=st.sampled_from([b"", b"Connection: close\r\n", b"Connection: keep-alive\r\n"]),
    body=st.sampled_from([b"", b"data: x\n\n", b"5\r\nabcde\r\n0\r\n\r\n"]),
    method=st.sampled_from(["GET", "HEAD"]),
    cuts=st.lists(st.integers(0, 400), max_size=4),
)
@example([], b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n", b"", b"", "GET", [])
@example([], b"HTTP/1.0 200  Fine  \r\n\r\n", b"Connection: keep-alive\r\n", b"", "GET", [])
@example([], b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n", b"", b"data", "HEAD", [])
@example([], b"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed\r\n\r\n", b"", b"", "GET", [])
@example([], b"HTTP/1.1 200 OK\r\ncontent-type: Message/http\r\n\r\n", b"", b"", "GET", [])
@example([], b"HTTP/1.1 200 OK\r\nX: " + b"a" * 2000 + b"\r\n\r\n", b"", b"", "GET", [])
def test_our_connections_read_a_head_as_http_client_does(
    interim: list[bytes], head: bytes, connection: bytes, body: bytes, method: str,
    cuts: list[int],
) -> None:  # fmt: skip
    # The quick parsing of a head (and its fallback to http.client while the
    # head is still arriving or is not plain) must leave the response as
    # http.client's begin() does: every attribute the body's readers use,
    # the same bytes unread, or the same error.
    status_line, _, rest = head.partition(b"\n")
    stream = b"".join(interim) + status_line + b"\n" + connection + rest + body
    cut = [0, *sorted(cuts), len(stream)]
    pieces = [stream[a:b] for a, b in zip(cut, cut[1:])]
    assert begun(pieces, method, quick=True) == begun(pieces, method, quick=False)


@pytest.mark.parametrize("head", PLAIN_HEADS)
def test_plain_heads_on_our_connections_skip_the_email_parser(
    head: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = begun([head + b"data: x\n\n"], "GET", quick=False)

    def no_fallback(_self: Any) -> None:
        raise AssertionError("parsed by http.client")

    monkeypatch.setattr(HTTPResponse, "begin", no_fallback)
    assert begun([head + b"data: x\n\n"], "GET", quick=True) == expected
