"""The body decoder: what decoded before corrupt data is never lost.

:class:`~ssesync._transport._decoding.BodyDecoder` decodes every ``gzip``
and ``deflate`` body on every read path. Fed a compressed body cut into
reads anywhere, with bytes that are not compressed data put anywhere in it,
it must give what zlib gives fed one byte at a time up to the first error —
no less, however the reads were cut — and then report the corruption, at
the next call and not later. (The read paths over loopback are held to the
same by ``test_read_path_differential`` and ``test_lean``.)
"""

from __future__ import annotations

import itertools
import zlib
from typing import Optional

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ssesync._transport import _decoding
from ssesync._transport._decoding import BodyDecoder, CorruptBody

GZIP, ZLIB, RAW = 31, 15, -15
PAYLOADS = st.lists(
    st.sampled_from([b"data: a\n\n", b"event: update\ndata: \xc3\xa9\n\n", b"id: 1\n", b"x" * 300]),
    min_size=1,
    max_size=8,
)


def compressed(wbits: int, pieces: list[bytes], members: bool) -> bytes:
    """``pieces`` compressed as one stream sync-flushed after each, or one gzip member each."""
    if members:
        return b"".join(_whole(wbits, piece) for piece in pieces)
    compressor = zlib.compressobj(wbits=wbits)
    out = [compressor.compress(piece) + compressor.flush(zlib.Z_SYNC_FLUSH) for piece in pieces]
    return b"".join(out) + compressor.flush()


def _whole(wbits: int, piece: bytes) -> bytes:
    """``piece`` as one complete stream (``zlib.compress`` takes no wbits before 3.11)."""
    compressor = zlib.compressobj(wbits=wbits)
    return compressor.compress(piece) + compressor.flush()


def bytewise(wbits: int, data: bytes) -> tuple[bytes, Optional[int]]:
    """What zlib makes of ``data`` one byte at a time, and where its first error is.

    After a gzip member the next byte must begin another, or be a zero byte
    of padding; after a zlib or raw deflate stream, no byte may follow.
    """
    inflate, out = zlib.decompressobj(wbits), []
    for at in range(len(data)):
        if inflate.eof:
            if wbits != GZIP:
                return b"".join(out), at
            if data[at] == 0:
                continue
            inflate = zlib.decompressobj(wbits)
        try:
            out.append(inflate.decompress(data[at : at + 1]))
        except zlib.error:
            return b"".join(out), at
    return b"".join(out) + inflate.flush(), None


def decode_in_reads(encoding: str, reads: list[bytes]) -> tuple[bytes, Optional[int]]:
    """The decoder's output over ``reads``, and the call (0-based, finish last) that raised."""
    decoder, out = BodyDecoder(encoding), []
    for number, data in enumerate([*reads, None]):
        try:
            out.append(decoder.finish() if data is None else decoder.feed(data))
        except CorruptBody:
            return b"".join(out), number
    return b"".join(out), None


def cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted(cuts)
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]


@st.composite
def bodies(draw: st.DrawFn) -> tuple[str, int, bytes]:
    """An encoding, its zlib window bits, and a body of it, perhaps with corruption."""
    encoding, wbits = draw(
        st.sampled_from([("gzip", GZIP), ("x-gzip", GZIP), ("deflate", ZLIB), ("deflate", RAW)])
    )
    pieces = draw(PAYLOADS)
    members = wbits == GZIP and draw(st.booleans())
    data = compressed(wbits, pieces, members=members)
    if members and draw(st.booleans()):
        data += b"\x00" * draw(st.integers(1, 9))  # padding, as gzip tools allow
    if wbits != RAW and draw(st.booleans()):
        # Corrupt bytes, for zlib data anywhere after the first piece (before
        # it, raw and zlib data could be confused: the guess's own business).
        # Raw deflate with corruption is left to the tests below: whether
        # raw is recognised then depends on the first read.
        first = len(compressed(wbits, pieces[:1], members=False)) - 6 if wbits == ZLIB else 0
        at = draw(st.integers(max(first, 0), len(data)))
        junk = draw(st.sampled_from([b"\xff", b"\xff\xff\xff", b"not compressed", b"\x00\x01"]))
        data = data[:at] + junk + data[at + draw(st.integers(0, 3)) :]
    return encoding, wbits, data


