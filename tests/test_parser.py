"""Example tests of the event-stream parser: one named test per rule.

The rules are those of the WHATWG HTML standard, "Server-sent events",
"Interpreting an event stream". Items are compared in a plain encoding: an
event as the 5-tuple ``(data, event, id, retry, last_event_id)`` and a
comment as ``("comment", text)``, the same encoding as tests/spec_reference.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Optional, Union

import pytest

from ssesync import Event, SSEParsingError
from ssesync._parser import DEFAULT_MAX_EVENT_SIZE, Parser
from tests.parser_helpers import Item, encode
from tests.spec_reference import ReferenceStream, reference_parse


def ev(
    data: str,
    event: Optional[str] = None,
    id: Optional[str] = None,
    retry: Optional[int] = None,
    last_event_id: str = "",
) -> Item:
    """The expected encoding of one event."""
    return (data, event, id, retry, last_event_id)


def comment(text: str) -> Item:
    return ("comment", text)


def parse(*pieces: bytes, **kwargs: object) -> list[Item]:
    """Feed ``pieces`` to a new parser, one read each; the items, encoded."""
    return feed(Parser(**kwargs), *pieces)  # type: ignore[arg-type]


def feed(parser: Parser, *pieces: bytes) -> list[Item]:
    items: list[Union[Event, str]] = []
    for piece in pieces:
        items.extend(parser.feed(piece))
    return encode(items)


def check(pieces: Sequence[bytes], expected: list[Item]) -> None:
    """The items of ``pieces`` fed in those reads, in one read, and per the reference."""
    whole = b"".join(pieces)
    assert parse(*pieces) == expected
    assert parse(whole) == expected
    assert reference_parse(whole)[0] == expected


# -- line ends -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data: a\n\n", [ev("a")], id="lf"),
        pytest.param(b"data: a\r\n\r\n", [ev("a")], id="crlf"),
        pytest.param(b"data: a\r\r", [ev("a")], id="cr"),
        pytest.param(b"data: a\rdata: b\r\ndata: c\n\r\n", [ev("a\nb\nc")], id="mixed"),
        pytest.param(b"data: a\n\r\ndata: b\r\n\rdata: c\r\n\n", [ev("a"), ev("b"), ev("c")],
                     id="mixed-blank-lines"),
        pytest.param(b"data: a\n\r\r\n\n\ndata: b\n\n", [ev("a"), ev("b")], id="many-blank-lines"),
    ],
)  # fmt: skip
def test_line_ends(stream: bytes, expected: list[Item]) -> None:
    check([stream], expected)
    check([stream[i : i + 1] for i in range(len(stream))], expected)


def test_cr_split_across_reads() -> None:
    # CR then LF in the next read is one line end (CRLF), not a blank line.
    assert parse(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [ev("a\nb")]
    assert parse(b"data: a\r", b"\n", b"data: b\r\n\r\n") == [ev("a\nb")]


def test_lone_cr_dispatches_without_waiting() -> None:
    assert parse(b"data: x\r\r") == [ev("x")]
    parser = Parser()
    assert feed(parser, b"data: x\r") == []
    assert feed(parser, b"\r") == [ev("x")]
    assert feed(parser, b"\ndata: y\n\n") == [ev("y")]  # that LF ended the CR's line


# -- the byte order mark and decoding --------------------------------------------------


def test_leading_bom_stripped() -> None:
    check([b"\xef\xbb\xbfdata: x\n\n"], [ev("x")])


def test_bom_split_over_three_reads_stripped_once() -> None:
    assert parse(b"\xef", b"\xbb", b"\xbf", b"data: x\n\n") == [ev("x")]
    assert parse(b"", b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [ev("x")]
    # The second BOM, right after the first, is part of the field name.
    assert parse(b"\xef", b"\xbb", b"\xbf\xef\xbb", b"\xbfdata: x\n\n") == []


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", [], id="second-bom-in-field-name"),
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbf: c\n\n", [], id="second-bom-before-colon"),
        pytest.param(b"data: x\n\n\xef\xbb\xbfdata: y\n\n", [ev("x")], id="bom-later-in-stream"),
        pytest.param(b"data: \xef\xbb\xbfy\n\n", [ev("\ufeffy")], id="bom-in-value"),
    ],
)
def test_second_bom_is_kept(stream: bytes, expected: list[Item]) -> None:
    check([stream], expected)


@pytest.mark.parametrize(
    ("stream", "data"),
    [
        pytest.param(b"data: \xff\n\n", "\ufffd", id="invalid-byte"),
        pytest.param(b"data: a\xc3\n\n", "a\ufffd", id="truncated-2-byte"),
        pytest.param(b"data: \xf0\x9f\x98\n\n", "\ufffd", id="truncated-4-byte"),
        pytest.param(b"data: \xe2\x82x\n\n", "\ufffdx", id="truncated-then-ascii"),
        pytest.param(b"data: \xed\xa0\x80\n\n", "\ufffd" * 3, id="encoded-surrogate"),
        pytest.param(b"data: \xc0\xaf\n\n", "\ufffd" * 2, id="overlong"),
        pytest.param(b"data: \xf4\x90\x80\x80\n\n", "\ufffd" * 4, id="beyond-10ffff"),
    ],
)
def test_invalid_utf8_replaced(stream: bytes, data: str) -> None:
    check([stream], [ev(data)])
    check([stream[i : i + 1] for i in range(len(stream))], [ev(data)])


def test_invalid_utf8_in_field_name_makes_it_unknown() -> None:
    check([b"dat\xffa: x\n\n"], [])


@pytest.mark.parametrize("at", range(7, 11))
def test_multibyte_char_split_across_reads(at: int) -> None:
    stream = b"data: \xf0\x9f\x98\x80\xc3\xa9\n\n"
    assert parse(stream[:at], stream[at:]) == [ev("\U0001f600\u00e9")]
    assert parse(*(stream[i : i + 1] for i in range(len(stream)))) == [ev("\U0001f600\u00e9")]


# -- fields ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "data"),
    [
        pytest.param(b"data:x", "x", id="no-space"),
        pytest.param(b"data: x", "x", id="one-space"),
        pytest.param(b"data:  x", " x", id="two-spaces"),
        pytest.param(b"data:\tx", "\tx", id="tab-kept"),
        pytest.param(b"data: x ", "x ", id="trailing-space-kept"),
        pytest.param(b"data: ", "", id="only-a-space"),
        pytest.param(b"data:  ", " ", id="only-two-spaces"),
        pytest.param(b"data: a: b", "a: b", id="later-colon-kept"),
    ],
)
def test_one_space_stripped(line: bytes, data: str) -> None:
    check([line + b"\n\n"], [ev(data)])


def test_event_type_keeps_second_space() -> None:
    items = Parser().feed(b"event:  greeting\ndata: hi\n\n")
    assert encode(items) == [ev("hi", event=" greeting")]
    assert isinstance(items[0], Event)
    assert items[0].type == " greeting"


@pytest.mark.parametrize(
    ("stream", "event", "event_type"),
    [
        pytest.param(b"data: x\n\n", None, "message", id="absent"),
        pytest.param(b"event: add\ndata: x\n\n", "add", "add", id="named"),
        pytest.param(b"event:\ndata: x\n\n", "", "message", id="empty"),
        pytest.param(b"event: a\nevent: b\ndata: x\n\n", "b", "b", id="last-wins"),
    ],
)
def test_event_type(stream: bytes, event: Optional[str], event_type: str) -> None:
    items = Parser().feed(stream)
    assert encode(items) == [ev("x", event=event)]
    assert isinstance(items[0], Event)
    assert items[0].type == event_type


def test_event_type_reset_after_dispatch() -> None:
    check([b"event: add\ndata: a\n\ndata: b\n\n"], [ev("a", event="add"), ev("b")])


@pytest.mark.parametrize(
    ("stream", "data"),
    [
        pytest.param(b"data: a\ndata: b\n\n", "a\nb", id="two"),
        pytest.param(b"data: a\ndata\ndata: c\n\n", "a\n\nc", id="empty-middle"),
        pytest.param(b"data: a\ndata:\n\n", "a\n", id="empty-last"),
        pytest.param(b"data\ndata\n\n", "\n", id="two-empty"),
        pytest.param(b"data: a\nfoo: x\ndata: b\n\n", "a\nb", id="unknown-between"),
    ],
)
def test_data_lines_joined(stream: bytes, data: str) -> None:
    check([stream], [ev(data)])


@pytest.mark.parametrize("line", [b"data", b"data:", b"data: "])
def test_empty_data_line_dispatches_empty_string(line: bytes) -> None:
    check([line + b"\n\n"], [ev("")])


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"event: ping\n", id="event-only"),
        pytest.param(b"id: 1\nevent: a\nretry: 5\n", id="no-data-field"),
        pytest.param(b"foo: bar\n", id="unknown-field"),
        pytest.param(b"Data: x\nDATA: x\ndata : x\n", id="not-quite-data"),
    ],
)
def test_event_without_data_not_dispatched(block: bytes) -> None:
    items, _ = reference_parse(block + b"\n")
    assert items == []
    assert parse(block + b"\n") == []
    # ...and its event type does not leak into the next block.
    assert parse(block + b"\ndata: x\n\n")[0][:2] == ("x", None)


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        pytest.param(b"data\n\n", [ev("")], id="data"),
        pytest.param(b"event\ndata: x\n\n", [ev("x", event="")], id="event"),
        pytest.param(b"id: 1\nid\ndata: x\n\n", [ev("x", id="", last_event_id="")], id="id"),
        pytest.param(b"retry\ndata: x\n\n", [ev("x")], id="retry"),
        pytest.param(b"data \n\n", [], id="name-with-space"),
    ],
)
def test_field_without_colon(stream: bytes, expected: list[Item]) -> None:
    check([stream], expected)


@pytest.mark.parametrize(
    ("line", "text"),
    [
        pytest.param(b":x", "x", id="no-space"),
        pytest.param(b": x", "x", id="one-space"),
        pytest.param(b":  x", " x", id="two-spaces"),
        pytest.param(b":", "", id="empty"),
        pytest.param(b"::x", ":x", id="second-colon"),
        pytest.param(b": \xff", "\ufffd", id="invalid-utf8"),
    ],
)
def test_comment_text(line: bytes, text: str) -> None:
    check([line + b"\n\n"], [comment(text)])


def test_comments_reported_in_stream_order() -> None:
    check(
        [b": a\ndata: x\n: b\n\n: c\n\ndata: y\n\n"],
        [comment("a"), comment("b"), ev("x"), comment("c"), ev("y")],
    )


# -- id and the last event ID ----------------------------------------------------------


def test_id_sets_event_id_and_last_event_id() -> None:
    check([b"id: 1\ndata: a\n\n"], [ev("a", id="1", last_event_id="1")])


@pytest.mark.parametrize(
    "id_line",
    [b"id: a\x00b", b"id: \x00", b"id:\x00", b"id: 2\x00"],
)
def test_id_with_nul_ignored(id_line: bytes) -> None:
    stream = b"id: 1\ndata: a\n\ndata: b\n" + id_line + b"\n\n"
    check([stream], [ev("a", id="1", last_event_id="1"), ev("b", last_event_id="1")])
    parser = Parser()
    feed(parser, stream)
    assert parser.last_event_id == "1"


def test_id_with_nul_ignored_keeps_earlier_id_of_block() -> None:
    check([b"id: 1\nid: 2\x00\ndata: a\n\n"], [ev("a", id="1", last_event_id="1")])


@pytest.mark.parametrize("empty_id", [b"id", b"id:", b"id: "])
def test_empty_id_resets_last_event_id(empty_id: bytes) -> None:
    stream = b"id: 1\ndata: a\n\n" + empty_id + b"\ndata: b\n\ndata: c\n\n"
    check([stream], [ev("a", id="1", last_event_id="1"), ev("b", id=""), ev("c")])
    parser = Parser(last_event_id="seed")
    feed(parser, stream)
    assert parser.last_event_id == ""


def test_id_persists_across_events() -> None:
    stream = b"id: 7\ndata: a\n\ndata: b\n\nevent: x\ndata: c\n\n"
    expected = [
        ev("a", id="7", last_event_id="7"),
        ev("b", last_event_id="7"),
        ev("c", event="x", last_event_id="7"),
    ]
    check([stream], expected)


def test_seeded_last_event_id_persists() -> None:
    parser = Parser(last_event_id="seed")
    assert feed(parser, b"data: a\n\n") == [ev("a", last_event_id="seed")]
    assert parser.last_event_id == "seed"
    assert reference_parse(b"data: a\n\n", "seed") == ([ev("a", last_event_id="seed")], "seed")


def test_id_only_block_updates_last_event_id_without_event() -> None:
    parser = Parser()
    assert feed(parser, b"id: 42\n\n") == []
    assert parser.last_event_id == "42"
    assert feed(parser, b"data: x\n\n") == [ev("x", last_event_id="42")]
    assert reference_parse(b"id: 42\n\n") == ([], "42")


def test_id_of_incomplete_block_does_not_update_last_event_id() -> None:
    parser = Parser()
    assert feed(parser, b"id: 5\ndata: x\n") == []
    assert parser.last_event_id == ""
    assert reference_parse(b"id: 5\ndata: x\n") == ([], "")


# -- retry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "retry"),
    [
        pytest.param(b"1500", 1500, id="digits"),
        pytest.param(b"0", 0, id="zero"),
        pytest.param(b"007", 7, id="leading-zeros"),
        pytest.param(b" 12", None, id="second-space"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b"1.5", None, id="decimal"),
        pytest.param(b"-1", None, id="negative"),
        pytest.param(b"+1", None, id="plus"),
        pytest.param(b"1e3", None, id="exponent"),
        pytest.param(b"12a", None, id="trailing-letter"),
        pytest.param(b"12 ", None, id="trailing-space"),
        pytest.param("\u0661\u0662".encode(), None, id="arabic-indic-digits"),
        pytest.param("\uff11\uff12".encode(), None, id="fullwidth-digits"),
        pytest.param("\u00b2".encode(), None, id="superscript-two"),
    ],
)
def test_retry_only_ascii_digits(value: bytes, retry: Optional[int]) -> None:
    stream = b"retry: " + value + b"\ndata: x\n\n"
    check([stream], [ev("x", retry=retry)])
    parser = Parser()
    feed(parser, stream)
    assert parser.retry == retry


def test_retry_set_by_block_without_data() -> None:
    parser = Parser()
    assert feed(parser, b"retry: 1500\n\n") == []
    assert parser.retry == 1500


def test_retry_newest_valid_value_wins() -> None:
    parser = Parser()
    assert feed(parser, b"retry: 10\nretry: x\ndata: a\n\nretry: 20\n\n") == [ev("a", retry=10)]
    assert parser.retry == 20


def test_retry_is_per_block_on_events() -> None:
    check([b"retry: 10\ndata: a\n\ndata: b\n\n"], [ev("a", retry=10), ev("b")])


# -- end of stream ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: a\n\ndata: b\n", id="terminated-line"),
        pytest.param(b"data: a\n\ndata: b", id="unterminated-line"),
        pytest.param(b"data: a\n\ndata: b\r", id="cr-ended-line"),
    ],
)
def test_trailing_incomplete_event_is_not_emitted(stream: bytes) -> None:
    check([stream], [ev("a")])
    parser = Parser()
    feed(parser, stream)
    assert parser.buffered > 0


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        pytest.param((b"data: x\nd", b"ata: z\n\n"), [ev("x\nz")], id="data-line-continues"),
        pytest.param((b"data: x\ny", b": z\n\n"), [ev("x")], id="field-line-continues"),
        pytest.param((b"data: x\n:", b" c\n\n"), [comment("c"), ev("x")], id="comment-follows"),
        pytest.param((b"data: \nx\n", b"\n"), [ev("")], id="second-line-ended"),
    ],
)
def test_a_first_read_of_one_line_and_more_waits_for_its_block(
    pieces: tuple[bytes, ...], expected: list[Item]
) -> None:
    # A fresh read shaped like "data: x" plus one more character is no
    # complete event: the one-read, one-event path must not take it.
    parser = Parser()
    assert parser.feed(pieces[0]) == []
    assert feed(parser, *pieces[1:]) == expected
    check(pieces, expected)


@pytest.mark.parametrize("first", [b" data: x", b"\tdata: x", b"Xdata: x", b"data: x X"])
def test_an_unfinished_first_line_is_kept_as_it_came(first: bytes) -> None:
    # Only the blank lines before a block are dropped, nothing of its first line.
    check([b"\n\n" + first, b"\n\n"], reference_parse(first + b"\n\n")[0])
    check([b"id: 1\n" + first + b"X\n\n"], reference_parse(b"id: 1\n" + first + b"X\n\n")[0])


def test_comment_of_an_incomplete_final_block_is_still_reported() -> None:
    # The comment's line was complete, so it was reported at once; the
    # block it sits in never completes, so its event is not.
    check([b"data: a\n\n: c\ndata: b\n"], [ev("a"), comment("c")])


# -- strict mode -----------------------------------------------------------------------


def test_strict_accepts_a_valid_stream() -> None:
    stream = b"\xef\xbb\xbf: hi\nevent: e\nid: 1\nretry: 10\ndata: \xc3\xa9\ndata\n\n"
    assert parse(stream, strict=True) == parse(stream)
    assert parse(stream, strict=True) == [comment("hi"), ev("\u00e9\n", "e", "1", 10, "1")]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: \xff\n\n", id="in-data"),
        pytest.param(b"data: \xed\xa0\x80\n\n", id="surrogate"),
    ],
)
def test_strict_invalid_utf8_raises(stream: bytes) -> None:
    with pytest.raises(SSEParsingError):
        Parser(strict=True).feed(stream)


def test_strict_invalid_utf8_split_across_reads_raises() -> None:
    parser = Parser(strict=True)
    assert parser.feed(b"data: \xe2\x82") == []  # might still be valid
    with pytest.raises(SSEParsingError):
        parser.feed(b"x\n\n")


@pytest.mark.parametrize("value", [b"", b"1.5", b" 1", b"-1", "\u0661".encode()])
def test_strict_invalid_retry_raises(value: bytes) -> None:
    with pytest.raises(SSEParsingError):
        Parser(strict=True).feed(b"retry: " + value + b"\ndata: x\n\n")


def test_strict_id_with_nul_raises() -> None:
    with pytest.raises(SSEParsingError):
        Parser(strict=True).feed(b"id: a\x00b\ndata: x\n\n")


@pytest.mark.parametrize("name", [b"foo", b"Data", b"data ", b"\xef\xbb\xbfdata"])
def test_strict_unknown_field_raises(name: bytes) -> None:
    with pytest.raises(SSEParsingError):
        Parser(strict=True).feed(b"data: x\n" + name + b": y\n\n")


STRICT_VALID = b"id: 1\nid:2\nretry: 10\nretry:20\nevent: e\nevent:f\ndata: x\ndata:y\ndata\n\n"


@pytest.mark.parametrize(
    "cut", [pytest.param(0, id="one-read"), pytest.param(1, id="bytewise"), pytest.param(5)]
)
def test_strict_checks_each_line_however_the_block_is_cut(cut: int) -> None:
    # In an unfinished block strict mode checks each line as it completes
    # (_check_line), in a complete one with the block (_process_block): the
    # same rules either way.
    pieces = [STRICT_VALID[i : i + cut] for i in range(0, len(STRICT_VALID), cut)] if cut else [
        STRICT_VALID
    ]
    assert parse(*pieces, strict=True) == [ev("x\ny\n", "f", "2", 20, "2")]


STRICT_ERRORS = [
    pytest.param(b"id: a\x00b\n", "an id field contains NUL", id="id-with-nul"),
    pytest.param(b"retry: 1.5\n", "invalid retry value '1.5'", id="retry-not-digits"),
    pytest.param(b"retry:  5\n", "invalid retry value ' 5'", id="retry-two-spaces"),
    pytest.param(b"retry:x5\n", "invalid retry value 'x5'", id="retry-no-space"),
    pytest.param(b"retry: " + b"9" * 50 + b"x\n", f"invalid retry value '{'9' * 40}'",
                 id="retry-value-cut-to-40"),
    pytest.param(b"foo: y\n", "unknown field 'foo'", id="unknown-field"),
    pytest.param(b"f" * 50 + b"\n", f"unknown field '{'f' * 40}'", id="name-cut-to-40"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "message"), STRICT_ERRORS)
@pytest.mark.parametrize("cut", [0, 1], ids=["one-read", "bytewise"])
def test_strict_violations_name_the_line(line: bytes, message: str, cut: int) -> None:
    # Fed a byte at a time, the block never completes: the line is refused
    # as soon as it ends, not when its block does.
    stream = b"data: x\n" + line
    pieces = [stream[i : i + 1] for i in range(len(stream))] if cut else [stream + b"\n"]
    with pytest.raises(SSEParsingError) as caught:
        parse(*pieces, strict=True)
    assert str(caught.value) == message


def test_strict_invalid_utf8_is_reported_with_its_cause() -> None:
    parser = Parser(strict=True)
    with pytest.raises(SSEParsingError) as caught:
        parser.feed(b"data: \xff\n\n")
    assert str(caught.value) == "invalid UTF-8 in the event stream: invalid start byte"
    assert isinstance(caught.value.__cause__, UnicodeDecodeError)


def test_strict_violation_before_invalid_utf8_is_raised_when_nothing_came_before() -> None:
    with pytest.raises(SSEParsingError, match="unknown field 'foo'"):
        Parser(strict=True).feed(b"foo: x\n\ndata: \xff\n\n")


# -- size limits -----------------------------------------------------------------------


def test_line_longer_than_max_event_size_raises() -> None:
    parser = Parser(max_event_size=100)
    with pytest.raises(SSEParsingError):
        parser.feed(b"data: " + b"x" * 200)  # no line end yet


def test_line_longer_than_max_event_size_raises_across_reads() -> None:
    parser = Parser(max_event_size=100)
    for _ in range(10):
        parser.feed(b"x" * 10)
        assert parser.buffered <= 100
    with pytest.raises(SSEParsingError):
        parser.feed(b"x" * 10)


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"data: " + b"x" * 200 + b"\n\n", id="one-line"),
        pytest.param((b"data: " + b"x" * 40 + b"\n") * 4 + b"\n", id="short-lines"),
    ],
)
def test_event_longer_than_max_event_size_raises_even_in_one_read(stream: bytes) -> None:
    with pytest.raises(SSEParsingError):
        Parser(max_event_size=100).feed(stream)


# -- nothing complete is lost to a later error -------------------------------------------


def until_error(parser: Parser, *pieces: bytes) -> tuple[list[Item], Optional[str]]:
    """The items handed out before the parser failed, and the error's message."""
    items: list[Union[Event, str]] = []
    for piece in pieces:
        try:
            items.extend(parser.feed(piece))
        except SSEParsingError as exc:
            return encode(items), str(exc)
        if parser.error is not None:
            return encode(items), str(parser.error)
    return encode(items), None


