"""ssesync: a synchronous Server-Sent Events client.

Iterate a stream in a plain loop, or start it on a background thread with
per-event-type handlers; spec-exact parsing over urllib3, reconnects with
``Last-Event-ID``, backoff and deduplication.
"""

from __future__ import annotations

import logging

from ._client import SSEClient, SSEConnection
from ._event import Comment, Event, ReadyState
from ._hub import Hub
from ._source import EventSource
from .exceptions import SSEConnectionError, SSEError, SSEParsingError

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
