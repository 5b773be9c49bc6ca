"""Reading a response body: whatever has arrived, as fast as the socket gives it.

:func:`body_reader` returns a function that gives the next bytes of a body,
never waiting for a buffer to fill. Its public path is urllib3's ``read1``;
bodies that are chunked or run to the end of the connection are read
straight from the socket (:class:`_SocketBody`), with chunked framing
stripped by :class:`~ssesync._transport._chunked.ChunkedDecoder`, which on
Linux also lets the kernel keep the read timeout. Either way ``gzip`` and
``deflate`` are undone by :class:`~ssesync._transport._decoding.BodyDecoder`.
The read-path differential test
(``tests/transport/test_read_path_differential.py``) holds the paths to each
other: the same events, the same error, at the same point.
"""

from __future__ import annotations

import logging
import socket
import struct
import sys
from http.client import HTTPException, HTTPResponse, IncompleteRead
from typing import Any, Callable, Optional

import urllib3
from urllib3 import exceptions as u3exc

from ._chunked import ChunkedDecoder, ChunkedEncodingError
from ._decoding import DECODED_ENCODINGS, BodyDecoder, CorruptBody, body_encoding
from ._errors import invalid_chunked_error, undecodable_body_error, urllib3_error
from ._protocol import READ_SIZE

__all__ = ["FAST_READS", "KERNEL_READ_TIMEOUT", "MIN_READ", "body_reader"]

log = logging.getLogger("ssesync")

#: Read bodies straight from the connection's socket (see :func:`body_reader`).
#: Tests turn it off to run urllib3's public path too.
FAST_READS = True


#: Let a plain TCP socket wait with the kernel's receive timeout instead of
#: Python's (see :class:`_SocketBody`). Only on 64-bit Linux, where the
#: ``timeval`` it takes is two longs; elsewhere Python's timeout stays.
KERNEL_READ_TIMEOUT = sys.platform == "linux" and struct.calcsize("@l") == 8

#: The smallest read of the socket path, in bytes. ``recv(n)`` allocates its
#: ``n`` bytes before it waits, so a source waiting for its next event holds
#: a buffer of the size it asked for: at this size (with the bytes object's
#: header, within the 512 bytes that Python's small-object allocator serves)
#: it costs no memory of the reading thread's ``malloc`` arena. Each read
#: that fills its buffer asks for eight times as much next time, up to
#: ``READ_SIZE``; each that uses less than a sixteenth of it, half as much.
#: A busy stream so reads in ``READ_SIZE`` blocks after three reads, a quiet
#: one in small reads after a few events.
MIN_READ = 448


def next_read_size(size: int, got: int) -> int:
    """The size of the next read after one of ``size`` bytes returned ``got``.

    A full read grows it (up to READ_SIZE) while the stream is busy; a read
    far below it shrinks it back toward MIN_READ while the stream is quiet.
    """
    if got == size:
        return min(size << 3, READ_SIZE) if size < READ_SIZE else size
    if got <= size >> 4 and size > MIN_READ:
        return max(size >> 1, MIN_READ)
    return size


def body_reader(
    response: urllib3.BaseHTTPResponse,
    url: str,
    *,
    reuse: bool = False,
    read_timeout: Optional[float] = None,
) -> Callable[[], bytes]:
    """A function returning the next bytes of the body, ``b""`` at its end.

    The public path is urllib3's ``read1``: whatever has arrived, without
    waiting for a buffer to fill. Under it lie urllib3's and http.client's
    bookkeeping and a buffered reader, for each read; servers often send one
    event per read, and then those layers cost more than the event. So when
    the body simply runs to the end of the connection, or is chunked, we
    read the socket ourselves (:class:`_SocketBody`) and strip chunked
    framing with :class:`~ssesync._transport._chunked.ChunkedDecoder`. That
    needs private attributes of http.client's response; whenever they are not
    there as expected — another http.client, a mocked response, a body
    already being read — the public path is used. A connection meant for
    reuse keeps the public path too, so http.client's own bookkeeping of
    the body stays exact.

    A ``gzip`` or ``deflate`` body is decoded by
    :class:`~ssesync._transport._decoding.BodyDecoder` on either path (other
    codings by urllib3), so that events decoded before corrupt data are
    delivered before it is reported.
    """
    encoding = body_encoding(response.headers)
    decoder = BodyDecoder(encoding) if encoding in DECODED_ENCODINGS else None
    read = None if reuse or not FAST_READS else _fast_reader(response, url, read_timeout)
    if read is None:
        read = _public_reader(response, url, decode=decoder is None)
    return read if decoder is None else _decoding_reader(read, decoder, url)


def _public_reader(
    response: urllib3.BaseHTTPResponse, url: str, decode: bool
) -> Callable[[], bytes]:
    read1 = response.read1

    def read_public() -> bytes:
        try:
            # decode_content: requests opens its responses without it.
            return read1(READ_SIZE, decode_content=decode) or b""
        except (u3exc.HTTPError, HTTPException, OSError) as exc:
            error = urllib3_error(exc, url)
            raise error from error.__cause__

    return read_public


