"""The chunked-body decoder of the fast read path, fed every way a socket can cut it."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssesync._transport._chunked import (
    MAX_SIZE_LINE,
    VIEW_MIN,
    ChunkedDecoder,
    ChunkedEncodingError,
)


def encode(chunks: list[bytes], styles: list[str]) -> bytes:
    """Chunked framing of ``chunks``; each style picks how its size line is written."""
    out = []
    for chunk, style in zip(chunks, styles):
        size = f"{len(chunk):x}"
        if style == "upper":
            size = size.upper()
        elif style == "zeros":
            size = "00" + size
        elif style == "extension":
            size += ";name=value"
        out.append(size.encode() + b"\r\n" + chunk + b"\r\n")
    return b"".join(out) + b"0\r\n\r\n"


def decode(pieces: list[bytes]) -> tuple[bytes, bool]:
    decoder = ChunkedDecoder()
    payloads = [decoder.feed(piece) for piece in pieces]
    # Bytes, never a view of the read: the parser and decoders take bytes.
    assert all(type(payload) is bytes for payload in payloads)
    return b"".join(payloads), decoder.done


@st.composite
def bodies(draw: st.DrawFn) -> tuple[list[bytes], bytes, list[bytes]]:
    """Chunks, their framing, and the framing cut into reads (one chunk per read, or anywhere)."""
    # Small chunks, and chunks around VIEW_MIN, which the decoder holds as
    # views of the read rather than slices until it joins them.
    big = st.builds(
        lambda pattern, size: (pattern * size)[:size],
        st.binary(min_size=1, max_size=4),
        st.integers(VIEW_MIN - 2, VIEW_MIN + 700),
    )
    chunks = draw(st.lists(st.one_of(st.binary(min_size=1, max_size=40), big), max_size=8))
    styles = draw(
        st.lists(
            st.sampled_from(["plain", "upper", "zeros", "extension"]),
            min_size=len(chunks),
            max_size=len(chunks),
        )
    )
    body = encode(chunks, styles)
    if draw(st.booleans()):
        # As a server that flushes each event: every read is one whole chunk.
        pieces = [encode([c], [s])[:-5] for c, s in zip(chunks, styles)] + [b"0\r\n\r\n"]
    else:
        cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=10)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
    return chunks, body, pieces


@settings(max_examples=300, deadline=None)
@given(case=bodies())
def test_any_cut_gives_the_payload_and_the_end(
    case: tuple[list[bytes], bytes, list[bytes]],
) -> None:
    chunks, body, pieces = case
    assert b"".join(pieces) == body
    assert decode(pieces) == (b"".join(chunks), True)


@settings(max_examples=200, deadline=None)
@given(
    chunks=st.lists(
        st.one_of(st.binary(min_size=1, max_size=30), st.sampled_from([b"x\r\ny", b"\r\n"])),
        min_size=20,
        max_size=80,
    ),
    style=st.sampled_from(["plain", "upper", "zeros", "extension", "mixed"]),
    cut=st.integers(0, 200),
)
def test_a_read_of_many_small_chunks_decodes_as_byte_by_byte(
    chunks: list[bytes], style: str, cut: int
) -> None:
    # Reads of many small chunks take the bulk path (_whole_chunks): any
    # payload with CRLF, extension or cut sends them back to the loop, and
    # either way the payload is what a byte-by-byte decoding gives.
    styles = [
        ["plain", "upper", "zeros", "extension"][i % 4] if style == "mixed" else style
        for i in range(len(chunks))
    ]
    body = encode(chunks, styles)
    whole = decode([body])
    assert whole == (b"".join(chunks), True)
    assert decode([body[:cut], body[cut:]]) == whole
    assert decode([body[i : i + 1] for i in range(len(body))]) == whole


def test_a_bulk_read_keeps_what_came_before_a_broken_size_line() -> None:
    events = [b"data: %d\n\n" % i for i in range(60)]
    intact = b"".join(b"%x\r\n%s\r\n" % (len(event), event) for event in events)
    decoder = ChunkedDecoder()
    assert decoder.feed(intact + b"zz\r\nlost\r\n") == b"".join(events)
    with pytest.raises(ChunkedEncodingError):
        decoder.feed(b"")


def test_nothing_after_the_last_chunk_is_payload() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n\r\n") == b"abc"
    assert decoder.done
    assert decoder.feed(b"5\r\nlater\r\n") == b""


@pytest.mark.parametrize(
    "pieces",
    [
        [b"zz\r\nabc\r\n"],  # not hexadecimal
        [b"-3\r\nabc\r\n"],  # negative
        [b"3\r\nabcXY"],  # no CRLF after the chunk
        [b"3\r\nab", b"cXY"],  # the same, seen only in the next read
    ],
    ids=["not-hex", "negative", "no-crlf", "no-crlf-later"],
)
def test_broken_framing_raises(pieces: list[bytes]) -> None:
    decoder = ChunkedDecoder()
    for piece in pieces[:-1]:
        decoder.feed(piece)
    try:
        decoder.feed(pieces[-1])  # payload before the break comes first...
    except ChunkedEncodingError:
        return
    with pytest.raises(ChunkedEncodingError):
        decoder.feed(b"")  # ...and the error with the next call


@pytest.mark.parametrize(
    "broken",
    [b"zz\r\nx\r\n", b"\r\nx\r\n", b"-1\r\nx\r\n", b"3\r\nabcXY"],
    ids=["not-hex", "empty-size-line", "negative", "no-crlf"],
)
@pytest.mark.parametrize("split", [False, True], ids=["one-read", "two-reads"])
def test_payload_before_broken_framing_is_returned_first(broken: bytes, split: bool) -> None:
    # Intact chunks then a broken one, in one read: their payload once went
    # down with the error, though the same bytes in two reads delivered it.
    intact = b"9\r\ndata: ok\n\r\n2\r\n\n\n\r\n"
    decoder = ChunkedDecoder()
    pieces = [intact, broken] if split else [intact + broken]
    payload = decoder.feed(pieces[0])
    assert payload == b"data: ok\n\n\n"
    if split:  # the broken read holds no payload before the break: it raises
        with pytest.raises(ChunkedEncodingError):
            decoder.feed(pieces[1])
    assert decoder.stopped
    with pytest.raises(ChunkedEncodingError) as caught:
        decoder.feed(b"more")  # no read after the break gets past it
    assert caught.value is decoder.error


def test_last_chunk_in_the_same_read_stops_the_decoder() -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"8\r\ndata: x\n\r\n0\r\n\r\n") == b"data: x\n"
    assert decoder.done
    assert decoder.stopped


def test_an_endless_size_line_is_refused() -> None:
    decoder = ChunkedDecoder()
    for _ in range(MAX_SIZE_LINE // 64):
        decoder.feed(b"0" * 64)  # up to the limit: still waiting for the CRLF
    with pytest.raises(ChunkedEncodingError, match="too long"):
        decoder.feed(b"0" * 64)


def feed_all(pieces: list[bytes]) -> bytes:
    decoder = ChunkedDecoder()
    return b"".join(decoder.feed(piece) for piece in pieces)


@pytest.mark.parametrize(
    ("pieces", "payload"),
    [
        # A size line cut after "1": the next read's "3" continues it (0x13 bytes).
        ([b"1", b"3\r\nabc\r\n", b"x" * 14 + b"\r\n0\r\n\r\n"], b"abc\r\n" + b"x" * 14),
        # Mid-chunk: what looks like a whole chunk is payload of the current one.
        ([b"8\r\nab", b"3\r\nabc\r\n", b"0\r\n\r\n"], b"ab3\r\nabc"),
        # A chunk whose payload so far ends in CRLF, and one with no payload yet.
        ([b"8\r\n\r\n", b"abcdef\r\n0\r\n\r\n"], b"\r\nabcdef"),
        ([b"2\r\n", b"ab\r\n0\r\n\r\n"], b"ab"),
        # "10" is sixteen bytes, not ten: the CRLF after ten is payload.
        ([b"10\r\n" + b"x" * 10 + b"\r\n", b"abcd\r\n0\r\n\r\n"], b"x" * 10 + b"\r\nabcd"),
    ],
    ids=["size-line-carried", "inside-a-chunk", "payload-like-crlf", "no-payload-yet", "hex-size"],
)
def test_a_read_that_looks_like_one_chunk_is_read_with_the_state_carried_over(
    pieces: list[bytes], payload: bytes
) -> None:
    # The one-chunk fast path may only take a read that starts a chunk.
    assert feed_all(pieces) == payload
    assert feed_all([b"".join(pieces)]) == payload


@pytest.mark.parametrize(
    ("pieces", "returned"),
    [
        # One byte after a size line that is not hexadecimal; "g" is not a digit either.
        ([b"zz\r\nx\r\n"], None),
        ([b"g\r\n" + b"x" * 16 + b"\r\n"], None),
        # A chunk shorter than its size (its first three bytes are payload)...
        ([b"3\r\nab\r\n"], b"ab\r"),
        # ...and one longer.
        ([b"3\r\nabcd\r\n"], None),
        # The CRLF after a chunk, broken in the next read.
        ([b"3\r\nabc\r", b"3\r\nabc\r\n"], None),
    ],
    ids=["not-hex", "not-hex-g", "too-short", "too-long", "crlf-broken-later"],
)
def test_a_read_shaped_like_one_chunk_still_has_its_framing_checked(
    pieces: list[bytes], returned: Optional[bytes]
) -> None:
    decoder = ChunkedDecoder()
    for piece in pieces[:-1]:
        decoder.feed(piece)
    if returned is None:
        with pytest.raises(ChunkedEncodingError):
            decoder.feed(pieces[-1])
    else:
        assert decoder.feed(pieces[-1]) == returned  # the payload before the break...
        with pytest.raises(ChunkedEncodingError):
            decoder.feed(b"")  # ...then the error
    assert decoder.stopped
    assert not decoder.done


def test_the_decoder_is_neither_done_nor_stopped_until_the_last_chunk() -> None:
    decoder = ChunkedDecoder()
    assert not decoder.done
    assert not decoder.stopped
    assert decoder.feed(b"3\r\nabc\r\n") == b"abc"
    assert not decoder.done
    assert not decoder.stopped
    assert decoder.feed(b"0\r\n\r\n") == b""
    assert decoder.done
    assert decoder.stopped


@pytest.mark.parametrize(
    "last",
    [
        b"0\r\n\r\n",
        b"0\r\nExpires: never\r\nX-Trailer: 1\r\n\r\n",  # trailers are ignored
        b"0;final=yes\r\n\r\n",  # so is an extension of the last chunk
        b"0\r\n\r\n5\r\nlater\r\n",  # and whatever follows it in the same read
    ],
    ids=["plain", "trailers", "extension", "data-after"],
)
def test_the_last_chunk_ends_the_body_whatever_follows(last: bytes) -> None:
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n" + last) == b"abc"
    assert decoder.done
    assert decoder.feed(b"3\r\nxyz\r\n") == b""


def test_chunk_extensions_are_ignored_however_many() -> None:
    assert feed_all([b"3;a=1;b=2\r\nabc\r\n", b"2;c\r\nde\r\n0\r\n\r\n"]) == b"abcde"


def test_a_long_read_that_ends_inside_a_size_line_waits_for_its_end() -> None:
    # Only the size line itself is bounded by MAX_SIZE_LINE, not the read.
    big = b"x" * (MAX_SIZE_LINE + 100)
    decoder = ChunkedDecoder()
    assert decoder.feed(f"{len(big):x}\r\n".encode() + big + b"\r\n1") == big
    assert decoder.feed(b"0\r\n" + b"y" * 16 + b"\r\n0\r\n\r\n") == b"y" * 16
    assert decoder.done


@pytest.mark.parametrize(
    ("pieces", "message"),
    [
        pytest.param([b"zz\r\n"], "invalid chunk-size line b'zz'", id="not-hex"),
        pytest.param([b"z" * 50 + b"\r\n"], f"invalid chunk-size line b'{'z' * 40}'",
                     id="not-hex-cut-to-40"),
        pytest.param([b"-5\r\nabcde\r\n"], "invalid chunk size b'-5'", id="negative"),
        pytest.param([b"-" + b"0" * 49 + b"5\r\n"], f"invalid chunk size b'-{'0' * 39}'",
                     id="negative-cut-to-40"),
        pytest.param([b"-5;x\r\nabcde\r\n"], "invalid chunk size b'-5;x'",
                     id="negative-with-extension"),
        pytest.param([b"-5;" + b"x" * 50 + b"\r\n"], f"invalid chunk size b'-5;{'x' * 37}'",
                     id="negative-with-extension-cut-to-40"),
        pytest.param([b"1" * (MAX_SIZE_LINE + 1)], "a chunk-size line is too long",
                     id="endless-size-line"),
        pytest.param([b"3\r\nabcd\r\n"], "a chunk is not followed by CRLF", id="too-long"),
        pytest.param([b"3\r\nab", b"cd\r\n"], "a chunk is not followed by CRLF",
                     id="too-long-across-reads"),
    ],
)  # fmt: skip
def test_framing_errors_say_what_is_wrong(pieces: list[bytes], message: str) -> None:
    decoder = ChunkedDecoder()
    for piece in pieces:
        try:
            decoder.feed(piece)  # the payload before a break comes first...
        except ChunkedEncodingError:
            break
    assert decoder.stopped
    assert decoder.error is not None
    assert str(decoder.error) == message
    with pytest.raises(ChunkedEncodingError) as caught:
        decoder.feed(b"")  # ...and the error is raised by the next read
    assert caught.value is decoder.error
