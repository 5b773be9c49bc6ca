"""Property tests of the event-stream parser, against a slow spec reference.

The streams come from two strategies: realistic event streams built from
field lines (with every awkward case the specification covers mixed in) and
fully arbitrary bytes. Each stream is fed to the parser in pieces cut at
random points, and the items must not depend on the cuts — even when a cut
splits a CRLF, a UTF-8 sequence or the leading BOM — and must match what
``tests.spec_reference`` finds in the whole stream.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Optional, Union

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ssesync import Event, SSEParsingError
from ssesync._parser import _STRUCTURED_BLOCK, Parser
from tests.parser_helpers import Item, canon, canon_retry, encode
from tests.spec_reference import ReferenceStream, reference_parse

#: A mutation run (docs/development.rst; mutmut sets MUTANT_UNDER_TEST) runs
#: these tests once per surviving parser mutant: fewer examples keep it to
#: minutes, and the example tests of tests/test_parser.py pin each rule anyway.
EXAMPLES = 40 if "MUTANT_UNDER_TEST" in os.environ else 250

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

SMALL_MAX = 64

# -- strategies ------------------------------------------------------------------------

#: Bytes that are not valid UTF-8 on their own: a stray continuation byte, bytes
#: never used, truncated sequences, an encoded surrogate, an overlong encoding,
#: a code point beyond U+10FFFF.
INVALID_UTF8 = st.sampled_from(
    [b"\x80", b"\xbf", b"\xff", b"\xfe", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98",
     b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xef\xbb"]
)  # fmt: skip

#: Text without line ends (surrogates cannot be encoded; they are covered by
#: the invalid bytes above).
PLAIN_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=12,
)

SPECIAL_VALUES = st.sampled_from(
    ["", " ", "  ", " x", "  x", "x ", "\ufeff", "\ufeffx", "\x00", "a\x00b", ":", " : ",
     "0", "12", " 12", "007", "1.5", "-1", "+1", "1e3", "\u0661\u0662", "\uff11", "\u00b2",
     "999999999999999", "1000000000000000", "12345678901234567890", "0" * 20 + "5",
     "message", "caf\u00e9", "\u4e2d\u6587", "\U0001f600", "data: nested"]
)  # fmt: skip

LONG_VALUES = st.builds(lambda char, n: char * n, st.sampled_from("x\u00e9\u20ac\U0001f600"),
                        st.integers(40, 120))  # fmt: skip

VALUE_TEXT = st.one_of(PLAIN_TEXT, PLAIN_TEXT, SPECIAL_VALUES, SPECIAL_VALUES, LONG_VALUES)


@st.composite
def values(draw: st.DrawFn) -> bytes:
    """A field value, sometimes with invalid UTF-8 spliced in."""
    raw = draw(VALUE_TEXT).encode("utf-8")
    if draw(st.integers(0, 7)) == 0:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(INVALID_UTF8) + raw[at:]
    return raw


FIELD_NAMES = st.sampled_from(
    [b"data"] * 6 + [b"event", b"event", b"id", b"id", b"retry", b"retry",
     b"Data", b"DATA", b"dat", b"datas", b" data", b"data ", b"foo", b"\xef\xbb\xbfdata", b"i\x00d"]
)  # fmt: skip

SEPARATORS = st.sampled_from([b": ", b": ", b":", b":  ", b":\t"])

LINE_ENDS = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    """One line without its end: a field, a bare field name, a comment or blank."""
    kind = draw(st.integers(0, 11))
    if kind <= 7:
        return draw(FIELD_NAMES) + draw(SEPARATORS) + draw(values())
    if kind <= 9:
        return draw(FIELD_NAMES)  # no colon: the value is ""
    if kind == 10:
        return b":" + draw(values())  # a comment
    return b""  # a stray blank line


@st.composite
def blocks(draw: st.DrawFn) -> bytes:
    """Some lines, each with its own line end, usually closed by a blank line."""
    out = b"".join(line + draw(LINE_ENDS) for line in draw(st.lists(lines(), max_size=4)))
    if draw(st.integers(0, 7)):
        out += draw(LINE_ENDS)
    return out


@st.composite
def event_streams(draw: st.DrawFn) -> bytes:
    """A realistic event stream with mixed line ends, BOMs and awkward values."""
    parts: list[bytes] = []
    bom = draw(st.integers(0, 3))
    if bom:
        parts.append(b"\xef\xbb\xbf" * bom)  # a second BOM must be kept
    parts.extend(draw(st.lists(blocks(), max_size=8)))
    if draw(st.booleans()):
        parts.append(draw(lines()))  # an unterminated last line
    return b"".join(parts)


STREAMS = st.one_of(event_streams(), st.binary(max_size=300))


@st.composite
def usual_blocks(draw: st.DrawFn) -> bytes:
    """A block as most servers write it: ``event:``/``id:`` lines, then ``data:`` lines.

    These are what the parser's one-pass path (``_parse_structured``) takes;
    every few blocks something else (a comment, a retry, a field without its
    space, a stray blank line, CRLF ends) makes a read fall back mid-stream.
    """
    end = draw(st.sampled_from([b"\n"] * 6 + [b"\r\n", b"\r"]))
    head = draw(st.lists(st.sampled_from([b"event", b"id"]), max_size=3))
    lines = [name + b": " + draw(values()) for name in head]
    lines += [b"data: " + draw(values()) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.integers(0, 9)) == 0:
        odd = draw(st.sampled_from([b": ping", b"retry: 250", b"data:x", b"id", b"event:t", b""]))
        lines.insert(draw(st.integers(0, len(lines))), odd)
    return end.join(lines) + end + end


USUAL_STREAMS = st.lists(usual_blocks(), min_size=1, max_size=12).map(b"".join)


@st.composite
def message_blocks(draw: st.DrawFn) -> bytes:
    """Mostly ``data: <value>`` blocks, what ``_parse_messages`` takes whole.

    Every few blocks something close to that shape (no space, two spaces,
    an empty value, a second data line, a comment, stray blank lines, an
    ``id:``, CRLF ends) makes a read fall back, or is taken whole when it
    only looks odd (``data:  x``, ``data: ``).
    """
    end = draw(st.sampled_from([b"\n"] * 8 + [b"\r\n", b"\r"]))
    block = b"data: " + draw(values())
    if draw(st.integers(0, 5)) == 0:
        block = draw(st.sampled_from([
            b"data:x", b"data:  x", b"data: ", b"data", b"data: a" + end + b"data: b",
            b": ping", b"id: 7" + end + b"data: x", b"data: x" + end, end + b"data: y",
            b"data: \ndata", b"event: e" + end + b"data: z",
        ]))  # fmt: skip
    return block + end + end


MESSAGE_STREAMS = st.lists(message_blocks(), min_size=1, max_size=16).map(b"".join)

#: Arbitrary bytes drawn from the bytes that matter most to the parser.
DENSE_BYTES = st.lists(
    st.sampled_from([b"\r", b"\n", b":", b" ", b"d", b"data", b"id", b"retry", b"event",
                     b"1", b"\x00", b"\xef", b"\xbb", b"\xbf", b"\xc3", b"\xa9", b"\xff", b"x"]),
    max_size=120,
).map(b"".join)  # fmt: skip

ANY_STREAMS = st.one_of(STREAMS, DENSE_BYTES)


@st.composite
def cut(draw: st.DrawFn, stream: st.SearchStrategy[bytes]) -> tuple[bytes, list[bytes]]:
    """A stream and a list of pieces that join up to it (some may be empty)."""
    data = draw(stream)
    if draw(st.integers(0, 5)) == 0:
        return data, [data[i : i + 1] for i in range(len(data))]  # byte by byte
    # Favour the cuts that matter: right after a CR or LF (seams inside CRLF
    # and between the two LFs of a blank line) and inside multi-byte sequences.
    anywhere = st.integers(0, len(data))
    tricky = [i for i in range(1, len(data)) if data[i - 1] in b"\r\n" or data[i - 1] >= 0x80]
    where = st.one_of(anywhere, st.sampled_from(tricky)) if tricky else anywhere
    points = sorted(draw(st.lists(where, max_size=12)))
    bounds = [0, *points, len(data)]
    return data, [data[a:b] for a, b in zip(bounds, bounds[1:])]


# -- helpers ---------------------------------------------------------------------------


def feed_all(
    pieces: Sequence[bytes],
    *,
    one_pass: bool = False,
    long_blocks: bool = False,
    messages: Optional[bool] = None,
    **kwargs: object,
) -> tuple[list[Item], Parser]:
    """Feed the pieces in turn, optionally forcing a path on every read.

    Left to itself the parser tries its one-pass path only after a read with
    blocks of several lines (and backs off after a miss), and its path for
    long blocks only after a read whose blocks averaged over 512 characters;
    ``one_pass`` and ``long_blocks`` force them on every read, so that both
    their success and their fallback run on whatever the strategy drew.
    ``messages`` forces the all-messages path (``_parse_messages``) on
    (``True``: tried on every read, despite its backoff) or off (``False``).
    Each read's ``plain`` flag is checked against what the read returned and
    the last event ID, which the reader then takes as unchanged.
    """
    parser = Parser(**kwargs)  # type: ignore[arg-type]
    items: list[Union[Event, str]] = []
    for piece in pieces:
        if one_pass:
            parser._structured, parser._structured_skip = True, 0
        if long_blocks:
            parser._long_blocks = True
        if messages is not None:
            parser._messages_skip = 0 if messages else 1 << 30
        last_event_id = parser.last_event_id
        got = parser.feed(piece)
        if parser.error is not None:
            raise parser.error  # after items completed before it: see _outcome
        if parser.plain:  # the reader then skips its id bookkeeping: it must be true
            assert all(type(i) is Event and i.id is None and i.type == "message" for i in got)
            assert parser.last_event_id == last_event_id
        items.extend(got)
    return encode(items), parser


# -- properties ------------------------------------------------------------------------


@SETTINGS
@given(data=STREAMS, last_event_id=st.sampled_from(["", "seed", "\u00e9"]))
@example(data=b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", last_event_id="")
@example(data=b"data: x\r\rid\r\r", last_event_id="old")
def test_one_read_matches_reference(data: bytes, last_event_id: str) -> None:
    items, parser = feed_all([data], last_event_id=last_event_id)
    expected, expected_last_id = reference_parse(data, last_event_id)
    assert canon(items) == canon(expected)
    assert parser.last_event_id == expected_last_id


@SETTINGS
@given(data=ANY_STREAMS)
def test_byte_by_byte_matches_reference(data: bytes) -> None:
    items, parser = feed_all([data[i : i + 1] for i in range(len(data))])
    expected, expected_last_id = reference_parse(data)
    assert canon(items) == canon(expected)
    assert parser.last_event_id == expected_last_id


@SETTINGS
@given(case=cut(ANY_STREAMS))
@example(case=(b"data: a\n\ndata: b\n\n", [b"data: a\n", b"\ndata: b\n\n"]))
@example(case=(b"id: 1\r\n\r\ndata: b\r\n\r\n", [b"id: 1\r", b"\n\r", b"\ndata: b\r\n\r\n"]))
@example(case=(b"retry: 5\ndata: x\n\nretry: 9\n", [b"retry: 5\ndata: x\n\nretry: 9\n"]))
def test_cut_reads_match_one_read_and_reference(case: tuple[bytes, list[bytes]]) -> None:
    data, pieces = case
    items, parser = feed_all(pieces)
    one_read, _ = feed_all([data])
    reference = ReferenceStream()
    reference.parse(data)
    assert items == one_read
    assert feed_all(pieces, one_pass=True)[0] == items
    assert feed_all(pieces, long_blocks=True)[0] == items
    assert feed_all(pieces, messages=True)[0] == items
    assert feed_all(pieces, messages=False)[0] == items
    assert canon(items) == canon(reference.items)
    assert parser.last_event_id == reference.last_event_id
    # The reconnection time, once the stream has ended (the parser applies
    # the retry lines of an unfinished block then).
    parser.end()
    assert canon_retry(parser.retry) == canon_retry(reference.reconnection_time)


#: The last ``event:`` line wins, even across an ``id:`` line.
TWO_EVENT_LINES = b"event: a\nid: 1\nevent: b\ndata: x\ndata: y\n\n"
#: An id with NUL is ignored; an empty one resets the last event ID.
NUL_AND_EMPTY_IDS = [b"id: 1\ndata: a\n\n", b"id: 2\x00\ndata: b\n\nid: \ndata: c\n\n"]


@SETTINGS
@given(case=cut(USUAL_STREAMS))
@example(case=(TWO_EVENT_LINES, [TWO_EVENT_LINES]))
@example(case=(b"".join(NUL_AND_EMPTY_IDS), NUL_AND_EMPTY_IDS))
def test_usual_streams_cut_anywhere_match_the_reference(case: tuple[bytes, list[bytes]]) -> None:
    data, pieces = case
    expected, expected_last_id = reference_parse(data)
    for one_pass, long_blocks in ((False, False), (True, False), (False, True)):
        items, parser = feed_all(pieces, one_pass=one_pass, long_blocks=long_blocks)
        assert canon(items) == canon(expected)
        assert parser.last_event_id == expected_last_id


@SETTINGS
@given(case=cut(MESSAGE_STREAMS), last_event_id=st.sampled_from(["", "seed"]))
@example(case=(b"data: a\n\ndata: \n\ndata:  b\n\n", [b"data: a\n\ndata: \n\ndata:  b\n\n"]),
         last_event_id="seed")
@example(case=(b"data: a\n\n\ndata: b\n\n", [b"data: a\n\n\ndata: b\n\n"]), last_event_id="")
@example(case=(b"data: a\n\ndata: b\ndata: c\n\n", [b"data: a\n\ndata: b\ndata: c\n\n"]),
         last_event_id="")
def test_message_streams_cut_anywhere_match_the_reference(
    case: tuple[bytes, list[bytes]], last_event_id: str
) -> None:
    # Streams of one-line data blocks take _parse_messages; the examples pin
    # its edges: empty data and a second space taken whole, a stray blank
    # line and a two-line block sent back to the block-by-block path.
    data, pieces = case
    expected, expected_last_id = reference_parse(data, last_event_id)
    for messages in (None, True, False):
        for long_blocks in (False, True):
            items, parser = feed_all(
                pieces, messages=messages, long_blocks=long_blocks, last_event_id=last_event_id
            )
            assert canon(items) == canon(expected)
            assert parser.last_event_id == expected_last_id


@SETTINGS
@given(case=cut(ANY_STREAMS))
def test_small_max_event_size_only_raises_parsing_error_and_stays_bounded(
    case: tuple[bytes, list[bytes]],
) -> None:
    _, pieces = case
    parser = Parser(max_event_size=SMALL_MAX)
    for piece in pieces:
        try:
            parser.feed(piece)
        except SSEParsingError:
            continue  # feeding on after an error must stay safe and bounded too
        assert parser.buffered <= SMALL_MAX


def _outcome(pieces: Sequence[bytes], **kwargs: object) -> tuple[list[Item], bool]:
    """The items handed out before the parser failed, and whether it failed."""
    parser = Parser(**kwargs)  # type: ignore[arg-type]
    items: list[Union[Event, str]] = []
    for piece in pieces:
        try:
            items.extend(parser.feed(piece))
        except SSEParsingError:
            return encode(items), True
        if parser.error is not None:
            return encode(items), True
    return encode(items), False


@SETTINGS
@given(case=cut(ANY_STREAMS), strict=st.booleans())
@example(case=(b"data: abcd\n\n", [b"data: abcd\n", b"\n"]), strict=False)
def test_small_max_event_size_outcome_does_not_depend_on_cuts(
    case: tuple[bytes, list[bytes]], strict: bool
) -> None:
    # Nothing complete is lost to a later error: the items handed out before
    # it, and the error itself, are the same however the bytes were cut
    # (byte by byte, each item is handed out as soon as it is complete).
    data, pieces = case
    size = 10 if len(data) % 2 else SMALL_MAX
    one_read = _outcome([data], max_event_size=size, strict=strict)
    assert _outcome(pieces, max_event_size=size, strict=strict) == one_read
    bytewise = [data[i : i + 1] for i in range(len(data))]
    assert _outcome(bytewise, max_event_size=size, strict=strict) == one_read


@SETTINGS
@given(data=ANY_STREAMS)
def test_small_max_event_size_agrees_with_reference_when_nothing_raises(data: bytes) -> None:
    try:
        items, _ = feed_all([data], max_event_size=SMALL_MAX)
    except SSEParsingError:
        return
    expected, _ = reference_parse(data)
    assert canon(items) == canon(expected)


@SETTINGS
@given(case=cut(ANY_STREAMS))
def test_strict_mode_only_raises_parsing_error(case: tuple[bytes, list[bytes]]) -> None:
    _, pieces = case
    parser = Parser(strict=True)
    for piece in pieces:
        try:
            parser.feed(piece)
        except SSEParsingError:
            return


@SETTINGS
@given(data=ANY_STREAMS)
def test_strict_mode_when_it_accepts_agrees_with_lenient_mode(data: bytes) -> None:
    try:
        strict_items, _ = feed_all([data], strict=True)
    except SSEParsingError:
        return
    lenient_items, _ = feed_all([data])
    assert strict_items == lenient_items


def _valid_only(
    stream_lines: Sequence[tuple[str, str, Optional[str]]],
) -> bytes:
    return b"".join(
        (name + (sep if value is not None else "") + (value or "") + "\n").encode()
        for name, sep, value in stream_lines
    )


VALID_LINES = st.lists(
    st.tuples(
        st.sampled_from(["data", "event", "id", "retry", ""]),
        st.sampled_from([":", ": "]),
        st.one_of(st.none(), st.text(alphabet="ab 1", max_size=6)),
    ),
    max_size=15,
)


@SETTINGS
@given(stream_lines=VALID_LINES)
def test_strict_mode_accepts_streams_without_violations(
    stream_lines: list[tuple[str, str, Optional[str]]],
) -> None:
    cleaned = []
    for name, sep, value in stream_lines:
        if name == "retry":
            value = "1500"  # the only retry values strict mode accepts are digits
        cleaned.append((name, sep, value))
    data = _valid_only(cleaned) + b"\n"
    strict_items, _ = feed_all([data], strict=True)
    expected, _ = reference_parse(data)
    assert canon(strict_items) == canon(expected)


#: The one-pass block pattern as first written, with greedy ``?`` and ``*``:
#: the parser's own spelling (branches, and a possessive ``*+`` where Python
#: matches it correctly) must find exactly what this one finds.
PLAIN_STRUCTURED_BLOCK = re.compile(
    r"(event: [^\n]*\n)?(id: [^\n\0]*\n)?(event: [^\n]*\n)?"
    r"data: ([^\n]*(?:\ndata: [^\n]*)*)\n\n|([\s\S])"
)

#: Pieces that make texts close to the pattern's shape and just off it.
PATTERN_PIECES = st.sampled_from(
    ["event: ", "id: ", "data: ", "data:", "data", "event:", "id:", "\n", "\n", "\n\n",
     "\ndata: ", "\0", "x", " ", ":", "\u00e9", "\U0001f680", "datum"]
)  # fmt: skip


@SETTINGS
@given(pieces=st.lists(st.one_of(PATTERN_PIECES, PATTERN_PIECES, PLAIN_TEXT), max_size=30))
@example(pieces=["data: a", "\ndata", "\n\n"])  # a data line that falls short
@example(pieces=["event: a\n", "event: b\n", "id: 1\n", "data: x\n\n"])
@example(pieces=["id: 1\n", "event: t\n", "data: x", "\ndata: y", "\n\n"])
@example(pieces=["id: a\0b\n", "data: x\n\n"])  # an id with NUL is not of the shape
def test_structured_pattern_finds_what_the_plain_spelling_finds(pieces: list[str]) -> None:
    text = "".join(pieces)
    for start in range(min(len(text), 3) + 1):
        assert _STRUCTURED_BLOCK.findall(text, start) == PLAIN_STRUCTURED_BLOCK.findall(
            text, start
        )