OVERSIZED = b"data: " + b"x" * 200 + b"\n\n"


@pytest.mark.parametrize(
    ("after", "options"),
    [
        pytest.param(OVERSIZED, {"max_event_size": 100}, id="oversized-event"),
        pytest.param(b"data: " + b"x" * 200, {"max_event_size": 100}, id="oversized-line"),
        pytest.param(b"foo: bar\ndata: x\n\n", {"strict": True}, id="strict-unknown-field"),
        pytest.param(b"data: \xff\n\n", {"strict": True}, id="strict-invalid-utf8"),
        pytest.param(b": \xc3(\n", {"strict": True}, id="strict-invalid-utf8-in-comment"),
        pytest.param(b"retry: soon\n", {"strict": True}, id="strict-retry-unfinished-block"),
    ],
)
def test_events_before_a_parse_error_are_handed_out_first(
    after: bytes, options: dict[str, object]
) -> None:
    # "data: ok" then a violation, in one read: "ok" once came out only when
    # the two arrived in separate reads; the outcome must not depend on how
    # the server's writes were cut.
    stream = b"data: ok\n\n: fine\n" + after
    whole = until_error(Parser(**options), stream)  # type: ignore[arg-type]
    assert whole[0] == [ev("ok"), comment("fine")]
    assert whole[1] is not None
    split = until_error(Parser(**options), b"data: ok\n\n: fine\n", after)  # type: ignore[arg-type]
    assert split == whole
    bytewise = until_error(
        Parser(**options), *(stream[i : i + 1] for i in range(len(stream)))  # type: ignore[arg-type]
    )
    assert bytewise[0] == whole[0]
    assert bytewise[1] is not None