@settings(max_examples=300, deadline=None)
@given(body=bodies(), cuts=st.lists(st.integers(0, 4000), max_size=6))
@example(body=("gzip", GZIP, compressed(GZIP, [b"data: a\n\n"], False)[:-8] + b"\xff"), cuts=[])
def test_any_cut_into_reads_gives_what_zlib_gives_byte_by_byte(
    body: tuple[str, int, bytes], cuts: list[int]
) -> None:
    encoding, wbits, data = body
    reads = [read for read in cut(data, [c % (len(data) + 1) for c in cuts]) if read]
    expected, bad_at = bytewise(wbits, data)
    out, raised_at = decode_in_reads(encoding, reads)
    assert out == expected
    if bad_at is None:
        assert raised_at is None
        return
    # Reported by the call after the read that held the first bad byte, or by
    # that read itself when it brought nothing before it.
    starts = [0, *itertools.accumulate(map(len, reads))]
    bad_read = next(number for number, end in enumerate(starts[1:]) if end > bad_at)
    before = bytewise(wbits, data[: starts[bad_read]])[0]
    assert raised_at == (bad_read if len(before) == len(out) else bad_read + 1)


def test_zlib_and_raw_deflate_are_both_read_as_deflate_whatever_the_first_read() -> None:
    payload = b"data: a\n\n" * 5
    for wbits in (ZLIB, RAW):
        data = compressed(wbits, [payload], members=False)
        for first in range(len(data) + 1):
            out, raised = decode_in_reads("deflate", [r for r in (data[:first], data[first:]) if r])
            assert (out, raised) == (payload, None), (wbits, first)


def test_events_before_corruption_in_raw_deflate_come_first_once_it_is_known_raw() -> None:
    # Known raw after the first read; the second read's event, before the
    # bad byte, still comes out, and the next call reports the corruption.
    compressor = zlib.compressobj(wbits=RAW)
    first, second = (
        compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH)
        for event in (b"data: a\n\n", b"data: b\n\n")
    )
    decoder = BodyDecoder("deflate")
    assert decoder.feed(first) == b"data: a\n\n"
    assert decoder.feed(second + b"\xff") == b"data: b\n\n"
    with pytest.raises(CorruptBody):
        decoder.feed(b"")


def test_text_called_deflate_gives_no_output_at_all() -> None:
    # Plain text often decodes as a few bytes of raw deflate before failing:
    # those bytes must not reach the parser as if they were the body.
    for text in (b"retry: 1000\n\n", b"data: plain text\n\n", b"event: x\ndata: y\n\n"):
        with pytest.raises(CorruptBody):
            BodyDecoder("deflate").feed(text)


def test_undecided_input_is_kept_only_up_to_a_limit() -> None:
    # A "deflate" body that yields nothing (empty stored blocks) is taken for
    # zlib data once the limit has passed, and no longer kept.
    decoder = BodyDecoder("deflate")
    empty_block = b"\x00\x00\x00\xff\xff"  # raw deflate: a stored block of no bytes
    decoder.feed(b"\x78\x9c")  # a zlib header
    for _ in range(_decoding.UNDECIDED_LIMIT // len(empty_block) + 2):
        assert decoder.feed(empty_block) == b""
    assert decoder._kept == []


def test_garbage_alone_raises_at_once() -> None:
    with pytest.raises(CorruptBody):
        BodyDecoder("gzip").feed(b"not gzip")
    decoder = BodyDecoder("gzip")
    assert decoder.feed(_whole(GZIP, b"data: a\n\n")) == b"data: a\n\n"
    with pytest.raises(CorruptBody):
        decoder.feed(b"trailing")  # after a member: not another one
    with pytest.raises(CorruptBody):
        decoder.finish()


@pytest.mark.parametrize("wbits", [ZLIB, RAW])
def test_bytes_after_a_finished_deflate_stream_in_a_later_read_raise_at_once(wbits: int) -> None:
    decoder = BodyDecoder("deflate")
    assert decoder.feed(compressed(wbits, [b"data: a\n\n"], members=False)) == b"data: a\n\n"
    with pytest.raises(CorruptBody):
        decoder.feed(b"more")
