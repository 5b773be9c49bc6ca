"""A sans-I/O decoder for HTTP/1.1 chunked transfer coding.

SSE servers usually flush each event as its own chunk, so a stream of small
events is a stream of small chunks. Read through urllib3 and http.client,
every chunk costs a full read call with its bookkeeping, and that — not
parsing — caps a chunked stream at a fraction of what the socket delivers.
This decoder takes whatever bytes have arrived (many chunks at once, or a
piece of one) and returns their payload in one piece, so the transport can
read in large blocks and the cost per chunk is a ``find`` and a slice.

It is as lenient about chunk-size lines as http.client (which also parses
them with ``int(..., 16)``), ignores chunk extensions and trailers, and
stops at the last chunk.
"""

from __future__ import annotations

__all__ = ["ChunkedDecoder", "ChunkedEncodingError"]

#: The longest chunk-size line accepted (size, extensions), in bytes.
MAX_SIZE_LINE = 4096


class ChunkedEncodingError(ValueError):
    """The body does not follow the chunked transfer coding."""


class ChunkedDecoder:
    """Strips chunked framing from a body fed in arbitrary pieces."""

    __slots__ = ("_crlf", "_left", "_tail", "done")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete chunk-size line carried to the next feed
        self._left = 0  # payload bytes still due in the current chunk
        self._crlf = 0  # bytes of the CRLF after a chunk's payload still to skip
        #: Whether the last chunk (size 0) has been seen: the body is complete.
        self.done = False

    def feed(self, data: bytes) -> bytes:
        """Return the payload carried by ``data`` (possibly ``b""``)."""
        if self.done:
            return b""
        if self._tail:
            data = self._tail + data
            self._tail = b""
        end = len(data)
        left = self._left
        crlf = self._crlf
        pos = 0
        pieces: list[bytes] = []
        while pos < end:
            if left:
                stop = pos + left
                if stop > end:
                    pieces.append(data[pos:] if pos else data)
                    left = stop - end
                    pos = end
                    break
                pieces.append(data[pos:stop])
                pos = stop
                left = 0
                crlf = 2
            if crlf:
                taken = min(crlf, end - pos)
                if data[pos : pos + taken] != b"\r\n"[2 - crlf : 2 - crlf + taken]:
                    raise ChunkedEncodingError("a chunk is not followed by CRLF")
                pos += taken
                crlf -= taken
                if crlf:
                    break
            eol = data.find(b"\r\n", pos)
            if eol < 0:
                if end - pos > MAX_SIZE_LINE:
                    raise ChunkedEncodingError("a chunk-size line is too long")
                self._tail = data[pos:]
                break
            size = _chunk_size(data[pos:eol])
            pos = eol + 2
            if size == 0:
                self.done = True
                break
            left = size
        self._left = left
        self._crlf = crlf
        if len(pieces) == 1:
            return pieces[0]
        return b"".join(pieces)


def _chunk_size(line: bytes) -> int:
    try:
        size = int(line, 16)
    except ValueError:
        try:
            size = int(line.partition(b";")[0], 16)
        except ValueError:
            raise ChunkedEncodingError(f"invalid chunk-size line {line[:40]!r}") from None
    if size < 0:
        raise ChunkedEncodingError(f"invalid chunk size {line[:40]!r}")
    return size
