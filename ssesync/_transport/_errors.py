"""The one edge where backend exceptions become ssesync's, and are made safe to show.

Every failure of urllib3, http.client, the socket layer or requests that
ssesync reports passes through here: :func:`urllib3_error` and
:func:`requests_error` translate it into an :class:`~ssesync.SSEConnectionError`
with a message for people and the ``retryable`` decision; nothing else in
ssesync catches backend exceptions (httpcore's ``map_exceptions`` is the
model). The same message is produced for the same failure whichever read
path met it (:func:`invalid_chunked_error`).

Redaction. A backend's own text quotes whatever it was given: urllib3 and
requests put the whole URL in a parse error (user-info, ``?token=``), a
redirect's ``Location`` in theirs, requests a header value it refused. Every
translated error passes through :func:`presentable_error`, the one place where
such text is made safe to show: user-info and credential query values
become ``***`` (:func:`redact_url`, :func:`redact_text`), so do the request's
own secrets wherever they appear, control characters from a server are
escaped, and a cause chain that would still print a secret in a traceback is
left off. Messages ssesync writes itself name URLs through :func:`redact_url`.
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from http.client import HTTPException, IncompleteRead
from typing import TYPE_CHECKING, Optional
from urllib.parse import unquote, unquote_plus

from urllib3 import exceptions as u3exc

from .._text import visible
from ..exceptions import SSEConnectionError
from ._protocol import MAX_REDIRECTS, Request

if TYPE_CHECKING:
    import requests

__all__ = [
    "MASK",
    "invalid_chunked_error",
    "invalid_target_error",
    "presentable_error",
    "redact_text",
    "redact_url",
    "request_secrets",
    "requests_error",
    "urllib3_error",
]

def urllib3_error(
    exc: BaseException, url: str, secrets: Iterable[str] = ()
) -> SSEConnectionError:
    """Translate a urllib3 / socket failure into a presentable :class:`SSEConnectionError`.

    Raise the result ``from error.__cause__``: see :func:`presentable_error`.

    :param secrets: the request's own secrets (:func:`request_secrets`).
    """
    return presentable_error(_urllib3_error(exc, url), exc, url, secrets)


def _urllib3_error(exc: BaseException, url: str) -> SSEConnectionError:
    """The translation itself; its messages may still quote backend text."""
    where = redact_url(url)
    if isinstance(exc, u3exc.MaxRetryError):
        reason = exc.reason
        if isinstance(reason, u3exc.ResponseError):
            return SSEConnectionError(
                f"too many redirects (more than {MAX_REDIRECTS}) for {where}",
                url=where,
                retryable=False,
            )
        if reason is not None:
            return _urllib3_error(reason, url)
    # BlockingIOError: the kernel's receive timeout expired (see _SocketBody).
    if isinstance(exc, (u3exc.ReadTimeoutError, socket.timeout, BlockingIOError)):
        return SSEConnectionError(f"read timed out on {where}", url=where)
    if _is_invalid_chunked(exc):
        return invalid_chunked_error(url)
    if isinstance(exc, u3exc.DecodeError):
        return undecodable_body_error(url)
    # Most specific first: in urllib3 2 a NewConnectionError is a ConnectTimeoutError.
    if isinstance(exc, u3exc.NameResolutionError):
        return SSEConnectionError(f"cannot resolve the host of {where}", url=where)
    if isinstance(exc, u3exc.NewConnectionError):
        return SSEConnectionError(f"cannot connect to {where}: {_cause_text(exc)}", url=where)
    if isinstance(exc, u3exc.ConnectTimeoutError):
        return SSEConnectionError(f"connecting to {where} timed out", url=where)
    if isinstance(exc, u3exc.SSLError):
        verify_failed = "CERTIFICATE_VERIFY_FAILED" in str(exc) or isinstance(
            exc.__context__, ssl.SSLCertVerificationError
        )
        return SSEConnectionError(
            f"TLS error with {where}: {_cause_text(exc)}",
            url=where,
            retryable=not verify_failed,
        )
    if isinstance(exc, u3exc.ProxyError):
        return SSEConnectionError(f"proxy error for {where}: {_cause_text(exc)}", url=where)
    if isinstance(exc, (u3exc.LocationValueError, u3exc.URLSchemeUnknown)):
        return SSEConnectionError(f"invalid URL {where}: {exc}", url=where, retryable=False)
    if isinstance(exc, (u3exc.ProtocolError, HTTPException, OSError)):
        return SSEConnectionError(f"connection to {where} broke: {_cause_text(exc)}", url=where)
    return SSEConnectionError(f"HTTP error with {where}: {exc}", url=where)


def undecodable_body_error(url: str) -> SSEConnectionError:
    """The body is not the gzip or deflate data its ``Content-Encoding`` says it is."""
    where = redact_url(url)
    message = f"the body from {where} is not the compressed data it claims"
    return SSEConnectionError(message, url=where)


def _cause_text(exc: BaseException) -> str:
    """The most telling message of an exception chain (never request headers).

    urllib3 wraps the socket error that matters (``Connection refused``,
    ``Connection reset by peer``) in layers that repeat pool details; below
    an incomplete read lie only its own parsing internals. So the chain is
    walked down to the first socket error or incomplete read, and no further.
    """
    chain: list[BaseException] = []
    inner: Optional[BaseException] = exc
    while inner is not None and len(chain) < 8 and inner not in chain:
        chain.append(inner)
        args = inner.args
        nxt = args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None
        inner = nxt or inner.__cause__ or inner.__context__
    for item in chain:
        if isinstance(item, IncompleteRead):
            return "the server closed the connection in the middle of the stream"
        if isinstance(item, ssl.SSLError):
            return str(item)
        if isinstance(item, OSError) and item.errno is not None:
            return item.strerror or str(item)
    # A status line http.client refused still ends with its CRLF.
    return str(chain[-1]).strip() or type(chain[-1]).__name__


def _is_invalid_chunked(exc: BaseException) -> bool:
    """Whether ``exc`` is http.client's or urllib3's report of a bad chunk size."""
    if isinstance(exc, u3exc.InvalidChunkLength):
        return True
    seen = 0
    inner: Optional[BaseException] = exc
    while inner is not None and seen < 8:
        if isinstance(inner, IncompleteRead) and isinstance(inner.__context__, ValueError):
            return True
        if isinstance(inner, u3exc.InvalidChunkLength):
            return True
        args = inner.args
        nxt = args[1] if len(args) > 1 and isinstance(args[1], BaseException) else None
        inner = nxt or inner.__cause__ or inner.__context__
        seen += 1
    return False


def invalid_chunked_error(url: str) -> SSEConnectionError:
    """The body's chunked framing is broken: the same error on every read path."""
    where = redact_url(url)
    return SSEConnectionError(f"the server sent an invalid chunked body on {where}", url=where)


