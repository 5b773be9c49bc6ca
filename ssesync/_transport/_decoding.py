"""Undoing a body's gzip or deflate coding, keeping what decoded before any corruption.

Every read path (a thread's and a hub's) decodes ``gzip`` and ``deflate``
bodies with :class:`BodyDecoder`, not with urllib3's decoders. Both stream
their input through zlib, but when a read holds complete events followed
by bytes that are not compressed data, zlib raises for the whole read and
its output is gone, events included: urllib3 reports the error and those
events are lost. Here the events decoded before the bad bytes come first,
and the error is raised by the next call; a read must never cost events
that were complete before it broke.

zlib cannot say how far it got before an error, and the error spoils its
state. So each read is decoded by the decompressor while a copy of it, from
before the read, is kept until the read has decoded; after an error, the
copy finds, by halving the read, the longest start of it that decodes. A
copy costs about as much as decoding a read of a few small events, and it
is let go at once: a stream holds one decompressor between reads, as with
urllib3 (its 32 KiB window is most of the memory of a compressed stream).
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

#: A "deflate" body's input kept, until its first output, for a retry as raw
#: deflate; past this much without output it is taken to be zlib data.
UNDECIDED_LIMIT = 65_536


def body_encoding(headers: Mapping[str, str]) -> str:
    """The response's ``Content-Encoding``, as the read paths compare it."""
    return (headers.get("Content-Encoding") or "identity").strip().lower()


class CorruptBody(ValueError):
    """The body is not the compressed data its ``Content-Encoding`` names."""


class BodyDecoder:
    """Decodes one ``gzip`` or ``deflate`` body, fed as it arrives.

    A ``gzip`` body may be several members, one after another (some servers
    write one per event), with zero bytes between them as gzip tools allow;
    other bytes after a member that do not begin another, or bytes after the
    end of a ``deflate`` stream, are corrupt data like any other: a stream
    that went on after them would deliver nothing more, silently. A
    ``deflate`` body should be zlib data (RFC 9110), but some servers send
    raw deflate: until the first output, all of the input is kept, and if
    zlib rejects it while raw deflate decodes all of it, raw it is.
    """

    __slots__ = ("_gzip", "_inflate", "_kept", "_kept_size", "_undecided", "broken")

    def __init__(self, encoding: str) -> None:
        wbits = DECODED_ENCODINGS[encoding]
        self._gzip = wbits == _GZIP
        self._inflate: Any = zlib.decompressobj(wbits)
        #: For "deflate": True until the first output (see the class doc).
        self._undecided = not self._gzip
        self._kept: list[bytes] = []
        self._kept_size = 0
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
            if inflate.eof:  # the member (or deflate stream) ended before ``data``
                if not self._gzip:
                    return self._salvaged(out)  # bytes after a deflate stream
                data = data.lstrip(b"\x00")  # padding between members
                if not data:
                    break
                self._inflate = inflate = zlib.decompressobj(_GZIP)
            before = inflate.copy()
            try:
                got = inflate.decompress(data)
            except zlib.error:
                raw = self._as_raw_deflate(data) if self._undecided else None
                if raw is None:
                    return self._salvaged(out, before, data)
                inflate, got = raw
            if got:
                out += got
                self._decided()
            elif self._undecided:
                self._keep(data)
            data = inflate.unused_data if inflate.eof else b""
        return out

    def finish(self) -> bytes:
        """What the decoder still holds, at the end of the body.

        :raises CorruptBody: when corrupt data was found before.
        """
        if self.broken:
            raise CorruptBody("the body is not the compressed data it claims")
        out: bytes = self._inflate.flush()
        return out

    def _keep(self, data: bytes) -> None:
        self._kept.append(data)
        self._kept_size += len(data)
        if self._kept_size > UNDECIDED_LIMIT:
            self._decided()

    def _decided(self) -> None:
        self._undecided = False
        self._kept = []

    def _as_raw_deflate(self, data: bytes) -> Optional[tuple[Any, bytes]]:
        """The decompressor and output of the body so far as raw deflate, if it is that.

        Only if raw deflate takes all of it: plain text, for one, often
        decodes as a few bytes of raw deflate before failing.
        """
        trial = zlib.decompressobj(_RAW_DEFLATE)
        try:
            got: bytes = trial.decompress(b"".join([*self._kept, data]))
        except zlib.error:
            return None  # corrupt as zlib data, as the RFC has it
        self._inflate = trial
        return trial, got

    def _salvaged(self, out: bytes, before: Any = None, data: bytes = b"") -> bytes:
        """``out``, and what ``before`` (the decompressor as it was) makes of the start of ``data``.

        The next call raises; this one does if there is nothing to return.
        """
        self.broken = True
        self._kept = []
        if data:
            out += _decodable_start(before, data)
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