def test_a_parser_that_failed_raises_on_the_next_read() -> None:
    parser = Parser(max_event_size=100)
    assert encode(parser.feed(b"data: ok\n\n" + OVERSIZED)) == [ev("ok")]
    assert parser.error is not None
    with pytest.raises(SSEParsingError) as caught:
        parser.feed(b"data: later\n\n")
    assert caught.value is parser.error


def test_a_violation_before_invalid_utf8_is_the_error_reported() -> None:
    parser = Parser(strict=True)
    items = parser.feed(b"data: ok\n\nfoo: x\n\ndata: \xff\n\n")
    assert encode(items) == [ev("ok")]
    assert "unknown field" in str(parser.error)


@pytest.mark.parametrize("size", [0, -1])
def test_max_event_size_must_be_positive(size: int) -> None:
    with pytest.raises(ValueError, match="max_event_size must be positive"):
        Parser(max_event_size=size)


def test_max_event_size_of_one_is_accepted() -> None:
    assert parse(b"data:\n\n", max_event_size=5) == [ev("")]
    assert Parser(max_event_size=1).feed(b"x") == []


def test_default_max_event_size_is_32_mib() -> None:
    assert DEFAULT_MAX_EVENT_SIZE == 32 * 1024 * 1024
    parser = Parser()
    # A line of exactly the default size is held; one more character is too long.
    parser.feed(b"data: " + b"x" * (DEFAULT_MAX_EVENT_SIZE - 6))
    assert parser.buffered == DEFAULT_MAX_EVENT_SIZE
    with pytest.raises(SSEParsingError, match=r"max_event_size \(33554432 characters\)"):
        parser.feed(b"x")


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b"data: a\n\ndata: abcd\n\ndata: b\n\n",), id="one-read"),
        pytest.param((b"data: a\n\ndata: ab", b"cd\n\ndata: b\n\n"), id="completed-by-a-read"),
        pytest.param((b"data: a\n\ndata: abcd", b"\n\ndata: b\n\n"), id="line-end-in-next-read"),
        pytest.param((b"data: a\n\nid:1\ndata:\n\ndata: b\n\n",), id="several-lines"),
        pytest.param((b"data: a\n\n", b"id:1\n", b"data:\n\ndata: b\n\n"), id="a-line-per-read"),
    ],
)
def test_event_of_exactly_max_event_size_among_other_blocks(pieces: tuple[bytes, ...]) -> None:
    # "data: abcd" and "id:1\ndata:" are 10 characters: the limit, not over it.
    expected = parse(*pieces)
    assert len(expected) == 3
    bytewise = [bytes([c]) for c in b"".join(pieces)]
    for strict in (False, True):  # strict mode checks each line as it completes
        assert parse(*pieces, max_event_size=10, strict=strict) == expected
        assert parse(*bytewise, max_event_size=10, strict=strict) == expected


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b"data: a\n\ndata: abcde\n\ndata: b\n\n",), id="one-read"),
        pytest.param((b"data: a\n\ndata: ab", b"cde\n\ndata: b\n\n"), id="completed-by-a-read"),
        pytest.param((b"data: a\n\nid:12\ndata:\n\ndata: b\n\n",), id="several-lines"),
    ],
)
def test_event_one_over_max_event_size_among_other_blocks(pieces: tuple[bytes, ...]) -> None:
    bytewise = [bytes([c]) for c in b"".join(pieces)]
    for strict in (False, True):
        for reads in (pieces, bytewise):
            items, error = until_error(Parser(max_event_size=10, strict=strict), *reads)
            assert items == [ev("a")]  # what came before it, then the error
            assert error == "an event or line exceeds max_event_size (10 characters)"


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b": c\ndata: abc\n\n",), id="one-read"),
        pytest.param((b": c\n", b"data: abc\n\n"), id="comment-in-its-own-read"),
        pytest.param((b": ", b"c\ndata: abc\n\n"), id="comment-cut"),
        pytest.param((b": ", b"c\ndata: abc\n", b"\n"), id="comment-cut-then-the-block"),
        pytest.param((b": c\nda", b"ta: abc\n\n"), id="data-line-cut"),
    ],
)
def test_a_comment_line_does_not_count_toward_the_event_size(pieces: tuple[bytes, ...]) -> None:
    # "data: abc" is 9 characters; the comment line before it is handed out
    # and dropped, however the bytes are cut, so it does not count.
    assert parse(*pieces, max_event_size=9) == [comment("c"), ev("abc")]
    items, error = until_error(Parser(max_event_size=8), *pieces)
    assert items == [comment("c")]
    assert error is not None


