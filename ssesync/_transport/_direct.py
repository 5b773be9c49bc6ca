"""Reading a response body without blocking, for a hub's selector.

A :class:`~ssesync.Hub` reads many sources from one thread, so no read may
wait. urllib3 and http.client send the request and read the response head
(on a worker thread); then :meth:`DirectBody.take` takes the socket over: it
switches it to non-blocking mode, drains what http.client's buffered reader
already holds of the body, and from then on :meth:`DirectBody.read` makes one
``recv`` at a time, which either returns what has arrived or says it would
block. The body's framing (chunked, a ``Content-Length``, or the end of the
connection) is undone here, chunked framing with the same sans-I/O decoder
as the blocking fast path, and so is a ``gzip`` or ``deflate`` encoding.

TLS. A TLS socket may hold decrypted bytes that the kernel no longer shows
as readable; :attr:`DirectBody.pending` says so, and the hub reads on
without waiting for the selector.

Connecting lean. urllib3's pool manager costs about a millisecond of CPU
per request (URL parsing, pools, retries, header checks, then http.client);
a hub that opens thousands of streams spends most of its CPU there.
:func:`open_lean` sends a plain ``http://`` request on a socket of its own,
still with http.client's parser for the response head, and hands anything
it does not serve as urllib3 would (TLS, a body, unusual URLs or header
values, a redirect: the request is sent again through urllib3) to the
transport. The hub uses it for sources on its shared transport only.
"""

from __future__ import annotations

import re
import socket
import ssl
import zlib
from collections.abc import Mapping
from http.client import HTTPException, HTTPResponse, IncompleteRead
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from urllib3 import HTTPHeaderDict
from urllib3 import exceptions as u3exc
from urllib3._version import __version__

from ..exceptions import SSEConnectionError
from ._chunked import ChunkedDecoder, ChunkedEncodingError
from ._connect import Attempt, _open_socket
from ._errors import invalid_chunked_error, redact_url, request_secrets, urllib3_error
from ._protocol import READ_SIZE, Request, Stream
from ._response import _FinalResponse

__all__ = ["DirectBody", "LeanStream", "open_lean"]

