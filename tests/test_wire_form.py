"""``Event.to_sse()`` and ``Comment.to_sse()``: the wire form parses back to the value.

Relays write events they received (or made) back onto another stream, so the
property that matters is the round trip: the text, parsed by ssesync's own
parser *and* by the slow spec reference, gives back the same event — for any
data, including CR, LF, CRLF (which the format can only carry as line
breaks) and the characters ``str.splitlines`` breaks at but SSE does not.
"""

from __future__ import annotations

import pickle

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ssesync import Comment, Event
from ssesync._parser import Parser
from tests.parser_helpers import HUGE_RETRY, encode
from tests.spec_reference import reference_parse

SETTINGS = settings(max_examples=200, deadline=None, derandomize=True, database=None)

#: Characters that end a line somewhere: in SSE (the first three), or only for
#: str.splitlines(), which a wrong implementation might use.
BREAKS = ["\r", "\n", "\r\n", "\n\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c"]

#: Any text, with line breaks of every kind (CRLF among them) mixed in often.
ANY_TEXT = st.lists(
    st.one_of(
        st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
        st.sampled_from([*BREAKS, " ", ":", "\x00", "\ufeff"]),
    ),
    max_size=8,
).map("".join)

#: event types and ids: anything on one line (an id also without NUL).
ONE_LINE = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=12,
)
IDS = ONE_LINE.filter(lambda value: "\x00" not in value)
SPECIAL = st.sampled_from(["", " ", " x", "x ", "  ", ":", "data: x", "\ufeff", "\u2028"])


def received(data: str) -> str:
    """What a receiver makes of ``data`` sent as SSE: every CR or CRLF is a line end."""
    return data.replace("\r\n", "\n").replace("\r", "\n")


def parse(text: str, last_event_id: str = "") -> list[object]:
    """The items of ``text`` (in UTF-8) as the parser hands them out, after checking
    that the spec reference agrees with it."""
    raw = text.encode("utf-8")
    parser = Parser(last_event_id=last_event_id)
    items = [*parser.feed(raw)]
    parser.end()
    reference, _ = reference_parse(raw, last_event_id)
    assert encode(items) == reference
    return items


@st.composite
def events(draw: st.DrawFn) -> Event:
    event_id = draw(st.none() | IDS | SPECIAL.filter(lambda value: "\x00" not in value))
    # The last event ID the receiver holds: the block's id when it has one.
    last_event_id = event_id if event_id is not None else draw(IDS)
    return Event(
        data=draw(ANY_TEXT | SPECIAL),
        event=draw(st.none() | ONE_LINE | SPECIAL | st.just("a\x00b")),
        id=event_id,
        retry=draw(st.none() | st.integers(0, HUGE_RETRY) | st.sampled_from([0, 1, 3000])),
        last_event_id=last_event_id,
    )


@SETTINGS
@given(events())
@example(Event("a\rb\r\nc\n\rd"))
@example(Event("\u2028x\x85y\x0cz"))
@example(Event("", event="", id="", last_event_id=""))
@example(Event(" lead", event=" up", id=" 7", last_event_id=" 7"))
@example(Event("\n\n\r\r"))
def test_event_round_trips(event: Event) -> None:
    expected = Event(received(event.data), event.event, event.id, event.retry, event.last_event_id)
    assert parse(event.to_sse(), last_event_id=event.last_event_id) == [expected]


@SETTINGS
@given(events(), events())
def test_events_written_one_after_another_stay_apart(first: Event, second: Event) -> None:
    items = parse(first.to_sse() + Comment("keep-alive").to_sse() + second.to_sse())
    assert [type(item) for item in items] == [Event, str, Event]
    assert [item.data for item in items if isinstance(item, Event)] == [
        received(first.data),
        received(second.data),
    ]


@SETTINGS
@given(ANY_TEXT | SPECIAL)
@example("a\rb\r\nc")
@example(" x")
def test_comment_round_trips_one_comment_per_line(text: str) -> None:
    lines = received(text).split("\n")
    assert parse(Comment(text).to_sse()) == lines


@SETTINGS
@given(ANY_TEXT | SPECIAL, events())
def test_a_comment_never_changes_the_event_after_it(text: str, event: Event) -> None:
    # Written before an event, with or without a stream before it, the comment
    # neither swallows nor alters the event, and dispatches nothing of its own.
    alone = parse(event.to_sse(), last_event_id=event.last_event_id)
    after_comment = parse(Comment(text).to_sse() + event.to_sse(), event.last_event_id)
    assert [item for item in after_comment if isinstance(item, Event)] == alone


def test_wire_form_examples() -> None:
    assert Event("hi").to_sse() == "data: hi\n\n"
    assert Event("a\nb", event="up", id="7", retry=500).to_sse() == (
        "event: up\nid: 7\nretry: 500\ndata: a\ndata: b\n\n"
    )
    assert Event("", id="").to_sse() == "id:\ndata:\n\n"
    assert Event("a\r\nb\rc").to_sse() == "data: a\ndata: b\ndata: c\n\n"
    assert Event("x\u2028y").to_sse() == "data: x\u2028y\n\n"
    assert Comment("ping").to_sse() == ": ping\n\n"
    assert Comment("").to_sse() == ":\n\n"
    assert Comment("a\nb").to_sse() == ": a\n: b\n\n"


def test_last_event_id_alone_is_not_written() -> None:
    # The receiver keeps its own last event ID; only an id: line changes it.
    assert Event("x", last_event_id="7").to_sse() == "data: x\n\n"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (Event("x", event="a\nb"), "event field cannot contain a line break"),
        (Event("x", event="a\rb"), "event field cannot contain a line break"),
        (Event("x", id="1\r\n2"), "id field cannot contain a line break"),
        (Event("x", id="1\x002"), "cannot contain NUL"),
        (Event("x", retry=-1), "cannot be negative"),
    ],
)
def test_what_cannot_be_written_is_refused(event: Event, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        event.to_sse()


def test_comment_is_an_immutable_value() -> None:
    comment = Comment("ping")
    assert comment.text == "ping"
    assert comment == Comment("ping")
    assert comment != Comment("pong")
    assert comment != "ping"
    assert hash(comment) == hash(Comment("ping"))
    assert repr(comment) == "Comment('ping')"
    assert pickle.loads(pickle.dumps(comment)) == comment
    with pytest.raises(AttributeError):
        comment.text = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del comment.text


def test_an_event_made_from_the_wire_writes_the_same_wire() -> None:
    wire = "event: up\nid: 9\nretry: 5\ndata: a\ndata:  b\ndata:\n\n"
    (event,) = parse(wire)
    assert isinstance(event, Event)
    assert event.to_sse() == wire