def test_events_within_max_event_size_pass() -> None:
    stream = (b"data: " + b"x" * 40 + b"\n\n") * 10
    assert parse(stream, max_event_size=100) == [ev("x" * 40)] * 10
    pieces = [stream[i : i + 7] for i in range(0, len(stream), 7)]
    assert parse(*pieces, max_event_size=100) == [ev("x" * 40)] * 10


def _reads(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


def test_fourteen_megabyte_event_is_linear() -> None:
    # 3-byte characters, so the 64 KiB reads also split characters (and CRLFs).
    line = "\u20ac" * 999 + "x"
    count = 14 * 1024 * 1024 // (len(line.encode()) + 8)
    stream = ("data: " + line + "\r\n").encode() * count + b"\r\n"
    assert len(stream) > 14_000_000
    parser = Parser()
    items: list[Union[Event, str]] = []
    for piece in _reads(stream):
        items.extend(parser.feed(piece))
    assert len(items) == 1
    event = items[0]
    assert isinstance(event, Event)
    assert len(event.data) == count * (len(line) + 1) - 1
    assert event.data == "\n".join([line] * count)
    assert parser.buffered == 0


def test_fifty_megabytes_without_newline_raises_with_bounded_buffer() -> None:
    total = 50 * 1024 * 1024
    chunk = b"x" * (64 * 1024)

    def reads() -> Iterator[bytes]:  # never the whole 50 MB at once
        yield b"data: "
        for _ in range(total // len(chunk)):
            yield chunk

    parser = Parser()
    fed = 0
    peak = 0
    error: Optional[SSEParsingError] = None
    for piece in reads():
        try:
            parser.feed(piece)
        except SSEParsingError as exc:
            error = exc
            break
        fed += len(piece)
        peak = max(peak, parser.buffered)
    assert error is not None
    assert peak <= DEFAULT_MAX_EVENT_SIZE
    assert fed <= DEFAULT_MAX_EVENT_SIZE < total


# -- regressions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b"data: a\n", b"\ndata: b\n\n"), id="lf"),
        pytest.param((b"data: a\r\n", b"\r\ndata: b\r\n\r\n"), id="crlf"),
        pytest.param((b"data: a\r", b"\rdata: b\r\r"), id="cr"),
        pytest.param((b"data: a\r", b"\n\ndata: b\n\n"), id="crlf-split"),
    ],
)
def test_blank_line_on_read_seam_then_second_block(pieces: tuple[bytes, ...]) -> None:
    # Once returned [a, "a\nb"]: the dispatched block was kept and re-sent.
    check(pieces, [ev("a"), ev("b")])


