"""Undoing a body's gzip or deflate coding, keeping what decoded before any corruption.

Every read path (a thread's and a hub's) decodes ``gzip`` and ``deflate``
bodies with :class:`BodyDecoder`, not with urllib3's decoders. Both stream
their input through zlib, but when a read holds complete events followed
by bytes that are not compressed data, zlib raises for the whole read and
its output is gone, events included: urllib3 reports the error and those
events are lost. Here the events decoded before the bad bytes come first,
and the error is raised by the next call; a read must never cost events
that were complete before it broke.

zlib cannot say how far it got before an error, and its state is spoilt by
it. So the decoder keeps a *mark*: a copy of the decompressor taken now and
then (or none while a fresh one would do) and the input fed since. After an
error it rebuilds the state before the failing read from the mark and finds,
by halving, the longest start of that read that decodes.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, Optional

__all__ = ["DECODED_ENCODINGS", "BodyDecoder", "CorruptBody", "body_encoding"]

_GZIP = 16 + zlib.MAX_WBITS
_RAW_DEFLATE = -zlib.MAX_WBITS
#: The ``Content-Encoding`` values decoded here, and the zlib window bits of each.
DECODED_ENCODINGS = {"gzip": _GZIP, "x-gzip": _GZIP, "deflate": zlib.MAX_WBITS}

#: Input bytes fed since the mark after which a new mark is taken: a copy of
#: the decompressor (its 32 KiB window) costs about as much as decoding a few
#: hundred bytes, so quiet streams never make one and busy ones rarely.
MARK_EVERY = 16_384


def body_encoding(headers: Mapping[str, str]) -> str:
    """The response's ``Content-Encoding``, as the read paths compare it."""
    return (headers.get("Content-Encoding") or "identity").strip().lower()


class CorruptBody(ValueError):
    """The body is not the compressed data its ``Content-Encoding`` names."""


class BodyDecoder:
    """Decodes one ``gzip`` or ``deflate`` body, fed as it arrives.

    A ``gzip`` body may be several members, one after another (some servers
    write one per event); bytes after a member that do not begin another, or
    after the end of a ``deflate`` stream, are corrupt data like any other:
    a stream that went on after them would deliver nothing more, silently.
    A ``deflate`` body should be zlib data (RFC 9110), but some servers send
    raw deflate: until the first output, either is accepted.
    """

    __slots__ = (
        "_gzip", "_inflate", "_mark", "_since", "_since_size", "_undecided", "_wbits", "broken",
    )  # fmt: skip

    def __init__(self, encoding: str) -> None:
        self._wbits = wbits = DECODED_ENCODINGS[encoding]
        self._gzip = wbits == _GZIP
        self._inflate: Any = zlib.decompressobj(wbits)
        #: For "deflate": True until the first output, while it may still
        #: turn out to be raw deflate (all input is kept until then).
        self._undecided = not self._gzip
        #: A copy of the decompressor from before :attr:`_since`, or None:
        #: a fresh one (for the member or stream being decoded) does.
        self._mark: Optional[Any] = None
        self._since: list[bytes] = []
        self._since_size = 0
        #: Set after corrupt data: every later call raises :class:`CorruptBody`.
        self.broken = False

    def feed(self, data: bytes) -> bytes:
        """The decoded bytes of ``data``: what it completes of the body.

        After corrupt data it returns what decoded before the corruption,
        and the next call raises.

        :raises CorruptBody: when an earlier call found the body corrupt, or
            this one did and nothing at all decoded before the corruption.
        """
        if self.broken:
            raise CorruptBody("the body is not the compressed data it claims")
        out = b""
        while data:
            inflate = self._inflate
            if inflate.eof:  # a gzip member ended at the end of the last read
                if not self._gzip:
                    return self._salvaged(out, b"")  # bytes after a deflate stream
                inflate = self._start(_GZIP)
            try:
                got = inflate.decompress(data)
            except zlib.error:
                raw = self._as_raw_deflate(data) if self._undecided else None
                if raw is None:
                    return self._salvaged(out, data)
                inflate, data, got = raw
                if not data:
                    return got  # raw deflate, broken after this
            if got:
                out += got
                self._undecided = False
            if not inflate.eof:
                self._remember(data)
                break
            data = inflate.unused_data
            if data:
                if not self._gzip:
                    return self._salvaged(out, b"")
                self._start(_GZIP)  # another member follows
        return out

    def finish(self) -> bytes:
        """What the decoder still holds, at the end of the body.

        :raises CorruptBody: when corrupt data was found before.
        """
        if self.broken:
            raise CorruptBody("the body is not the compressed data it claims")
        out: bytes = self._inflate.flush()
        return out

    def _start(self, wbits: int) -> Any:
        """A fresh decompressor, for the next gzip member or as raw deflate."""
        self._wbits = wbits
        self._inflate = inflate = zlib.decompressobj(wbits)
        self._mark = None
        self._since = []
        self._since_size = 0
        return inflate

    def _remember(self, data: bytes) -> None:
        self._since.append(data)
        self._since_size += len(data)
        if self._since_size >= MARK_EVERY and not self._undecided:
            self._mark = self._inflate.copy()
            self._since = []
            self._since_size = 0

    def _as_raw_deflate(self, data: bytes) -> Optional[tuple[Any, bytes, bytes]]:
        """The body so far decoded as raw deflate, or None if it is not that either.

        When raw deflate gets further than zlib data before an error, the
        body counts as raw deflate: it is broken, and this raises or returns
        (in the tuple) what decoded before the error.
        """
        joined = b"".join([*self._since, data])
        trial = zlib.decompressobj(_RAW_DEFLATE)
        try:
            got = trial.decompress(joined)
        except zlib.error:
            got = _decodable_start(zlib.decompressobj(_RAW_DEFLATE), joined)
            if not got:
                return None  # corrupt as zlib data, as the RFC has it
            self.broken = True
            return trial, b"", got  # (no input: none is left to decode)
        self._start(_RAW_DEFLATE)
        self._inflate = trial
        return trial, joined, got

    def _salvaged(self, out: bytes, data: bytes) -> bytes:
        """``out``, and what the start of ``data`` decodes to before the corruption in it.

        The next call raises; this one does if there is nothing to return.
        """
        self.broken = True
        if data:
            mark = self._mark
            inflate = mark.copy() if mark is not None else zlib.decompressobj(self._wbits)
            for piece in self._since:
                inflate.decompress(piece)  # back to the state before ``data``
            out += _decodable_start(inflate, data)
        if not out:
            raise CorruptBody("the body is not the compressed data it claims")
        return out


def _decodable_start(inflate: Any, data: bytes) -> bytes:
    """What ``inflate`` makes of ``data`` before the error that feeding it all raises."""
    # Halve it: if the first half decodes, the error lies in the second
    # half (from the state after the first); if not, in the first.
    out = []
    while len(data) > 1:
        half = len(data) >> 1
        trial = inflate.copy()
        try:
            got = trial.decompress(data[:half])
        except zlib.error:
            data = data[:half]
            continue
        out.append(got)
        inflate, data = trial, data[half:]
    return b"".join(out)
