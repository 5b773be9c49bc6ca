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

A plain ``http://`` stream opened on the hub's own thread
(``_transport._lean``) arrives as a :class:`LeanStream`, with its body
reader made already.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Mapping
from http.client import HTTPResponse, IncompleteRead
from typing import Any, Optional

from ..exceptions import SSEConnectionError
from ._chunked import ChunkedDecoder, ChunkedEncodingError
from ._decoding import DECODED_ENCODINGS, BodyDecoder, CorruptBody, body_encoding
from ._errors import invalid_chunked_error, redact_url, undecodable_body_error, urllib3_error
from ._protocol import READ_SIZE

__all__ = ["DirectBody", "LeanStream"]

_WOULD_BLOCK = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class DirectBody:
    """The body of one response, read from its socket without blocking."""

    __slots__ = ("_chunks", "_decoder", "_initial", "_left", "_url", "drained", "ended", "sock")

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
        self._decoder = BodyDecoder(encoding) if encoding in DECODED_ENCODINGS else None
        self._initial = initial
        #: Whether the body is complete: nothing more will be read.
        self.ended = length == 0
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
        encoding = body_encoding(stream.headers)
        if encoding not in DECODED_ENCODINGS and encoding != "identity":
            # check_response let it pass because urllib3 decodes it (a list
            # such as "gzip, gzip"); this reader decodes one coding only.
            where = redact_url(url)
            raise SSEConnectionError(
                f"a hub cannot decode the Content-Encoding {encoding[:40]!r} of {where}",
                url=where,
                retryable=False,
            )
        if isinstance(stream, LeanStream):
            return stream.body
        where = redact_url(url)
        fp: Any = getattr(getattr(stream, "_response", None), "_fp", None)
        reader: Any = getattr(fp, "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if not isinstance(fp, HTTPResponse) or not isinstance(sock, socket.socket):
            raise SSEConnectionError(
                f"the response of {where} cannot be read by a hub", url=where, retryable=False
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
        if self._decoder is not None and self._decoder.broken:
            return self._decode(b"")  # raises the corruption found by the last read
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
        decoder = self._decoder
        if decoder is None:
            return data
        try:
            out = decoder.feed(data)
            if decoder.broken:
                # What decoded before the corruption goes first; the next
                # read, at once, reports it.
                self.ended = self.drained = False
            elif self.ended:
                out += decoder.finish()
        except CorruptBody as exc:
            raise undecodable_body_error(self._url) from exc
        return out


class LeanStream:
    """A response opened without blocking by :class:`~ssesync._transport._lean.LeanConnect`.

    Its body reader comes with it: the socket is already non-blocking, and
    the bytes that arrived with the head are the body's first.
    """

    __slots__ = ("body", "headers", "read_timeout", "sock", "status", "url")

    def __init__(
        self, sock: socket.socket, status: int, headers: Mapping[str, str], url: str,
        body: DirectBody, read_timeout: Optional[float],
    ) -> None:  # fmt: skip
        self.sock = sock
        self.status = status
        self.headers = headers
        self.url = url
        self.body = body
        self.read_timeout = read_timeout

    def read(self) -> bytes:
        """The next bytes of the body, waiting for them up to the read timeout.

        (The hub reads :attr:`body` itself; this is the blocking read every
        stream offers.)
        """
        body = self.body
        while True:
            data = body.read()
            if data or body.ended:
                return data or b""
            if data is None and not select.select([self.sock], [], [], self.read_timeout)[0]:
                error = urllib3_error(socket.timeout("timed out"), self.url)
                raise error from error.__cause__

    def abort(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def close(self, reuse: bool = False) -> None:
        self.sock.close()