def test_blank_line_on_read_seam_then_second_block_keeps_ids_apart() -> None:
    # Once gave the second event the id "1" of the already dispatched block.
    check([b"id: 1\n", b"\ndata: b\n\n"], [ev("b", last_event_id="1")])


def test_retry_with_more_than_4300_digits_does_not_crash() -> None:
    # int() refuses more than 4300 digits on Python >= 3.11; this once raised
    # ValueError. The parser holds such values at a cap of at least 10**15 ms
    # (over 30,000 years), which is the same as the exact value in practice.
    parser = Parser()
    items = parser.feed(b"retry: " + b"1" * 5000 + b"\ndata: x\n\n")
    assert parser.retry is not None
    assert parser.retry >= 10**15
    assert encode(items) == [ev("x", retry=parser.retry)]
    parser = Parser()
    assert feed(parser, b"retry: " + b"0" * 5000 + b"7\n\n") == []
    assert parser.retry == 7


@pytest.mark.parametrize(
    ("digits", "retry"),
    [
        pytest.param("9" * 15, 10**15 - 1, id="15-digits-exact"),
        pytest.param("1" + "0" * 15, 10**15, id="16-digits-the-cap"),
        pytest.param("9" * 16, 10**15, id="16-digits-held-at-the-cap"),
        pytest.param("0" * 30 + "9" * 15, 10**15 - 1, id="leading-zeros-do-not-count"),
    ],
)
def test_retry_values_beyond_the_cap_are_held_at_it(digits: str, retry: int) -> None:
    parser = Parser()
    feed(parser, f"retry: {digits}\n\n".encode())
    assert parser.retry == retry


