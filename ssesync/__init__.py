"""ssesync: a synchronous Server-Sent Events client.

Iterate a stream in a plain loop, or start it on a background thread with
per-event-type handlers; spec-exact parsing over urllib3, reconnects with
``Last-Event-ID``, backoff and deduplication.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._client import SSEClient, SSEConnection
from ._event import Comment, Event, ReadyState
from ._source import EventSource
from .exceptions import SSEConnectionError, SSEError, SSEParsingError

if TYPE_CHECKING:
    from ._hub import Hub

__version__ = "0.1.0"

# A library stays silent until the application configures logging.
logging.getLogger("ssesync").addHandler(logging.NullHandler())

__all__ = [
    "Comment",
    "Event",
    "EventSource",
    "Hub",
    "ReadyState",
    "SSEClient",
    "SSEConnection",
    "SSEConnectionError",
    "SSEError",
    "SSEParsingError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    """``ssesync.Hub``, imported when first asked for.

    A program that never makes a hub does not load its modules (the
    selector loop, the lean connect, the worker pool): about 200 KB less in
    every process, and less start-up.
    """
    if name == "Hub":
        from ._hub import Hub

        globals()["Hub"] = Hub
        return Hub
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
