"""The heads of the lean path: the request urllib3 would send, the response as http.client reads it.

:func:`plain_head` builds a plain GET's head byte for byte as urllib3 sends
it, or declines (``None``) whenever urllib3 would do something this cannot:
then urllib3 sends the request. :func:`parse_head` parses a response head
that is plainly well-formed with two regular expressions, and hands any
other to http.client itself, from the bytes received, so that an odd head
passes or fails exactly as it does on the other paths.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterable
from http.client import HTTPException, HTTPResponse, LineTooLong, UnknownProtocol
from typing import NamedTuple, Optional

from urllib3 import HTTPHeaderDict
from urllib3._version import __version__
from urllib3.util import SKIP_HEADER, parse_url

from ._protocol import Request, is_interim

__all__ = [
    "Head", "HeadReader", "PlainRequest", "header_dict", "parse_head", "plain_head", "quick_head",
]

#: What a request line or header may hold on the lean path (else urllib3 sends it).
_PLAIN = re.compile(r"[\x21-\x7e]*")
_VALUE = re.compile(r"[\x20-\x7e\t]*")
_USER_AGENT = f"python-urllib3/{__version__}"

#: http.client's limits on a response head: its line length and header count.
_MAX_LINE = 65536
_MAX_HEADERS = 100

#: A head the quick parser takes: ``HTTP/1.0`` or ``1.1``, a three-digit
#: status, and header lines of a token, a colon and a value, each ended by
#: CRLF (a bare CR inside a value ends the line for http.client's parser, so
#: a line with one goes to http.client). The reason phrase holds no
#: ``\x1c``-``\x1f``: ``str.split`` takes them for whitespace and ``int()``
#: does not, so http.client refuses a status line whose reason is only those.
_STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n\x1c-\x1f]*)?\r\n")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*)\r\n")


class PlainRequest(NamedTuple):
    """A request the lean path can send: its head, and where to connect."""

    head: bytes
    host: str  # as the resolver gets it (no brackets)
    port: int


def plain_head(request: Request) -> Optional[PlainRequest]:
    """The request's head as urllib3 would send it, or ``None`` to leave it to urllib3.

    The URL is read by urllib3's own parser, so the target is what urllib3
    sends: dot segments removed, characters it escapes escaped, the host in
    lower case (a trailing dot kept for the resolver, left out of ``Host``).
    """
    if request.body is not None or request.method != "GET":
        return None  # only a plain GET: anything else is urllib3's
    where = _plain_target(request.url)
    if where is None:
        return None
    target, dns_host, port = where
    host = dns_host.rstrip(".")
    lines = [f"{request.method} {target} HTTP/1.1"]
    names = {name.lower() for name in request.headers}
    if "host" not in names:
        lines.append(f"Host: {host}" if port in (None, 80) else f"Host: {host}:{port}")
    if "accept-encoding" not in names:
        lines.append("Accept-Encoding: identity")
    if "user-agent" not in names:
        lines.append(f"User-Agent: {_USER_AGENT}")
    for name, value in request.headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if not _PLAIN.fullmatch(name) or ":" in name or not _VALUE.fullmatch(text):
            return None
        if text == SKIP_HEADER:
            return None  # urllib3 leaves such a header out: let it
        lines.append(f"{name}: {text}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return PlainRequest(head, dns_host.strip("[]"), port or 80)


@functools.lru_cache(maxsize=256)
def _plain_target(url: str) -> Optional[tuple[str, str, Optional[int]]]:
    """The target, host (for the resolver) and port urllib3 makes of a plain ``http://`` URL.

    Cached: every attempt of a source, and often many sources, use the same
    URL, and urllib3's parser costs as much as the rest of the request.
    """
    try:
        parsed = parse_url(url)
    except ValueError:  # (urllib3's LocationParseError is one)
        return None
    if parsed.scheme != "http" or parsed.auth is not None or not parsed.host:
        return None
    target, host = parsed.request_uri, parsed.host
    if not _PLAIN.fullmatch(target) or not _PLAIN.fullmatch(host):
        return None
    return target, host, parsed.port


def header_dict(fields: Iterable[tuple[str, str]]) -> HTTPHeaderDict:
    """An :class:`~urllib3.HTTPHeaderDict` of ``fields``, repeats kept, in order.

    ``HTTPHeaderDict(fields)`` does the same for a list, but first tests it
    against a runtime-checkable protocol, which costs more than the rest of
    parsing a head.
    """
    headers = HTTPHeaderDict()
    add = headers.add
    for name, value in fields:
        add(name, value)
    return headers


class Head:
    """A parsed response head: what the loop and the body reader need of it."""

    __slots__ = ("chunked", "headers", "length", "status")

    def __init__(self, status: int, headers: HTTPHeaderDict, chunked: bool, length: Optional[int]):
        self.status = status
        self.headers = headers
        self.chunked = chunked
        self.length = length


def status_of(line: bytes) -> Optional[int]:
    """The status http.client reads off a status line; ``None`` where it refuses the line."""
    if len(line) > _MAX_LINE:
        return None
    parts = str(line, "iso-8859-1").split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        return None
    try:
        status = int(parts[1])
    except ValueError:
        return None
    return status if 100 <= status <= 999 else None


def _check_interim(head: bytes, status: int) -> None:
    """Raise what http.client raises reading past this interim head, if anything.

    ``100 Continue`` has its header lines skipped, any other interim
    response (``_response._FinalResponse``) is parsed, after a check of its
    HTTP version; both count and measure the lines.
    """
    first = head.find(b"\n") + 1
    version = str(head[:first], "iso-8859-1").split(None, 1)[0]
    known = version in ("HTTP/1.0", "HTTP/0.9") or version.startswith("HTTP/1.")
    if status != 100 and not known:
        raise UnknownProtocol(version)
    pieces = head[first:].split(b"\n")
    lines = [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])
    for count, line in enumerate(lines, 1):
        if len(line) > _MAX_LINE:
            raise LineTooLong("header line")
        if count > _MAX_HEADERS:
            raise HTTPException(f"got more than {_MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n"):
            return


class HeadReader:
    """Finds the final response head in the bytes of a connection as they arrive.

    As http.client reads a head: the status line, then lines up to the first
    empty one (``CRLF`` or a bare ``LF``); interim heads (``1xx`` but
    ``101``) before the final one are checked as http.client checks them
    and passed over, as our connections' reader does
    (``_response._FinalResponse``). At the end of the connection, or once
    an unfinished head breaks http.client's limits, what there is counts as
    the head, and :func:`parse_head` (http.client) says what is wrong with
    it. The work per read is bounded by the read, however the head is cut.
    """

    __slots__ = ("_buffer", "_first", "_lines", "_scanned")

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._first = -1  # where the status line ends, once it has
        self._scanned = 0  # how far the search for the blank line got
        self._lines = 0  # line ends in the buffer

    def feed(self, data: bytes) -> Optional[tuple[bytes, bytes]]:
        """Take the next bytes (``b""``: the connection ended).

        :returns: the final head and the bytes after it (the body's first),
            or ``None`` while it is incomplete.
        :raises HTTPException: for an interim head http.client refuses.
        """
        ended = not data
        buffer = self._buffer
        buffer += data
        self._lines += data.count(b"\n")
        while True:
            end = self._head_end()
            if end < 0:
                if not ended and not self._too_big():
                    return None
                end = len(buffer)
            head = bytes(buffer[:end])
            del buffer[:end]
            self._first, self._scanned, self._lines = -1, 0, buffer.count(b"\n")
            status = status_of(head[: head.find(b"\n") + 1 or len(head)])
            if status is None or not is_interim(status):
                rest = bytes(buffer)
                buffer.clear()
                return head, rest
            _check_interim(head, status)

    def _head_end(self) -> int:
        buffer = self._buffer
        if self._first < 0:
            self._first = buffer.find(b"\n", self._scanned)
            if self._first < 0:
                self._scanned = len(buffer)
                return -1
            self._scanned = self._first
        start = max(self._scanned - 2, self._first)
        crlf, lf = buffer.find(b"\n\r\n", start), buffer.find(b"\n\n", start)
        ends = [at + size for at, size in ((crlf, 3), (lf, 2)) if at >= 0]
        if not ends:
            self._scanned = len(buffer)
            return -1
        return min(ends)

    def _too_big(self) -> bool:
        buffer = self._buffer
        return len(buffer) - buffer.rfind(b"\n") > _MAX_LINE + 1 or self._lines > _MAX_HEADERS + 1


def parse_head(head: bytes) -> Head:
    """Parse a final response head (the status line through the blank line).

    :raises HTTPException: as http.client raises it for a head it refuses.
    """
    quick = quick_head(head)
    return quick[0] if quick is not None else _parsed_by_http_client(head)


def quick_head(head: bytes) -> Optional[tuple[Head, list[tuple[str, str]], int, str]]:
    """A plainly well-formed head, parsed as http.client would parse it; else ``None``.

    :returns: the :class:`Head`, its header fields in order, the HTTP version
        as http.client gives it (``10`` or ``11``) and the status line's
        reason phrase.
    """
    status = _STATUS.match(head)
    if status is None or len(head) > _MAX_LINE:
        return None
    pos, end = status.end(), len(head) - 2
    fields: list[tuple[str, str]] = []
    match = _HEADER.match
    while pos < end:
        line = match(head, pos)
        if line is None:
            return None
        fields.append((line.group(1).decode("latin-1"), line.group(2).decode("latin-1")))
        pos = line.end()
    # (http.client counts the blank line among its 100 header lines)
    if pos != end or head[end:] != b"\r\n" or len(fields) >= _MAX_HEADERS:
        return None
    reason = str(head[status.end(2) : status.end() - 2], "latin-1").strip()
    version = 11 if status.group(1) == b"1" else 10
    return _head_of(int(status.group(2)), fields), fields, version, reason


def _head_of(status: int, fields: list[tuple[str, str]]) -> Head:
    """What http.client's ``begin()`` makes of these fields (its header lookups take the first)."""
    first: dict[str, str] = {}
    for name, value in fields:
        first.setdefault(name.lower(), value)
    encoding = first.get("transfer-encoding")
    chunked = bool(encoding) and encoding.lower() == "chunked"  # type: ignore[union-attr]
    length: Optional[int] = None
    text = first.get("content-length")
    if text and not chunked:
        try:
            length = int(text)
        except ValueError:
            length = None
        else:
            length = length if length >= 0 else None
    if status in (204, 304) or 100 <= status < 200:
        length = 0
    return Head(status, header_dict(fields), chunked, length)


class _Recorded:
    """A stand-in socket whose ``makefile`` plays back bytes already received."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str, buffering: int = io.DEFAULT_BUFFER_SIZE) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data), buffering)


def _parsed_by_http_client(head: bytes) -> Head:
    response = HTTPResponse(_Recorded(head), method="GET")  # type: ignore[arg-type]
    try:
        response.begin()
        return Head(
            response.status,
            header_dict(response.msg.items()),
            bool(response.chunked),
            response.length,
        )
    finally:
        response.close()