@pytest.mark.parametrize(
    ("stream", "retry"),
    [
        pytest.param(b"retry: 5000\n", 5000, id="lf"),
        pytest.param(b"retry: 5000\r", 5000, id="cr"),
        pytest.param(b"data: x\nretry: 5000\r\nretry: x\n", 5000, id="among-other-lines"),
        pytest.param(b"retry: 5000", None, id="line-not-finished"),
        pytest.param(b"retry: 1.5\n", None, id="invalid"),
        pytest.param(b"retry: 5000\n\nretry: 7\n", 7, id="after-a-finished-block"),
        pytest.param(b"retry:5000\n", 5000, id="no-space"),
        pytest.param(b"retry:  5000\n", None, id="two-spaces"),
        pytest.param(b"retry 5000\nretry\n", None, id="no-colon"),
        pytest.param(b"data: retry: 5\nxretry: 6\n", None, id="not-the-field-name"),
    ],
)
def test_retry_of_unfinished_block_applies_at_end(stream: bytes, retry: Optional[int]) -> None:
    # The specification sets the reconnection time as soon as the line is
    # read, and discards only the unfinished event: the parser applies the
    # complete retry lines of an unfinished block when the stream ends.
    parser = Parser()
    feed(parser, stream)
    parser.end()
    assert parser.retry == retry
    assert parser.buffered == 0
    reference = ReferenceStream()
    reference.parse(stream)
    assert reference.reconnection_time == retry


