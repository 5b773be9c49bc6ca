"""What counts as the response of an event stream.

The status and content-type rules every backend shares (:func:`check_response`,
with the MIME type read as the Fetch standard reads it), and the interim
``1xx`` responses that http.client would otherwise hand back as final
(:class:`_FinalResponse` for our connections, :func:`skip_interim` for a
caller's).
"""

from __future__ import annotations

import logging
import re
from http.client import HTTPMessage, HTTPResponse
from typing import Any

import urllib3
from urllib3 import HTTPHeaderDict

from .._retry import parse_retry_after
from ..exceptions import SSEConnectionError
from ._decoding import body_encoding
from ._errors import redact_url
from ._heads import quick_head
from ._protocol import Stream, is_interim

__all__ = ["RETRYABLE_STATUSES", "check_response", "is_interim", "mime_essence", "skip_interim"]

log = logging.getLogger("ssesync")

#: Statuses worth retrying: the server is overloaded, restarting or throttling.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class _FinalResponse(HTTPResponse):
    """http.client's response, reading past every interim response.

    http.client skips ``100 Continue`` itself but hands back any other
    interim response, such as ``103 Early Hints``, as if it were final; the
    final response then lies unread behind it. Our connections use this
    class, so urllib3 sees the final response (and follows its redirects).
    """

    def __init__(self, sock: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(_SmallReads(sock), *args, **kwargs)  # type: ignore[arg-type]

    def begin(self) -> None:
        unread: object = self.headers  # (None until a head has been read)
        if unread is None and QUICK_HEADS and self._begin_quickly():
            return
        super().begin()
        while is_interim(self.status):
            log.debug("skipped an interim %d response", self.status)
            self.headers = None  # type: ignore[assignment]  # begin() reads the next head
            super().begin()

    def _begin_quickly(self) -> bool:
        """Take a plain final head from the read buffer whole, without the email parser.

        http.client parses every head with the ``email`` package, which costs
        more than the rest of opening a stream. A head that arrived whole in
        the reader's buffer and is plainly well-formed (the hub's quick
        parser, :func:`~ssesync._transport._heads.quick_head`, held to
        http.client's by tests) is parsed here and set up as ``begin()``
        sets it up; any other head, or one still arriving, is left to
        ``begin()``, with nothing consumed.
        """
        fp = self.fp
        peek = getattr(fp, "peek", None)
        if peek is None or self.debuglevel > 0:
            return False
        buffered = peek(1)  # (reads the socket once if nothing is buffered, as begin() would)
        end = buffered.find(b"\r\n\r\n")
        quick = quick_head(buffered[: end + 4]) if end >= 0 else None
        if quick is None or is_interim(quick[0].status):
            return False
        head, fields, version, reason = quick
        for name, value in fields:
            # (the email parser looks into these types: its defects reach urllib3's log)
            if name.lower() == "content-type" and value.lower().startswith(_EMAIL_TYPES):
                return False
        message = HTTPMessage()
        for name, value in fields:
            message.set_raw(name, value)
        message.set_payload("")  # (what the email parser leaves after the fields)
        self.headers = self.msg = message
        self.code = self.status = head.status
        self.reason, self.version = reason, version
        self.chunked = head.chunked
        if head.chunked:
            self.chunk_left = None
        self.will_close = self._check_close()  # type: ignore[attr-defined]
        self.length = 0 if self._method == "HEAD" else head.length  # type: ignore[attr-defined]
        if not self.will_close and not self.chunked and self.length is None:
            self.will_close = True
        fp.read(end + 4)  # (all in the buffer: no read of the socket)
        return True


#: Content types whose heads the ``email`` parser treats as more than fields.
_EMAIL_TYPES = ("multipart/", "message/")

#: Parse plain response heads in :meth:`_FinalResponse._begin_quickly` (tests
#: turn it off to compare with http.client's own parsing).
QUICK_HEADS = True


#: The read buffer of http.client's reader on our connections. It reads the
#: response head (rarely over a kilobyte; longer lines still read whole);
#: the body is read past it (``_body``), and read1() of a bigger size skips
#: the buffer. At http.client's default of 8 KiB it was a quarter of a
#: started source's memory.
HEAD_BUFFER = 1024


class _SmallReads:
    """A socket stand-in for http.client whose ``makefile`` has a small buffer."""

    __slots__ = ("_sock",)

    def __init__(self, sock: Any) -> None:
        self._sock = sock

    def makefile(self, mode: str) -> Any:
        return self._sock.makefile(mode, buffering=HEAD_BUFFER)


def skip_interim(response: urllib3.BaseHTTPResponse) -> bool:
    """Read past interim responses on a connection that is not ours.

    A caller's pool manager or session has http.client's own response class
    (see :class:`_FinalResponse`), so an interim response arrives here as if
    it were final. The final one follows on the same connection: read its
    head into the same http.client response, and set the urllib3 response
    up again around it. urllib3 or requests decided on redirects when they
    had seen only the interim status, so a redirect in the final head is
    followed by the transport itself. Returns whether anything was skipped.
    """
    fp = getattr(response, "_fp", None)
    if not is_interim(response.status) or not isinstance(fp, HTTPResponse):
        return False
    while is_interim(fp.status):
        log.debug("skipped an interim %d response", fp.status)
        fp.headers = None  # type: ignore[assignment]
        fp.begin()
    urllib3.HTTPResponse.__init__(
        response,  # type: ignore[arg-type]
        body=fp,
        headers=HTTPHeaderDict(fp.msg.items()),
        status=fp.status,
        version=fp.version,
        reason=fp.reason,
        preload_content=False,
        decode_content=response.decode_content,
        original_response=fp,
        pool=getattr(response, "_pool", None),
        connection=getattr(response, "_connection", None),
        retries=response.retries,
        request_url=getattr(response, "_request_url", None),
        sock_shutdown=getattr(response, "_sock_shutdown", None),
    )
    return True


def check_response(stream: Stream, url: str) -> None:
    """Apply the status and content-type rules to an opened response.

    ``200`` with ``text/event-stream`` passes; everything else raises
    :class:`SSEConnectionError`, marked retryable for ``5xx``, ``408`` and
    ``429`` (with the server's ``Retry-After``). ``204`` is left to the
    caller, for whom it means a clean end.
    """
    status = stream.status
    headers = stream.headers
    if status == 200:
        content_type = headers.get("Content-Type") or ""
        plain = content_type == "text/event-stream"  # (most servers: no parsing needed)
        if not plain and mime_essence(content_type) != "text/event-stream":
            where = redact_url(url)
            raise SSEConnectionError(
                f"expected Content-Type text/event-stream from {where}, "
                f"got {content_type[:100]!r}",
                status=status,
                headers=headers,
                url=where,
                retryable=False,
            )
        encoding = body_encoding(headers)
        decodable = ("identity", *urllib3.HTTPResponse.CONTENT_DECODERS)
        if any(part.strip() not in decodable for part in encoding.split(",")):
            where = redact_url(url)
            raise SSEConnectionError(
                f"{where} sent the stream with Content-Encoding {encoding[:40]!r}, "
                "which urllib3 here cannot decode",
                status=status,
                headers=headers,
                url=where,
                retryable=False,
            )
        return
    where = redact_url(url)
    if 300 <= status < 400:
        message = f"HTTP {status} redirect from {where} without a usable Location header"
    else:
        message = f"HTTP {status} from {where}"
    raise SSEConnectionError(
        message,
        status=status,
        headers=headers,
        url=where,
        retryable=status >= 500 or status in RETRYABLE_STATUSES,
        retry_after=parse_retry_after(headers.get("Retry-After")),
    )


_MIME_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def mime_essence(value: str) -> str:
    """The MIME type of a ``Content-Type`` value, lower case, without parameters.

    As the Fetch standard extracts it: of a comma-separated list (a header
    sent twice, or a server's odd value), the last valid type counts, and
    ``*/*`` is not one. Returns ``""`` when there is none.
    """
    essence = ""
    for item in _split_outside_quotes(value):
        mime = item.split(";", 1)[0].strip(" \t\r\n").lower()
        kind, slash, subtype = mime.partition("/")
        valid = slash and _MIME_TOKEN.fullmatch(kind) and _MIME_TOKEN.fullmatch(subtype)
        if valid and mime != "*/*":
            essence = mime
    return essence


def _split_outside_quotes(value: str) -> list[str]:
    if '"' not in value:
        return value.split(",")
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items
