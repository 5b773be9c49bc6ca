"""The exceptions ssesync raises.

Everything ssesync raises on purpose derives from :class:`SSEError`, so one
``except SSEError`` covers a failed stream. Transport failures (refused
connections, timeouts, bad statuses, wrong content types) are
:class:`SSEConnectionError`; a stream that breaks the event-stream format in a
way that cannot be ignored is :class:`SSEParsingError`.

The exceptions carry context as attributes rather than only in their message,
and pickle with it (they may cross process boundaries in worker pools).
Messages never contain request header values, URL user-info or credential
query values (those show as ``***``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

__all__ = ["SSEConnectionError", "SSEError", "SSEParsingError"]


class SSEError(Exception):
    """Base class of every error ssesync raises on purpose."""


class SSEConnectionError(SSEError):
    """The connection could not be opened, or broke while streaming.

    :param message: what went wrong, for people.
    :param status: the HTTP status of the response, when one was received.
    :param headers: the response headers, when a response was received.
    :param url: the URL that was requested, its credentials shown as ``***``.
    :param retryable: whether a reconnect may help (network errors, ``5xx``,
        ``429``, ``408``); ``False`` for errors that a retry would repeat,
        such as ``404`` or a wrong ``Content-Type``.
    :param retry_after: seconds the server asked us to wait (``Retry-After``).
    """

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        headers: Optional[Mapping[str, str]] = None,
        url: Optional[str] = None,
        retryable: bool = True,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers: dict[str, str] = dict(headers) if headers is not None else {}
        self.url = url
        self.retryable = retryable
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_connection_error,
            (
                self.message,
                self.status,
                self.headers,
                self.url,
                self.retryable,
                self.retry_after,
            ),
        )


def _rebuild_connection_error(
    message: str,
    status: Optional[int],
    headers: dict[str, str],
    url: Optional[str],
    retryable: bool,
    retry_after: Optional[float],
) -> SSEConnectionError:
    return SSEConnectionError(
        message,
        status=status,
        headers=headers,
        url=url,
        retryable=retryable,
        retry_after=retry_after,
    )


class SSEParsingError(SSEError):
    """The event stream cannot be parsed any further.

    Raised when a line or an event grows beyond ``max_event_size`` (the bound
    that keeps a hostile server from exhausting memory), and, with
    ``strict=True``, for each violation that the specification would otherwise
    silently ignore.
    """