BIG = 9000  # over MERGED_PIECE: each read of the block stays its own piece


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        pytest.param((b"data: " + b"x" * BIG, b"y\n", b"\n"), [ev("x" * BIG + "y")],
                     id="blank-line-on-the-seam"),
        pytest.param((b"data: " + b"x" * BIG, b"y\n\n"), [ev("x" * BIG + "y")],
                     id="blank-line-in-the-last-read"),
        pytest.param((b": " + b"c" * BIG, b"cc", b"d\ndata: x\n\n"),
                     [comment("c" * (BIG + 2) + "d"), ev("x")], id="comment-line"),
        pytest.param((b"retry: " + b"1" * BIG, b"11", b"2\n\n"), [], id="retry-line"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_a_block_held_in_several_pieces_is_joined_exactly(
    pieces: tuple[bytes, ...], expected: list[Item], strict: bool
) -> None:
    parser = Parser(strict=strict)
    assert feed(parser, *pieces) == expected
    assert parser.error is None


def test_strict_mode_checks_a_line_that_starts_a_new_piece() -> None:
    # The line end after a big line is a piece of its own; the next line
    # starts after it, not in the big piece before.
    pieces = (b"data: " + b"x" * BIG, b"\n", b"foo", b"bar: x\n")
    items, error = until_error(Parser(strict=True), *pieces)
    assert items == []
    assert error == "unknown field 'foobar'"


def test_an_empty_event_type_is_message_on_the_one_pass_path() -> None:
    parser = Parser()
    usual = b"event: \nid: 1\ndata: x\n\nevent: \ndata: y\n\n"
    for _ in range(3):  # the second read on takes the one-pass path
        events = parser.feed(usual)
        assert [(e.data, e.event, e.type) for e in events] == [  # type: ignore[union-attr]
            ("x", "", "message"), ("y", "", "message")
        ]  # fmt: skip


def test_retry_of_a_block_held_in_several_pieces_applies_at_end() -> None:
    parser = Parser()
    feed(parser, b"data: " + b"x" * BIG + b"\n", b"retry: 5000\n")
    parser.end()
    assert parser.retry == 5000


def test_retry_of_unfinished_block_cut_into_reads_applies_at_end() -> None:
    parser = Parser()
    feed(parser, b"data: x\nret", b"ry: 50", b"00\nretry: 7")
    parser.end()
    assert parser.retry == 5000


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b"data: abcd\n\n",), id="one-read"),
        pytest.param((b"data: abcd\n", b"\n"), id="lf-split"),
        pytest.param((b"data: abcd\r\n", b"\r\n"), id="crlf-split"),
        pytest.param((b"data: abcd\r", b"\r"), id="cr-split"),
        pytest.param((b"data: abcd", b"\n\n"), id="before-line-end"),
        pytest.param(tuple(bytes([c]) for c in b"data: abcd\n\n"), id="bytewise"),
    ],
)
def test_event_of_exactly_max_event_size_accepted_however_cut(pieces: tuple[bytes, ...]) -> None:
    # The block "data: abcd" is 10 characters. This once raised when the
    # blank line came in a later read: the held line end counted as well.
    assert parse(*pieces, max_event_size=10) == [ev("abcd")]


@pytest.mark.parametrize(
    "pieces",
    [
        pytest.param((b"data: abcde\n\n",), id="one-read"),
        pytest.param((b"data: abcde\n", b"\n"), id="lf-split"),
        pytest.param(tuple(bytes([c]) for c in b"data: abcde\n\n"), id="bytewise"),
    ],
)
def test_event_one_over_max_event_size_rejected_however_cut(pieces: tuple[bytes, ...]) -> None:
    with pytest.raises(SSEParsingError):
        parse(*pieces, max_event_size=10)


def test_buffered_never_exceeds_max_event_size() -> None:
    # Once reported max_event_size + 1: the held line end was counted.
    parser = Parser(max_event_size=3)
    parser.feed(b"abc\n")  # a 3-character line: allowed
    assert parser.buffered <= 3
    with pytest.raises(SSEParsingError):
        parser.feed(b"d")


def test_usual_blocks_take_the_one_pass_path_and_a_miss_backs_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The one-pass path is what makes event:/id:/data: streams fast; this
    # pins that it is taken, and that a read it cannot take costs a fallback
    # and a pause, not a retry on every read.
    tries: list[bool] = []
    one_pass = Parser._parse_structured

    def spy(self: Parser, *args: object) -> bool:
        tries.append(one_pass(self, *args))  # type: ignore[arg-type]
        return tries[-1]

    monkeypatch.setattr(Parser, "_parse_structured", spy)
    parser = Parser()
    usual = b"event: a\nid: 1\ndata: x\ndata: y\n\nid: 2\nevent: b\ndata: z\n\n"
    expected = [
        Event("x\ny", event="a", id="1", last_event_id="1"),
        Event("z", event="b", id="2", last_event_id="2"),
    ]
    assert parser.feed(usual) == expected  # blocks of several lines: try next time
    assert tries == []
    assert parser.feed(usual) == expected
    assert tries == [True]
    assert parser.feed(b": ping\n\n" + usual) == ["ping", *expected]
    assert tries == [True, False]
    assert parser.feed(usual) == expected  # one read skipped after the first miss
    assert parser.feed(usual) == expected
    assert tries == [True, False, True]

    simple = Parser()
    for _ in range(3):
        simple.feed(b"data: a\n\ndata: b\n\n")
    assert tries == [True, False, True]  # one-line data blocks keep the split path


