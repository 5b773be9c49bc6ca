"""Options in, requests out: every option is checked here, once, up front.

A source is configured once and connects many times. So the options are
checked in the constructor — a wrong type is a :class:`TypeError`, a wrong
value a :class:`ValueError`, and the message names the option and what it
accepts — and turned into a :class:`RequestPlan`, which builds the
:class:`~ssesync._transport.Request` of each attempt: the method and URL, the
body (re-sent on every reconnect), the headers of the moment (the source's
mutable mapping, or the value of a callable called before each connection,
so a refreshed token is used at the next reconnect) and ``Last-Event-ID``,
byte for byte as the server sent the id.

Nothing here does I/O, and nothing here knows about threads or the loop.
"""

from __future__ import annotations

import json as _json
import math
import re
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union
from urllib.parse import urlencode, urlsplit, urlunsplit

import urllib3
from urllib3 import HTTPHeaderDict

from ._parser import DEFAULT_MAX_EVENT_SIZE
from ._transport import Request, Timeout, redact_url
from .exceptions import SSEConnectionError

__all__ = [
    "DEFAULT_MAX_EVENT_SIZE",
    "DEFAULT_TIMEOUT",
    "Body",
    "HeadersOption",
    "Options",
    "RequestPlan",
    "check_callable",
    "check_headers",
    "check_seconds",
]

#: The default timeouts in seconds: (connect, read).
DEFAULT_TIMEOUT: Timeout = (10.0, 300.0)