def invalid_target_error(
    url: str, exc: BaseException, secrets: Iterable[str] = ()
) -> SSEConnectionError:
    """A request urllib3 or requests refused as malformed, e.g. a bad redirect.

    The original message is left out on purpose: http.client quotes the
    offending header value in it, and header values are often credentials.
    Raise the result ``from error.__cause__``, like :func:`urllib3_error`'s.
    """
    where = redact_url(url)
    error = SSEConnectionError(
        f"invalid URL or redirect target while requesting {where}", url=where, retryable=False
    )
    return presentable_error(error, exc, url, secrets)


def requests_error(
    exc: requests.RequestException, url: str, secrets: Iterable[str] = ()
) -> SSEConnectionError:
    """Translate a ``requests`` failure into a presentable :class:`SSEConnectionError`.

    Raise the result ``from error.__cause__``, as :func:`urllib3_error`'s.
    """
    import requests  # only a session's errors come here: requests is there

    where = redact_url(url)
    error: SSEConnectionError
    cause: Optional[BaseException] = exc
    if isinstance(exc, requests.TooManyRedirects):
        error = SSEConnectionError(f"too many redirects for {where}", url=where, retryable=False)
    elif isinstance(exc, requests.exceptions.InvalidHeader):
        # requests quotes the refused value, and the session's own headers
        # (unknown to ssesync) may hold it: say what is wrong, not what, and
        # leave the quoting exception out of the chain.
        cause = None
        error = SSEConnectionError(
            f"invalid request for {where}: a header value has leading whitespace "
            "or a character HTTP does not allow",
            url=where,
            retryable=False,
        )
    elif isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
        error = SSEConnectionError(f"invalid request for {where}: {exc}", url=where,
                                   retryable=False)
    else:
        inner = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else None
        if isinstance(inner, (u3exc.HTTPError, OSError)):
            return urllib3_error(inner, url, secrets)
        if isinstance(exc, requests.Timeout):
            error = SSEConnectionError(f"timed out on {where}", url=where)
        else:
            error = SSEConnectionError(
                f"request to {where} failed: {type(exc).__name__}", url=where
            )
    return presentable_error(error, cause, url, secrets)


# -- redaction (see the module doc) ----------------------------------------------------

