"""The values a source hands out: :class:`Event`, :class:`Comment`, :class:`ReadyState`.

An :class:`Event` is created for every dispatched block of the stream, so it
must be cheap. It is a tuple underneath — creating one is a single C call and
it is immutable for free — and presents itself both as an object with
attributes (``event.data``) and as the read-only mapping that code written
against dict-shaped SSE clients expects (``event["data"]``, ``dict(event)``).
Its ``type`` is stored too, as a sixth slot: it is read for every event
(handlers are found by it), and a slot reads faster than a computed property.

Wire form. :meth:`Event.to_sse` and :meth:`Comment.to_sse` write a value back
as ``text/event-stream`` text, for relays that pass a stream on. What they
write parses back to the same value, with one exception that the format
forces: SSE has no way to carry a carriage return inside data, because CR,
LF and CRLF all end a line on the wire. So a CR or CRLF in ``data`` (or in a
comment) is written as a line break, which a receiver reads as ``"\n"`` —
exactly what it would have made of those characters anyway — and never as a
raw CR, which would end the ``data:`` line early and turn the rest of it into
an unknown field. Other characters that :meth:`str.splitlines` treats as line
breaks (U+2028, U+0085, form feed, ...) are ordinary characters in SSE and
are written unchanged. Fields that must stay on one line (``event``, ``id``)
refuse line breaks rather than change their meaning.
"""

from __future__ import annotations

import enum
import json as _json
import re
from collections.abc import Iterator, KeysView, Mapping
from typing import Any, NoReturn, Optional

try:  # the C descriptor namedtuple uses: reads the slot without calling __getitem__
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    _tuplegetter = None

__all__ = ["Comment", "Event", "ReadyState"]

#: The keys of the mapping view, in the order the seed documentation lists them.
_KEYS = ("data", "event", "id", "retry")
_INDEX = {"data": 0, "event": 1, "id": 2, "retry": 3}

#: A CR, alone or followed by LF: with LF, the line ends of the SSE format.
_CR_BREAK = re.compile(r"\r\n?")


class ReadyState(enum.IntEnum):
    """Where a source is in its life, with the browser's ``readyState`` values."""

    CONNECTING = 0
    OPEN = 1
    CLOSED = 2


def _field(index: int, doc: str) -> Any:
    if _tuplegetter is not None:
        return _tuplegetter(index, doc)
    return property(lambda self: tuple.__getitem__(self, index), doc=doc)  # pragma: no cover


