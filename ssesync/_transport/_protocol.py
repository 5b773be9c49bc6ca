"""What the rest of ssesync sees of the HTTP edge: a request in, a stream out.

The read loop builds a :class:`Request` for each attempt, gives it to a
:class:`Transport`, and reads the :class:`Stream` it returns. These three are
all it knows of urllib3 or requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Protocol, Union

if TYPE_CHECKING:
    from ._connect import Attempt

__all__ = [
    "MAX_REDIRECTS", "READ_SIZE", "Request", "Stream", "Timeout", "Transport", "is_interim",
]

#: The most bytes asked for in one read; a read returns whatever has arrived.
READ_SIZE = 65536


#: Redirects followed for one connection attempt before giving up.
MAX_REDIRECTS = 10


Timeout = tuple[Optional[float], Optional[float]]


def is_interim(status: int) -> bool:
    """Whether ``status`` is an interim response that a final one follows (not 101)."""
    return 100 <= status < 200 and status != 101


@dataclass(frozen=True)
class Request:
    """One HTTP request of a source; built afresh for every attempt."""

    method: str
    url: str
    headers: Mapping[str, Union[str, bytes]]
    body: Optional[bytes]
    timeout: Timeout
    #: The connection may go back to the pool after a clean end (keep_connection).
    reuse_connection: bool = False


class Stream(Protocol):
    """An open response: its status and headers, and its body as reads."""

    status: int
    headers: Mapping[str, str]
    #: The final URL, after redirects.
    url: str

    def read(self) -> bytes:
        """The next bytes that have arrived (blocking until some have); ``b""`` at the end."""

    def abort(self) -> None:
        """Make a read blocked in another thread return; safe from any thread."""

    def close(self, reuse: bool = False) -> None:
        """Release the response; ``reuse`` returns a finished connection to the pool."""


class Transport(Protocol):
    """Sends requests; one per source, or one shared by an :class:`~ssesync.SSEClient`."""

    def open(self, request: Request, attempt: Attempt) -> Stream:
        """Send ``request`` and return the response once its headers arrived."""

    def close(self) -> None:
        """Release what the transport owns (its pools)."""
