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
stops at the last chunk. A read that holds many whole chunks (a fast
stream of small events) is split on CRLF in one call, and the chunk sizes
are checked against the payloads' lengths without a Python step per chunk
(:meth:`ChunkedDecoder._whole_chunks`). Like the event parser, it never loses what it
completed to a later error: a read whose intact chunks are followed by a
broken size line returns their payload and keeps the error in
:attr:`ChunkedDecoder.error`, raised by the next call.
"""

from __future__ import annotations

from itertools import repeat
from typing import Callable, Optional, Union

__all__ = ["ChunkedDecoder", "ChunkedEncodingError"]

#: The longest chunk-size line accepted (size, extensions), in bytes.
MAX_SIZE_LINE = 4096

#: Reads with at least this many bytes of whole chunks try the bulk path.
BULK_MIN = 512

#: Payloads at least this long are held as views of the read (see ``_feed``).
VIEW_MIN = 512

#: A payload as the decoder holds it before joining: a slice or a view of a read.
Buffer = Union[bytes, memoryview]


class ChunkedEncodingError(ValueError):
    """The body does not follow the chunked transfer coding."""


class ChunkedDecoder:
    """Strips chunked framing from a body fed in arbitrary pieces."""

    __slots__ = ("_crlf", "_left", "_misses", "_skip", "_tail", "done", "error", "stopped")

    def __init__(self) -> None:
        self._tail = b""  # an incomplete chunk-size line carried to the next feed
        self._left = 0  # payload bytes still due in the current chunk
        self._crlf = 0  # bytes of the CRLF after a chunk's payload still to skip
        # The bulk path's backoff: reads to skip it for, and the last such pause.
        self._skip = 0
        self._misses = 0
        #: Whether the last chunk (size 0) has been seen: the body is complete.
        self.done = False
        #: The framing error met after payload that was returned, if any.
        self.error: Optional[ChunkedEncodingError] = None
        #: Whether nothing more will come: the body is complete or broken.
        #: A reader checks this one flag before it reads the socket again.
        self.stopped = False

    def feed(self, data: bytes) -> bytes:
        """Return the payload carried by ``data`` (possibly ``b""``).

        :raises ChunkedEncodingError: when the framing is broken and no
            payload came before the break in this read; when some did, it is
            returned, :attr:`error` is set, and the next call raises.
        """
        if self.stopped:
            if self.error is not None:
                raise self.error
            return b""
        if not (self._tail or self._left or self._crlf):
            # The usual read of a server that flushes each event: one whole chunk.
            eol = data.find(b"\r\n")
            if eol > 0:
                try:
                    size = int(data[:eol], 16)
                except ValueError:
                    size = 0
                if size > 0 and eol + size + 4 == len(data) and data.endswith(b"\r\n"):
                    return data[eol + 2 : -2]
        pieces: list[Buffer] = []
        try:
            self._feed(data, pieces)
        except ChunkedEncodingError as exc:
            self.error = exc
            self.stopped = True
            if not pieces:
                raise
        if len(pieces) == 1:
            return bytes(pieces[0])
        return b"".join(pieces)

    def _feed(self, data: bytes, pieces: list[Buffer]) -> None:
        """Decode ``data`` into ``pieces`` (the general path of :meth:`feed`).

        Payloads of ``VIEW_MIN`` bytes or more are taken as views of ``data``,
        not copies: :meth:`feed` joins them into one new object, so each of
        their bytes is copied once. Sliced into bytes, each cost a ``malloc``,
        a copy and a ``free`` on top of the join: 4 % of the decoder's time
        for a read of 1 KiB chunks, 8 % at 4 KiB, a third at 64 KiB. Smaller
        payloads are sliced: a view costs more than a copy of a few bytes.
        """
        if self._tail:
            data = self._tail + data
            self._tail = b""
        end = len(data)
        pos = 0
        view = memoryview(data)
        append = pieces.append
        if self._left or self._crlf:
            pos = self._finish_chunk(view, 0, append)
            if self._left or self._crlf:
                return
        # Small chunks (a size of at most two hex digits) go in bulk; the
        # loop is faster for bigger ones, its finds skip their payloads.
        if end - pos >= BULK_MIN and 0 < data.find(b"\r\n", pos, pos + 4) - pos <= 2:
            if self._skip:
                self._skip -= 1
            else:
                pos = self._whole_chunks(data, pos, pieces)
        find = data.find
        startswith = data.startswith
        while pos < end:
            eol = find(b"\r\n", pos)
            if eol < 0:
                if end - pos > MAX_SIZE_LINE:
                    raise ChunkedEncodingError("a chunk-size line is too long")
                self._tail = data[pos:]
                break
            try:
                size = int(data[pos:eol], 16)
            except ValueError:
                size = _chunk_size(data[pos:eol])
            if size <= 0:
                if size < 0:
                    raise ChunkedEncodingError(f"invalid chunk size {data[pos:eol][:40]!r}")
                self.done = self.stopped = True
                break
            start = eol + 2
            stop = start + size
            if stop + 2 <= end:
                # The usual case: the whole chunk and its CRLF are here.
                if not startswith(b"\r\n", stop):
                    raise ChunkedEncodingError("a chunk is not followed by CRLF")
                append(view[start:stop] if size >= VIEW_MIN else data[start:stop])
                pos = stop + 2
            else:
                self._left = size
                self._finish_chunk(view, start, append)
                break

    def _whole_chunks(self, data: bytes, pos: int, pieces: list[Buffer]) -> int:
        """Take the whole chunks that start ``data[pos:]`` at once; return where they end.

        Split on CRLF, a run of whole chunks is the tokens size, payload,
        size, payload, …: they are taken when each size parses as the loop
        below would parse it and equals the next token's length, all checked
        in C. Framing is read from the start, so tokens that check out are
        the framing the loop would find; an empty payload (the last chunk,
        size 0, perhaps) ends the run. Any doubt — a payload holding CRLF, an
        extension, a bad size — leaves the whole read to the loop, and the
        next few reads skip this path (twice as many after each miss, up to
        64).
        """
        tokens = (data[pos:] if pos else data).split(b"\r\n")
        whole = (len(tokens) - 1) >> 1  # the last token has no CRLF after it
        payloads = tokens[1 : 2 * whole : 2]
        lengths = list(map(len, payloads))
        if 0 in lengths:  # the last chunk, perhaps: the loop takes it and what follows
            whole = lengths.index(0)
            del payloads[whole:], lengths[whole:]
        sizes = tokens[0 : 2 * whole : 2]
        try:
            declared = list(map(int, sizes, repeat(16)))
        except ValueError:
            declared = []
        if declared != lengths or not whole:
            self._misses = min(self._misses * 2 or 1, 64)
            self._skip = self._misses
            return pos
        self._misses = 0
        pieces.extend(payloads)
        return pos + sum(map(len, sizes)) + sum(lengths) + 4 * whole

    def _finish_chunk(self, view: memoryview, pos: int, append: Callable[[Buffer], None]) -> int:
        """Take what ``view[pos:]`` holds of the chunk in progress; return where it stops."""
        end = len(view)
        if self._left:
            take = min(self._left, end - pos)
            if take:
                # All of a read is payload (a big event): the read itself, no copy.
                append(view[pos : pos + take] if pos or take < end else view.obj)  # type: ignore[arg-type]
            pos += take
            self._left -= take
            if self._left:
                return pos
            self._crlf = 2
        taken = min(self._crlf, end - pos)
        expected = b"\r\n"[2 - self._crlf : 2 - self._crlf + taken]
        if view[pos : pos + taken] != expected:
            raise ChunkedEncodingError("a chunk is not followed by CRLF")
        self._crlf -= taken
        return pos + taken


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
