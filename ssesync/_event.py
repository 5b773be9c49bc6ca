"""The values a source hands out: :class:`Event` and :class:`ReadyState`.

An :class:`Event` is created for every dispatched block of the stream, so it
must be cheap. It is a tuple underneath — creating one is a single C call and
it is immutable for free — and presents itself both as an object with
attributes (``event.data``) and as the read-only mapping that code written
against dict-shaped SSE clients expects (``event["data"]``, ``dict(event)``).
Its ``type`` is stored too, as a sixth slot: it is read for every event
(handlers are found by it), and a slot reads faster than a computed property.
"""

from __future__ import annotations

import enum
import json as _json
from collections.abc import Iterator, KeysView, Mapping
from typing import Any, Optional

try:  # the C descriptor namedtuple uses: reads the slot without calling __getitem__
    from collections import _tuplegetter  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other interpreters
    _tuplegetter = None

__all__ = ["Event", "ReadyState"]

#: The keys of the mapping view, in the order the seed documentation lists them.
_KEYS = ("data", "event", "id", "retry")
_INDEX = {"data": 0, "event": 1, "id": 2, "retry": 3}


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