Body = Union[bytes, str, Mapping[str, Any], list[tuple[str, Any]], None]
HeadersOption = Union[Mapping[str, str], Callable[[], Mapping[str, str]], None]

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_problem(headers: Mapping[Any, Any]) -> Optional[str]:
    """What is wrong with ``headers`` (naming the header, never its value)."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _TOKEN.fullmatch(name):
            return f"invalid header name {str(name)[:60]!r}"
        if not isinstance(value, (str, bytes)):
            return f"the value of header {name} must be str or bytes"
        text = value if isinstance(value, str) else value.decode("latin-1")
        if "\r" in text or "\n" in text or "\0" in text:
            return f"the value of header {name} contains CR, LF or NUL"
        if not _encodable(text):
            return f"the value of header {name} {_UNENCODABLE}"
    return None


#: Why a str is refused that cannot go out as UTF-8 (never quoting it: it may be a secret).
_UNENCODABLE = (
    "cannot be encoded as UTF-8: it holds a lone surrogate, as text decoded from "
    "bytes that were not UTF-8 does (a terminal or file in another encoding)"
)


def _encodable(text: str) -> bool:
    """Whether ``text`` can go out as UTF-8 (a str from undecodable bytes cannot)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_callable(value: Any, name: str) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be callable, not {type(value).__name__}")


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def _check_ms(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of milliseconds, not {type(value).__name__}")
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be 0 or more milliseconds, not {value!r}")
    return float(value)


def check_seconds(value: Any, name: str) -> None:
    """Check an optional number of seconds above 0 (``idle=``)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be seconds or None, not {type(value).__name__}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be above 0 seconds, not {value!r}")


def _check_seconds(value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            "timeout must be seconds, a (connect, read) pair or a urllib3.Timeout, "
            f"not {type(value).__name__}"
        )
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"timeout must be above 0 seconds (or None: no limit), not {value!r}")
    return float(value)


def normalise_timeout(timeout: Union[float, Timeout, urllib3.Timeout, None]) -> Timeout:
    """``(connect, read)`` seconds from the forms ``timeout=`` takes."""
    if timeout is None:
        return (None, None)
    if isinstance(timeout, urllib3.Timeout):
        connect = timeout.connect_timeout
        read = timeout.read_timeout
        return (
            connect if isinstance(connect, (int, float)) else None,
            read if isinstance(read, (int, float)) else None,
        )
    if isinstance(timeout, (tuple, list)):
        if len(timeout) != 2:
            raise ValueError(
                f"timeout must be seconds or a (connect, read) pair, not {len(timeout)} values"
            )
        return (_check_seconds(timeout[0]), _check_seconds(timeout[1]))
    seconds = _check_seconds(timeout)
    return (seconds, seconds)


def encode_body(data: Body, json: Any, headers: MutableMapping[str, str]) -> Optional[bytes]:
    """The request body as bytes; sets the Content-Type it implies in ``headers``."""
    if data is not None and json is not None:
        raise ValueError("give either data= or json=, not both")
    if json is not None:
        headers.setdefault("Content-Type", "application/json")
        try:
            return _json.dumps(json, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise TypeError(f"json= must be JSON-serialisable: {exc}") from None
    if data is None:
        return None
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (Mapping, list, tuple)):
        headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        return urlencode(data, doseq=True).encode("ascii")
    raise TypeError(
        f"data must be bytes, str, or a mapping or list of pairs, not {type(data).__name__}"
    )


def _wire_value(value: Any) -> Union[str, bytes]:
    """Header values outside ASCII go out as UTF-8 (http.client would refuse them)."""
    if isinstance(value, str) and not value.isascii():
        return value.encode("utf-8")
    return value  # type: ignore[no-any-return]


@dataclass
class Options:
    """The checked options of one source, in the forms the rest of ssesync uses."""

    url: str
    method: str
    request_url: str
    body: Optional[bytes]
    body_headers: dict[str, str]
    timeout: Timeout
    last_event_id: str
    reconnect: bool
    retry_delay: float
    max_retry_delay: float
    max_retries: Optional[int]
    dedupe: bool
    strict: bool
    max_event_size: int
    keep_connection: bool

    #: The options of EventSource that this class checks and keeps.
    SOURCE_OPTIONS = (
        "method", "params", "data", "json", "last_event_id", "reconnect", "retry_delay",
        "max_retry_delay", "max_retries", "timeout", "dedupe", "strict", "max_event_size",
        "keep_connection",
    )  # fmt: skip

    @classmethod
    def of_source(
        cls, url: Any, headers: HeadersOption, options: dict[str, Any]
    ) -> tuple[Options, Union[HTTPHeaderDict, Callable[[], Mapping[str, str]]]]:
        """A source's checked options, and its headers as it keeps them.

        A ``Last-Event-ID`` among the headers is the starting id, unless
        ``last_event_id=`` gives one; it is never sent twice.
        """
        kept = check_headers(headers)
        if isinstance(kept, MutableMapping):
            from_headers = kept.pop("Last-Event-ID", None)
            if options.get("last_event_id") is None:
                options = {**options, "last_event_id": from_headers}
        return cls.check(url, **options), kept

    @classmethod
    def check(
        cls,
        url: Any,
        *,
        method: Any,
        params: Any,
        data: Any,
        json: Any,
        last_event_id: Any,
        reconnect: Any,
        retry_delay: Any,
        max_retry_delay: Any,
        max_retries: Any,
        timeout: Any,
        dedupe: Any,
        strict: Any,
        max_event_size: Any,
        keep_connection: Any,
    ) -> Options:
        """Check every option; raise TypeError or ValueError naming the first wrong one."""
        if not isinstance(url, str):
            raise TypeError(f"url must be a str, not {type(url).__name__}")
        try:
            parts = urlsplit(url)
        except ValueError:
            raise ValueError(f"invalid URL {redact_url(url)!r}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(f"ssesync needs an http:// or https:// URL, got {redact_url(url)!r}")
        if not isinstance(method, str):
            raise TypeError(f"method must be a str, not {type(method).__name__}")
        if not _TOKEN.fullmatch(method):
            raise ValueError(f"method must be an HTTP method name, not {method[:40]!r}")
        # The fragment is never sent; params go into the query, before it.
        query = parts.query
        if params is not None:
            if not isinstance(params, (Mapping, list, tuple)):
                raise TypeError(
                    f"params must be a mapping or a list of pairs, not {type(params).__name__}"
                )
            extra = urlencode(params, doseq=True)
            if extra:
                query = f"{query}&{extra}" if query else extra
        request_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))
        body_headers: dict[str, str] = {}
        body = encode_body(data, json, body_headers)
        if last_event_id is not None:
            if not isinstance(last_event_id, str):
                raise TypeError(f"last_event_id must be a str, not {type(last_event_id).__name__}")
            if any(char in last_event_id for char in "\r\n\0"):
                raise ValueError("last_event_id must not contain CR, LF or NUL")
            if not _encodable(last_event_id):
                raise ValueError(f"last_event_id {_UNENCODABLE}")
        if max_retries is not None:
            if isinstance(max_retries, bool) or not isinstance(max_retries, int):
                raise TypeError(
                    f"max_retries must be a whole number or None, not {type(max_retries).__name__}"
                )
            if max_retries < 0:
                raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        if isinstance(max_event_size, bool) or not isinstance(max_event_size, int):
            raise TypeError(
                f"max_event_size must be a whole number of characters, "
                f"not {type(max_event_size).__name__}"
            )
        if max_event_size <= 0:
            raise ValueError(f"max_event_size must be above 0, not {max_event_size}")
        return cls(
            url=url,
            method=method.upper(),
            request_url=request_url,
            body=body,
            body_headers=body_headers,
            timeout=normalise_timeout(timeout),
            last_event_id=last_event_id or "",
            reconnect=_check_bool(reconnect, "reconnect"),
            retry_delay=_check_ms(retry_delay, "retry_delay"),
            max_retry_delay=_check_ms(max_retry_delay, "max_retry_delay"),
            max_retries=max_retries,
            dedupe=_check_bool(dedupe, "dedupe"),
            strict=_check_bool(strict, "strict"),
            max_event_size=max_event_size,
            keep_connection=_check_bool(keep_connection, "keep_connection"),
        )


def check_headers(headers: HeadersOption) -> Union[HTTPHeaderDict, Callable[[], Mapping[str, str]]]:
    """``headers=`` as the source keeps it: a header dict of its own, or the callable."""
    if headers is None:
        return HTTPHeaderDict()
    if isinstance(headers, Mapping):
        problem = header_problem(headers)
        if problem:
            raise ValueError(problem)
        return HTTPHeaderDict(dict(headers))
    if callable(headers):
        return headers
    raise TypeError(
        f"headers must be a mapping or a callable returning one, not {type(headers).__name__}"
    )


class RequestPlan:
    """Builds the request of each attempt from the options and the headers of the moment."""

    __slots__ = ("headers", "options", "url")

    def __init__(
        self, options: Options, headers: Union[MutableMapping[str, str], Callable[[], Any]]
    ) -> None:
        self.options = options
        self.url = redact_url(options.url)
        #: The source's mutable header mapping, or the callable that gives them.
        self.headers = headers

    def build(self, last_event_id: str) -> Request:
        """The request of the next attempt.

        :raises SSEConnectionError: when callable headers raise (retryable:
            a token service may be down for a moment) or give invalid
            headers (not retryable: the same code would give them again).
        """
        options = self.options
        current = self.headers
        if callable(current):
            try:
                current = current()
            except Exception as exc:
                raise SSEConnectionError(
                    f"the headers callable of {self.url} raised {type(exc).__name__}",
                    url=self.url,
                ) from exc
            if not isinstance(current, Mapping):
                raise SSEConnectionError(
                    f"the headers callable of {self.url} returned "
                    f"{type(current).__name__}, not a mapping",
                    url=self.url,
                    retryable=False,
                )
        headers = HTTPHeaderDict()  # (given a dict, it would first test it against a protocol)
        headers["Accept"] = "text/event-stream"
        headers["Cache-Control"] = "no-cache"
        for name, value in options.body_headers.items():
            headers[name] = value
        for name, value in list(current.items()):
            headers[name] = value
        problem = header_problem(headers)
        if problem:  # changed since the constructor checked them, or from the callable
            raise SSEConnectionError(problem, url=self.url, retryable=False)
        headers.pop("Last-Event-ID", None)
        if not options.keep_connection:
            # Without it urllib3 would pool a cleanly finished connection and
            # the next reconnect would reuse it: keep_connection=True's job.
            headers.setdefault("Connection", "close")
        wire: dict[str, Union[str, bytes]] = {
            name: _wire_value(value) for name, value in headers.items()
        }
        if last_event_id:
            # Byte for byte as the server sent it (see the transports).
            wire["Last-Event-ID"] = last_event_id.encode("utf-8")
        return Request(
            options.method,
            options.request_url,
            wire,
            options.body,
            options.timeout,
            reuse_connection=options.keep_connection,
        )