#: ``Content-Encoding`` values decoded here, and the zlib window bits for each.
_DECODERS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": 0}
_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class DirectBody:
    """The body of one response, read from its socket without blocking."""

    __slots__ = (
        "_chunks", "_inflate", "_initial", "_left", "_raw_deflate", "_url", "drained",
        "ended", "sock",
    )  # fmt: skip

    def __init__(
        self,
        sock: socket.socket,
        url: str,
        *,
        chunked: bool,
        length: Optional[int],
        encoding: str,
        initial: bytes,
    ) -> None:
        self.sock = sock
        self._url = url
        self._chunks: Optional[ChunkedDecoder] = ChunkedDecoder() if chunked else None
        self._left = length  # bytes of a Content-Length body still to come
        self._inflate: Any = None
        #: For "deflate": False while it may still be raw deflate, not zlib data.
        self._raw_deflate: Optional[bool] = None
        if encoding in _DECODERS:
            self._inflate = zlib.decompressobj(_DECODERS[encoding] or zlib.MAX_WBITS)
            if encoding == "deflate":
                self._raw_deflate = False
        self._initial = initial
        #: Whether the body is complete: nothing more will be read.
        self.ended = False
        #: Whether the last read took less than it could: the socket is empty
        #: for now, and a selector will say when it is not.
        self.drained = False

    @classmethod
    def take(cls, stream: Any, url: str) -> DirectBody:
        """Take over the socket of a :class:`~ssesync._transport.ResponseStream`.

        :raises SSEConnectionError: (not retryable) when the response cannot
            be read this way: not one of urllib3's over http.client, or an
            encoding other than gzip and deflate.
        """
        where = redact_url(url)
        if isinstance(stream, LeanStream):
            fp: Any = stream.response
        else:
            fp = getattr(getattr(stream, "_response", None), "_fp", None)
        reader: Any = getattr(fp, "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if not isinstance(fp, HTTPResponse) or not isinstance(sock, socket.socket):
            raise SSEConnectionError(
                f"the response of {where} cannot be read by a hub", url=where, retryable=False
            )
        encoding = (stream.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding not in _DECODERS and encoding != "identity":
            raise SSEConnectionError(
                f"a hub cannot decode the Content-Encoding {encoding[:40]!r} of {where}",
                url=where,
                retryable=False,
            )
        sock.setblocking(False)
        initial = b""
        try:
            # What http.client's reader holds already; or one recv, which
            # cannot block now. Its buffer is smaller than READ_SIZE.
            initial = reader.read1(READ_SIZE) or b""
        except _WOULD_BLOCK:
            pass
        except OSError as exc:
            error = urllib3_error(exc, url)
            raise error from error.__cause__
        if isinstance(stream, LeanStream):
            # Ours alone: drop http.client's reader and its 8 KiB buffer (a
            # quarter of a source's memory); close() copes with no reader.
            fp.fp = None  # type: ignore[assignment]
        return cls(
            sock,
            url,
            chunked=bool(fp.chunked),
            length=fp.length,
            encoding=encoding,
            initial=initial,
        )

    @property
    def pending(self) -> bool:
        """Whether bytes wait inside the TLS layer, where a selector cannot see them."""
        sock = self.sock
        return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0

    def read(self) -> Optional[bytes]:
        """The payload of what has arrived (possibly ``b""``), or ``None`` if nothing has.

        At the end of the body :attr:`ended` is set and ``b""`` returned.

        :raises SSEConnectionError: when the connection broke, or the body's
            framing is broken (after the payload completed before the break).
        """
        if self.ended:
            return b""
        chunks = self._chunks
        if chunks is not None and chunks.stopped:
            return self._finish(chunks)
        if self._initial:
            data, self._initial = self._initial, b""
            self.drained = False  # the socket itself was not read
        else:
            try:
                data = self.sock.recv(READ_SIZE)
            except _WOULD_BLOCK:
                self.drained = True
                return None
            except OSError as exc:
                error = urllib3_error(exc, self._url)
                raise error from error.__cause__
            if not data:
                return self._at_eof()
            self.drained = len(data) < READ_SIZE
        if chunks is not None:
            try:
                data = chunks.feed(data)
            except ChunkedEncodingError as exc:
                raise invalid_chunked_error(self._url) from exc
            if chunks.done:
                self.ended = True
        elif self._left is not None:
            data = data[: self._left]
            self._left -= len(data)
            if not self._left:
                self.ended = True
        return self._decode(data)

    def _finish(self, chunks: ChunkedDecoder) -> bytes:
        try:
            chunks.feed(b"")  # raises the pending framing error, if any
        except ChunkedEncodingError as exc:
            raise invalid_chunked_error(self._url) from exc
        self.ended = True
        return self._decode(b"")

    def _at_eof(self) -> bytes:
        if self._chunks is not None or self._left:
            # The same report as the blocking read paths give (_errors).
            error = urllib3_error(IncompleteRead(b""), self._url)
            raise error from error.__cause__
        self.ended = True
        return self._decode(b"")

    def _decode(self, data: bytes) -> bytes:
        inflate = self._inflate
        if inflate is None:
            return data
        try:
            out: bytes = inflate.decompress(data)
        except zlib.error:
            if self._raw_deflate is False:
                # "deflate" is zlib data by the RFC, but some servers send it raw.
                self._raw_deflate = True
                self._inflate = inflate = zlib.decompressobj(-zlib.MAX_WBITS)
                return self._decode(data)
            where = redact_url(self._url)
            raise SSEConnectionError(
                f"the body from {where} is not the compressed data it claims", url=where
            ) from None
        if out and self._raw_deflate is False:
            self._raw_deflate = None  # it was zlib data after all: no more guessing
        if self.ended:
            out += inflate.flush()
        return out


#: What a request line or header may hold on the lean path (else urllib3 sends it).
_PLAIN = re.compile(r"[\x21-\x7e]*")
_VALUE = re.compile(r"[\x20-\x7e\t]*")
_USER_AGENT = f"python-urllib3/{__version__}"
_NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class LeanStream:
    """A response opened by :func:`open_lean`: http.client's, on our own socket."""

    __slots__ = ("headers", "response", "sock", "status", "url")

    def __init__(self, response: HTTPResponse, sock: socket.socket, url: str) -> None:
        self.response = response
        self.sock = sock
        self.status = response.status
        self.headers: Mapping[str, str] = HTTPHeaderDict(response.msg.items())
        self.url = url

    def read(self) -> bytes:  # the hub reads the socket itself (DirectBody)
        return self.response.read1(READ_SIZE)

    def abort(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, reuse: bool = False) -> None:
        self.response.close()
        self.sock.close()


def _head(request: Request) -> Optional[bytes]:
    """The request's head as urllib3 would send it, or ``None`` to leave it to urllib3."""
    if request.body is not None or request.method != "GET":
        # Only a safe method: a redirect answer is sent again through urllib3
        # (which follows it), and sending a POST twice could do things twice.
        return None
    parts = urlsplit(request.url)
    if parts.scheme != "http" or "@" in parts.netloc or not parts.hostname:
        return None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    port = parts.port  # (a bad port raises ValueError: urllib3 reports it)
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


def open_lean(
    request: Request, attempt: Attempt, fallback: Callable[[Request, Attempt], Stream]
) -> Stream:
    """Open ``request`` on a socket of our own, or through ``fallback`` (see the module)."""
    try:
        head = _head(request)
    except ValueError:
        head = None
    if head is None:
        return fallback(request, attempt)
    parts = urlsplit(request.url)
    connect, read = request.timeout
    secrets = request_secrets(request, None)
    host = parts.hostname or ""
    try:
        sock = _open_socket(host, parts.port or 80, connect, None, _NO_DELAY, attempt, False)
    except socket.gaierror as exc:
        error = urllib3_error(u3exc.NameResolutionError(host, None, exc), request.url, secrets)  # type: ignore[arg-type]
        raise error from exc
    except socket.timeout as exc:
        error = urllib3_error(u3exc.ConnectTimeoutError(None, str(exc)), request.url, secrets)
        raise error from exc
    except OSError as exc:
        reason = u3exc.NewConnectionError(None, f"Failed to establish a new connection: {exc}")  # type: ignore[arg-type]
        reason.__cause__ = exc
        error = urllib3_error(reason, request.url, secrets)
        raise error from exc
    response: Optional[HTTPResponse] = None
    try:
        sock.settimeout(read)
        sock.sendall(head)
        response = _FinalResponse(sock, method=request.method)
        response.begin()
    except (HTTPException, OSError) as exc:
        if response is not None:
            response.close()
        sock.close()
        error = urllib3_error(exc, request.url, secrets)
        raise error from error.__cause__
    if 300 <= response.status < 400 and response.getheader("Location") is not None:
        response.close()
        sock.close()
        return fallback(request, attempt)  # urllib3 follows redirects, with its rules
    stream = LeanStream(response, sock, request.url)
    attempt.attach_stream(stream)
    return stream