#: What a redacted credential is shown as.
MASK = "***"
#: Query parameter names that say their value is a credential, also as part of
#: a longer name (``access_token``, ``X-Amz-Signature``, ``apikey``).
_CREDENTIAL_NAME = re.compile(
    r"token|key|secret|pass|pwd|auth|sig|code|cred|sess|jwt|ticket|hmac", re.IGNORECASE
)
# A URL as urllib3 parses one: scheme, //authority, path, ?query, #fragment.
_URL_PARTS = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*:)?(?P<authority>//[^/?#\\]*)?"
    r"(?P<path>[^?#]*)(?P<query>\?[^#]*)?(?P<fragment>#.*)?",
    re.DOTALL,
)
# URLs inside a message: absolute ones, and a path with a query (urllib3
# writes "Max retries exceeded with url: /s?token=..."); punctuation that
# ends a sentence or a clause is not taken as part of the URL.
_URL_IN_TEXT = re.compile(
    r"(?:\b[A-Za-z][A-Za-z0-9+.-]*://|(?<![\w/])/[^\s'\"<>`?]*\?)"
    r"(?:[^\s'\"<>`]*[^\s'\"<>`.,:;!?)\]])?"
)
# Request headers whose values ssesync sets itself, or that are never secret.
_PLAIN_HEADERS = frozenset(
    {"accept", "cache-control", "connection", "content-length", "content-type", "last-event-id"}
)
# Shorter strings are not masked wherever they appear: "1" or "GET" would
# mangle every message, and are no secret anyway.
_MIN_SECRET = 4


def redact_url(url: str) -> str:
    """The URL with its credentials shown as ``***``: safe to log and to show.

    The user-info becomes ``***``, and so does the value of every query
    parameter whose name says it is a credential (``token``, ``api_key``,
    ``X-Amz-Signature``, ...) and every query part without a name (it may be
    a bare token); other parameters stay, to tell streams apart. The fragment
    (where OAuth puts an ``access_token``) is dropped. The URL is read as text,
    not parsed, so a malformed one — a typo in the port — is redacted too,
    and shows the typo.
    """
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:  # pragma: no cover - the pattern matches every string
        return MASK
    authority = parts["authority"] or ""
    if "@" in authority:
        authority = f"//{MASK}@{authority.rpartition('@')[2]}"
    query = parts["query"] or ""
    if len(query) > 1:
        pieces = re.split(r"([&;])", query[1:])
        query = "?" + "".join(_redact_query_part(piece) for piece in pieces)
    return f"{parts['scheme'] or ''}{authority}{parts['path']}{query}"


def _redact_query_part(part: str) -> str:
    if part in ("", "&", ";"):
        return part
    name, equals, _ = part.partition("=")
    if not equals:
        return MASK
    if not name or _CREDENTIAL_NAME.search(unquote_plus(name)):
        return f"{name}={MASK}"
    return part


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL in it redacted and every one of ``secrets`` masked."""
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)


def url_secrets(url: str) -> list[str]:
    """The user-info and the credential query values of ``url``, as written and decoded."""
    parts = _URL_PARTS.fullmatch(url)
    if parts is None:  # pragma: no cover - the pattern matches every string
        return []
    found: list[str] = []
    authority = parts["authority"] or ""
    if "@" in authority:
        userinfo = authority[2:].rpartition("@")[0]
        found.append(userinfo)
        found.extend(unquote(piece) for piece in userinfo.split(":"))
    for part in re.split(r"[&;]", (parts["query"] or "")[1:]):
        name, equals, value = part.partition("=")
        if not equals:
            found.append(part)
        elif not name or _CREDENTIAL_NAME.search(unquote_plus(name)):
            found.extend((value, unquote_plus(value)))
    return found


def request_secrets(request: Request, proxy: Optional[str] = None) -> list[str]:
    """What must never be shown of ``request``: its URL's and proxy's credentials, header values."""
    found = url_secrets(request.url)
    if proxy:
        found.extend(url_secrets(proxy))
    for name, value in request.headers.items():
        if name.lower() in _PLAIN_HEADERS:
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        found.extend((text, text.strip()))
    return found


def _chain(exc: Optional[BaseException]) -> Iterator[BaseException]:
    """``exc`` and every exception a traceback of it could print."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending:
        item = pending.pop()
        if item is None or any(item is other for other in seen):
            continue
        seen.append(item)
        yield item
        pending.extend((item.__cause__, item.__context__))


def presentable_error(
    error: SSEConnectionError,
    cause: Optional[BaseException],
    url: str,
    secrets: Iterable[str] = (),
) -> SSEConnectionError:
    """``error`` made safe to show: the one place backend text is redacted.

    Its message gets :func:`redact_text` (with the URL's own credentials and
    ``secrets`` masked) and its control characters escaped. ``cause`` becomes
    its ``__cause__`` only when no exception of that chain would print a
    secret in a traceback; otherwise the chain is left off (urllib3's parse
    errors quote the URL in full), as it is with ``cause=None``, for text
    that may quote secrets ssesync does not know. Raise the result ``from
    error.__cause__``, so that the choice stands.
    """
    known = [*url_secrets(url), *secrets]
    message = visible(redact_text(error.message, known))
    if message != error.message:
        error = SSEConnectionError(
            message,
            status=error.status,
            headers=error.headers,
            url=error.url,
            retryable=error.retryable,
            retry_after=error.retry_after,
        )
    safe = all(redact_text(str(item), known) == str(item) for item in _chain(cause))
    error.__cause__ = cause if safe else None
    return error