def test_a_one_pass_miss_backs_off_doubling_up_to_64_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    tries: list[int] = []
    one_pass = Parser._parse_structured
    read = 0

    def spy(self: Parser, *args: object) -> bool:
        tries.append(read)
        return one_pass(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Parser, "_parse_structured", spy)
    parser = Parser()
    miss = b": ping\n\nevent: a\nid: 1\ndata: x\n\n"  # a comment: never one pass
    for read in range(400):  # noqa: B007  # read by spy
        parser.feed(miss)
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:])]
    # After the n-th miss in a row, the next min(2 ** (n - 1), 64) reads skip it.
    assert gaps[:9] == [2, 3, 5, 9, 17, 33, 65, 65, 65]


LONG = "x" * 1500
LONG_BLOCK_STREAMS = {
    "one-line-blocks": f"data: {LONG}\n\ndata: {LONG}y\n\ndata: {LONG}z\n\n",
    "a-block-of-several-lines-between": f"data: {LONG}\n\ndata: a\ndata: b\n\ndata: {LONG}\n\n",
    "several-long-lines": f"data: {LONG}\ndata: {LONG}\n\nid: 7\ndata: {LONG}\n\n",
    "extra-blank-lines": f"\n\ndata: {LONG}\n\n\n\ndata: {LONG}\n\n\n",
    "short-blocks-after": f"data: {LONG}\n\ndata: a\n\ndata: b\n\nevent: e\ndata: c\n\n",
    "no-space-after-colon": f"data:{LONG}\n\ndata: {LONG}\n\ndata:x\n\n",
    "unfinished-block-after": f"data: {LONG}\n\ndata: {LONG}\n\ndata: part",
    "unfinished-line-after": f"data: {LONG}\n\ndata: {LONG}\n\nda",
    "lone-lf-ends": f"data: {LONG}\ndata: x\n\n: c\ndata: {LONG}\n\n",
    "empty-data": f"data: \n\ndata: {LONG}\n\ndata:\n\n",
    "line-ends-near-the-cut": f"data: {LONG}\n\nd\n\ndata: {LONG}\n\nx\n\n",
    "one-character-second-line": f"data: {LONG}\n:\n\ndata: {LONG}\n\n",
}


@pytest.mark.parametrize("name", list(LONG_BLOCK_STREAMS))
@pytest.mark.parametrize("read_size", [None, 1024, 1501, 3011], ids=lambda n: f"reads-{n}")
def test_long_blocks_take_the_memchr_path_and_agree_with_the_reference(
    name: str, read_size: Optional[int]
) -> None:
    # A read of big events makes the next read split its blocks by memchr
    # (_take_data_lines, _split_sparse) rather than str.split; whatever the
    # blocks and the cuts, the items are those of the reference.
    prime = f"data: {LONG}\n\ndata: {LONG}\n\n".encode()
    body = LONG_BLOCK_STREAMS[name].encode()
    stream = prime + body + prime + body
    size = read_size or len(body)
    pieces = [prime] + [stream[i : i + size] for i in range(len(prime), len(stream), size)]
    parser = Parser()
    items = feed(parser, *pieces)
    assert items == reference_parse(stream)[0]


# -- comments at once ----------------------------------------------------------------------


def test_keep_alive_comment_is_reported_when_its_line_completes() -> None:
    # A lone ":" line is what many servers send to keep proxies from closing
    # the connection; waiting for a blank line would report it late or never.
    parser = Parser()
    assert feed(parser, b":\n") == [comment("")]
    assert feed(parser, b": pi") == []
    assert feed(parser, b"ng") == []
    assert feed(parser, b"\n") == [comment("ping")]
    assert feed(parser, b"\n") == []  # the blank line after it dispatches nothing


def test_comment_inside_an_unfinished_block_comes_before_its_event() -> None:
    parser = Parser()
    assert feed(parser, b"data: a\n: half") == []
    assert feed(parser, b" way\ndata: b\n") == [comment("half way")]
    assert feed(parser, b"\n") == [ev("a\nb")]


@pytest.mark.parametrize(
    "char", ["x", "\U0001f600"], ids=["ascii", "four-byte-characters"]
)
def test_memory_is_bounded_in_bytes_however_small_the_reads(char: str) -> None:
    # A server that never ends its line, writing two bytes at a time, once
    # made the parser hold a string per read: ~30 bytes per character.
    import tracemalloc

    limit = 128 * 1024
    encoded = (char * (limit // 2)).encode()
    pieces = [encoded[i : i + 2] for i in range(0, len(encoded), 2)]
    parser = Parser(max_event_size=limit)
    tracemalloc.start()
    try:
        parser.feed(b"data: ")
        for piece in pieces:
            parser.feed(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parser.buffered == len("data: ") + limit // 2
    assert peak <= 4 * parser.buffered + 64 * 1024


@pytest.mark.parametrize("cut", [1, 7, 1000], ids=["bytewise", "odd-reads", "one-read"])
def test_comments_do_not_count_toward_the_event_size(cut: int) -> None:
    # Sixty keep-alives inside a block: neither any line nor the event is
    # over the limit, so the event is delivered, however the bytes come.
    body = b": ping\n" * 60 + b"data: ok\n\n"
    parser = Parser(max_event_size=100)
    items: list[object] = []
    for i in range(0, len(body), cut):
        items.extend(parser.feed(body[i : i + cut]))
    assert items == ["ping"] * 60 + [Event("ok")]
    assert parser.error is None


# -- memory ------------------------------------------------------------------------------



def test_a_comment_line_over_the_limit_is_still_too_long() -> None:
    parser = Parser(max_event_size=100)
    with pytest.raises(SSEParsingError):
        parser.feed(b":" + b"x" * 200 + b"\n")