def _decoding_reader(
    read: Callable[[], bytes], decoder: BodyDecoder, url: str
) -> Callable[[], bytes]:
    feed = decoder.feed
    ended = False

    def read_decoded() -> bytes:
        nonlocal ended
        try:
            if decoder.broken:
                feed(b"")  # raises: the last read found the corruption
            while not ended:
                data = read()
                if not data:
                    ended = True
                    return decoder.finish()
                out = feed(data)
                if out:
                    return out
            return b""
        except CorruptBody as exc:
            raise undecodable_body_error(url) from exc

    return read_decoded


def _fast_reader(
    response: urllib3.BaseHTTPResponse, url: str, read_timeout: Optional[float]
) -> Optional[Callable[[], bytes]]:
    """The socket path's reader of the raw body, or None where it cannot be used."""
    body = _SocketBody.of(response, read_timeout)
    if body is None:
        return None
    size = MIN_READ  # what the next read asks for (see MIN_READ)

    if not body.chunked:

        def read_until_close() -> bytes:
            nonlocal size
            try:
                data = body.recv(size)
            except (HTTPException, OSError, ValueError) as exc:
                error = urllib3_error(exc, url)
                raise error from error.__cause__
            size = next_read_size(size, len(data))
            return data

        return read_until_close

    decoder = ChunkedDecoder()
    feed = decoder.feed

    def read_chunked() -> bytes:
        nonlocal size
        try:
            # The last chunk often arrives with the last event, and the
            # server may keep the connection open after it: once the decoder
            # has stopped (complete, or broken after payload it returned),
            # the socket is not read again.
            while not decoder.stopped:
                data = body.recv(size)
                size = next_read_size(size, len(data))
                if not data:
                    raise IncompleteRead(b"")
                payload = feed(data)
                if payload:
                    return payload
            return feed(b"")  # b"" at the end, or the pending framing error
        except ChunkedEncodingError as exc:
            log.debug("invalid chunked body: %s", exc)
            raise invalid_chunked_error(url) from exc
        except (HTTPException, OSError, ValueError) as exc:
            error = urllib3_error(exc, url)
            raise error from error.__cause__

    return read_chunked


class _SocketBody:
    """Reads a response body straight from its connection's socket.

    http.client reads the status line and headers through a buffered reader,
    which may already hold the first bytes of the body. The first read takes
    exactly those: ``peek`` shows what is buffered (making at most one read of
    the socket if nothing is), and reading back no more than it showed takes
    it from the buffer. From then on the buffer stays empty, and each read is
    one ``recv`` of the socket.

    A socket with a timeout makes Python wait in ``poll()`` before every
    ``recv``: two system calls, and two hand-overs of the GIL, per read. On
    Linux a plain TCP socket is therefore switched, after that first read, to
    blocking mode with the same timeout set as the kernel's ``SO_RCVTIMEO``;
    its expiry surfaces as :class:`BlockingIOError`, which
    :func:`urllib3_error` reports as a read timeout. TLS sockets keep
    Python's timeout: on a blocking socket the ssl module retries a read the
    kernel timed out instead of reporting it.
    """

    __slots__ = ("_reader", "_sock", "_timeout", "chunked", "recv")

    def __init__(
        self, reader: Any, sock: socket.socket, chunked: bool, read_timeout: Optional[float]
    ) -> None:
        self._reader = reader
        self._sock = sock
        self._timeout = read_timeout
        self.chunked = chunked
        #: ``recv(size)``: the first read drains the buffered reader, then
        #: this becomes the socket's own ``recv``.
        self.recv: Callable[[int], bytes] = self._first_recv

    @classmethod
    def of(
        cls, response: urllib3.BaseHTTPResponse, read_timeout: Optional[float]
    ) -> Optional[_SocketBody]:
        """The socket reader for a fresh body, or ``None`` if it must be read the public way."""
        encoding = body_encoding(response.headers)
        if encoding != "identity" and encoding not in DECODED_ENCODINGS:
            return None  # urllib3 decodes it
        fp = getattr(response, "_fp", None)  # the http.client.HTTPResponse
        if not isinstance(fp, HTTPResponse):
            return None
        if fp.chunked:
            if fp.chunk_left is not None:
                return None  # its chunk reading has begun
        elif fp.length is not None or not fp.will_close:
            return None  # a length to count down: leave it to http.client
        reader = getattr(fp, "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
        if not isinstance(sock, socket.socket) or not callable(getattr(reader, "peek", None)):
            return None
        return cls(reader, sock, bool(fp.chunked), read_timeout)

    def _first_recv(self, size: int) -> bytes:
        buffered = self._reader.peek(1)
        data: bytes = self._reader.read(min(len(buffered), size)) if buffered else b""
        if len(buffered) <= size:
            self.recv = self._sock.recv
            self._use_kernel_timeout()
        return data

    def _use_kernel_timeout(self) -> None:
        sock, timeout = self._sock, self._timeout
        if not KERNEL_READ_TIMEOUT or type(sock) is not socket.socket:
            return
        if timeout is None or not 0 < timeout < 2**31:
            return  # no timeout: the socket already blocks without poll()
        seconds = int(timeout)
        micros = max(1, int((timeout - seconds) * 1_000_000)) if timeout != seconds else 0
        try:
            sock.setsockopt(
                socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("@ll", seconds, micros)
            )
            sock.settimeout(None)
        except OSError:  # e.g. shut down by an abort meanwhile: keep Python's timeout
            log.debug("cannot set SO_RCVTIMEO; keeping the socket timeout", exc_info=True)
