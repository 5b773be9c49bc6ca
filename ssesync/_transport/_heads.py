"""The heads of the lean path: the request urllib3 would send, the response as http.client reads it.

:func:`plain_head` builds a plain GET's head byte for byte as urllib3 sends
it, or declines (``None``) whenever urllib3 would do something this cannot:
then urllib3 sends the request. :func:`parse_head` parses a response head
that is plainly well-formed with two regular expressions, and hands any
other to http.client itself, from the bytes received, so that an odd head
passes or fails exactly as it does on the other paths.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from http.client import HTTPResponse
from typing import Optional
from urllib.parse import urlsplit

from urllib3 import HTTPHeaderDict
from urllib3._version import __version__

from ._protocol import Request
from ._response import is_interim

__all__ = ["Head", "final_head", "header_dict", "parse_head", "plain_head"]

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
#: a line with one goes to http.client).
STATUS = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [^\r\n]*)?\r\n")
_HEADER = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*)\r\n")


def plain_head(request: Request) -> Optional[bytes]:
    """The request's head as urllib3 would send it, or ``None`` to leave it to urllib3."""
    if request.body is not None or request.method != "GET":
        # Only a safe method: a redirect answer is sent again through urllib3
        # (which follows it), and sending a POST twice could do things twice.
        return None
    try:
        parts = urlsplit(request.url)
        port = parts.port  # (a bad port raises ValueError: urllib3 reports it)
    except ValueError:
        return None
    if parts.scheme != "http" or "@" in parts.netloc or not parts.hostname:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not _PLAIN.fullmatch(target) or not _PLAIN.fullmatch(parts.netloc):
        return None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
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
        lines.append(f"{name}: {text}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


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


def head_end(data: bytes) -> int:
    """Where the head in ``data`` ends (after its blank line), or -1 if it has not yet.

    As http.client reads it: the status line, then lines up to the first
    empty one (``CRLF`` or a bare ``LF``).
    """
    first = data.find(b"\n")
    if first < 0:
        return -1
    crlf, lf = data.find(b"\n\r\n", first), data.find(b"\n\n", first)
    ends = [at + size for at, size in ((crlf, 3), (lf, 2)) if at >= 0]
    return min(ends) if ends else -1


def head_too_big(data: bytes) -> bool:
    """Whether an unfinished head already breaks http.client's limits (it will say how)."""
    return len(data) - data.rfind(b"\n") > _MAX_LINE + 1 or data.count(b"\n") > _MAX_HEADERS + 1


def final_head(data: bytes, ended: bool) -> Optional[tuple[bytes, bytes]]:
    """The final response head at the start of ``data``, and the bytes after it.

    Interim heads (``1xx`` but ``101``) before it are passed over, as
    http.client's reader is made to (``_response._FinalResponse``). ``None``
    while the head is incomplete. At the end of the connection (``ended``),
    or once an unfinished head breaks http.client's limits, what there is
    counts as the head: http.client then says what is wrong with it.
    """
    while True:
        end = head_end(data)
        if end < 0:
            return (data, b"") if ended or head_too_big(data) else None
        status = STATUS.match(data)
        if status is None or not is_interim(int(status.group(2))):
            return data[:end], data[end:]
        data = data[end:]


def parse_head(head: bytes) -> Head:
    """Parse a final response head (the status line through the blank line).

    :raises HTTPException: as http.client raises it for a head it refuses.
    """
    status = STATUS.match(head)
    if status is not None and len(head) <= _MAX_LINE:
        pos, end = status.end(), len(head) - 2
        fields: list[tuple[str, str]] = []
        match = _HEADER.match
        while pos < end:
            line = match(head, pos)
            if line is None:
                break
            fields.append((line.group(1).decode("latin-1"), line.group(2).decode("latin-1")))
            pos = line.end()
        if pos == end and head[end:] == b"\r\n" and len(fields) <= _MAX_HEADERS:
            return _head_of(int(status.group(2)), status.group(1) == b"1", fields)
    return _parsed_by_http_client(head)


def _head_of(status: int, http11: bool, fields: list[tuple[str, str]]) -> Head:
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
    del http11  # http.client's will_close changes nothing here: the hub never reuses one
    return Head(status, header_dict(fields), chunked, length)


class _Recorded:
    """A stand-in socket whose ``makefile`` plays back bytes already received."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(io.BytesIO(self._data))


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