class Event(tuple):  # type: ignore[type-arg]
    """One dispatched server-sent event.

    :param data: the ``data:`` lines joined by ``"\\n"``.
    :param event: the ``event:`` field as sent, or ``None``.
    :param id: the ``id:`` field of this block, or ``None``.
    :param retry: a valid ``retry:`` value of this block in ms, or ``None``.
    :param last_event_id: the last event ID after this block.
    """

    __slots__ = ()

    def __new__(
        cls,
        data: str = "",
        event: Optional[str] = None,
        id: Optional[str] = None,
        retry: Optional[int] = None,
        last_event_id: str = "",
    ) -> Event:
        return tuple.__new__(cls, (data, event, id, retry, last_event_id, event or "message"))

    data: str = _field(0, "The data of the event: the ``data:`` lines joined by ``\\n``.")
    event: Optional[str] = _field(1, "The ``event:`` field as sent, ``None`` when absent.")
    id: Optional[str] = _field(2, "The ``id:`` field of this block, ``None`` when absent.")
    retry: Optional[int] = _field(3, "The block's valid ``retry:`` value in ms, or ``None``.")
    last_event_id: str = _field(
        4, "The last event ID after this block; it persists across events."
    )

    type: str = _field(5, 'The name handlers are looked up by: ``event or "message"``.')

    def json(self, **kwargs: Any) -> Any:
        """Parse :attr:`data` as JSON (keyword arguments go to :func:`json.loads`)."""
        return _json.loads(self.data, **kwargs)

    # -- the read-only mapping view ------------------------------------------
    def __getitem__(self, key: Any) -> Any:
        try:
            return tuple.__getitem__(self, _INDEX[key])
        except (KeyError, TypeError):
            raise KeyError(key) from None

    def get(self, key: str, default: Any = None) -> Any:
        """Mapping-style access: the field ``key``, or ``default``."""
        index = _INDEX.get(key)
        return default if index is None else tuple.__getitem__(self, index)

    def keys(self) -> KeysView[str]:
        """The mapping keys: ``data``, ``event``, ``id``, ``retry``."""
        return dict.fromkeys(_KEYS).keys()

    def values(self) -> list[Any]:
        """The mapping values, in the order of :meth:`keys`."""
        return [tuple.__getitem__(self, i) for i in range(4)]

    def items(self) -> list[tuple[str, Any]]:
        """The mapping's ``(key, value)`` pairs."""
        return list(zip(_KEYS, self.values()))

    def __contains__(self, key: object) -> bool:
        return key in _INDEX

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(tuple.__iter__(self))[:5]  # type is derived from event

    # -- the wire form ---------------------------------------------------------
    def to_sse(self) -> str:
        """The event as ``text/event-stream`` text, ending with its blank line.

        It writes an ``event:`` line when :attr:`event` is not ``None``, an
        ``id:`` line when :attr:`id` is not ``None`` (an empty id as a bare
        ``id:``, which resets the receiver's last event ID just as it reset
        ours), a ``retry:`` line when :attr:`retry` is not ``None``, one
        ``data:`` line per line of :attr:`data`, then the blank line that
        dispatches the event. :attr:`last_event_id` is not written: it is the
        receiver's own state, which the ``id:`` lines set.

        Parsed again, the text gives back this event, with one exception the
        format forces: CR, LF and CRLF all end a line in SSE, so a CR or CRLF
        in :attr:`data` (possible only in an event you made yourself) is
        written as a line break and read back as ``"\\n"`` — never as a raw
        CR, which would cut the ``data:`` line short. U+2028 and the other
        characters that :meth:`str.splitlines` breaks at are not line breaks
        in SSE and are written unchanged.

        It returns :class:`str`, for frameworks that encode a response
        themselves (Django's ``StreamingHttpResponse``, Flask's ``Response``);
        where bytes are needed, encode it as UTF-8, the format's only
        encoding: ``event.to_sse().encode()``.

        :raises ValueError: when :attr:`event` or :attr:`id` contains a line
            break, :attr:`id` contains NUL (receivers ignore such an id), or
            :attr:`retry` is negative: none of those can be written so that
            a receiver reads them back.
        """
        event, id_, retry, data = self.event, self.id, self.retry, self.data
        head = ""
        if event is not None:
            head = _one_line("event", event)
        if id_ is not None:
            if "\0" in id_:
                raise ValueError("an SSE id cannot contain NUL: receivers ignore such an id")
            head += _one_line("id", id_)
        if retry is not None:
            if retry < 0:
                raise ValueError(f"an SSE retry value cannot be negative: {retry}")
            head += f"retry: {retry:d}\n"
        if "\r" in data:
            data = _CR_BREAK.sub("\n", data)
        if data and "\n" not in data:  # the common case: one data line
            return f"{head}data: {data}\n\n"
        return head + "".join(_lines("data:", data)) + "\n"

    def __repr__(self) -> str:
        fields = [f"type={self.type!r}", f"data={self.data!r}"]
        if self.id is not None:
            fields.append(f"id={self.id!r}")
        if self.retry is not None:
            fields.append(f"retry={self.retry!r}")
        if self.last_event_id:
            fields.append(f"last_event_id={self.last_event_id!r}")
        return f"Event({', '.join(fields)})"


Mapping.register(Event)


class Comment:
    """A comment of the stream: a line that starts with a colon (``: text``).

    Servers send comments as keep-alives (``: ping``) or notes; receivers
    ignore them. ``source.stream()`` hands them out among the events,
    and a relay writes one with :meth:`to_sse` to keep its own clients'
    connections alive. Immutable and compared by :attr:`text`.

    :param text: the text after the colon, without the one space that
        usually follows it.
    """

    # A dict of slots gives the attribute its documentation.
    __slots__ = {"text": "The text after the colon, less one leading space."}

    text: str

    def __init__(self, text: str = "") -> None:
        object.__setattr__(self, "text", text)

    def to_sse(self) -> str:
        """The comment as ``text/event-stream`` text: a ``: text`` line, then a blank line.

        Each line of :attr:`text` (split at CR, LF and CRLF) becomes a
        comment line of its own, so a receiver reads a comment of several
        lines as several comments. The blank line after it makes the comment
        a block of its own: written between two events it cannot become part
        of the next one, also for receivers and proxies that cut a stream at
        blank lines before they parse it. A blank line with no ``data:``
        before it dispatches nothing, so it never creates an event. Encode it
        as UTF-8 where bytes are needed.
        """
        text = self.text
        if "\r" in text:
            text = _CR_BREAK.sub("\n", text)
        return "".join(_lines(":", text)) + "\n"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Comment):
            return self.text == other.text
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Comment, self.text))

    def __reduce__(self) -> tuple[type[Comment], tuple[str]]:
        return (Comment, (self.text,))

    def __repr__(self) -> str:
        return f"Comment({self.text!r})"


def _one_line(name: str, value: str) -> str:
    """The field line ``name: value``, for a field that cannot span lines."""
    if "\n" in value or "\r" in value:
        raise ValueError(f"an SSE {name} field cannot contain a line break: {value[:40]!r}")
    return f"{name}: {value}\n" if value else f"{name}:\n"


def _lines(prefix: str, text: str) -> Iterator[str]:
    """One ``prefix value`` line per LF-separated line of ``text``.

    One space goes between the prefix and a value, and is always written,
    because receivers drop one leading space: a value that itself starts
    with a space keeps it. An empty value gets no space.
    """
    for line in text.split("\n"):
        yield f"{prefix} {line}\n" if line else f"{prefix}\n"
