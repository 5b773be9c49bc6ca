"""The default transport: requests sent through a urllib3 pool manager.

:class:`Urllib3Transport` sends each request with urllib3's ``urlopen``
(redirects followed, retries left to the read loop) and hands the response
back as a :class:`ResponseStream`, which the ``requests`` transport also uses
for the urllib3 response under a ``requests`` one.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace
from http.client import HTTPException
from typing import Any, Optional
from urllib.parse import unquote_to_bytes, urljoin, urlsplit, urlunsplit

import urllib3
from urllib3 import exceptions as u3exc
from urllib3.util.retry import Retry

from ._body import body_reader
from ._connect import Attempt, _current, build_pool_manager, registers_sockets
from ._errors import invalid_target_error, request_secrets, urllib3_error
from ._protocol import MAX_REDIRECTS, Request, Stream
from ._response import skip_interim
from ._watch import sockets_watched

__all__ = ["ResponseStream", "Urllib3Transport", "split_userinfo", "with_userinfo_auth"]

log = logging.getLogger("ssesync")

def with_userinfo_auth(request: Request) -> Request:
    """``request`` with the user-info of its URL sent as ``Authorization: Basic``.

    As curl and requests do: ``http://alice:s3cret@host/`` authenticates as
    ``alice``, percent-decoded; an ``Authorization`` header of the caller's
    wins. The user-info never goes out in the URL, and the header is dropped
    on a redirect to another host like any ``Authorization`` header.
    """
    url, userinfo = split_userinfo(request.url)
    if userinfo is None:
        return request
    headers = dict(request.headers)
    if not any(name.lower() == "authorization" for name in headers):
        user, _, password = userinfo.partition(":")
        credentials = unquote_to_bytes(user) + b":" + unquote_to_bytes(password)
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
    return replace(request, url=url, headers=headers)


def split_userinfo(url: str) -> tuple[str, Optional[str]]:
    """``url`` without its user-info, and the user-info (``None`` without one)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=host)), userinfo


#: What urllib3 drops when a 303 turns the request into a GET without a body.
_BODY_HEADERS = frozenset(
    {"content-encoding", "content-language", "content-location", "content-type",
     "content-length", "digest", "last-modified"}
)  # fmt: skip


def _same_host(url: str, target: str) -> bool:
    """Whether ``target`` is on the scheme, host and port of ``url``, as urllib3 decides it."""
    here, there = urllib3.util.parse_url(url), urllib3.util.parse_url(target)
    ports = {"http": 80, "https": 443}
    return (here.scheme, here.host, here.port or ports.get(here.scheme or "")) == (
        there.scheme, there.host, there.port or ports.get(there.scheme or "")
    )


class ResponseStream:
    """A urllib3 response as a :class:`Stream`, read by :func:`body_reader`.

    Pooled connections. A source that does not keep its connection sends
    ``Connection: close`` and must never let the connection serve another
    request. But once urllib3's public path reads a body to its end, urllib3
    hands the connection back to its pool at once, open (http.client only
    looks at the response's headers to decide that it persists), before
    :meth:`close` runs; on a shared pool (an :class:`~ssesync.SSEClient`'s,
    ``pool_manager=``, a session's) the next request could then be sent on a
    connection the server is about to close, or is still busy with. So the
    response's pool is held back while it is read: :meth:`close` closes the
    connection first and only then returns it, closed, to the pool.
    """

    __slots__ = ("_pool", "_response", "headers", "read", "status", "url")

    def __init__(
        self,
        response: urllib3.BaseHTTPResponse,
        url: str,
        reuse: bool,
        read_timeout: Optional[float] = None,
    ) -> None:
        self._response = response
        self._pool = None
        if not reuse and hasattr(response, "_pool"):
            self._pool, response._pool = response._pool, None
        self.read = body_reader(response, url, reuse=reuse, read_timeout=read_timeout)
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers
        # urllib3 keeps the path (or a relative Location) of the last request.
        self.url: str = urljoin(url, response.url) if response.url else url

    def abort(self) -> None:
        if getattr(self._response, "_connection", True) is None:
            # Released to the pool at the end of a reusable body, and maybe
            # in another request's use by now (urllib3 2.3 would shut it down
            # anyway; later versions refuse, as here).
            return
        try:
            self._response.shutdown()
        except (ValueError, RuntimeError, OSError, AttributeError):
            pass  # released, closed or not a socket: nothing is blocked on it

    def close(self, reuse: bool = False) -> None:
        response = self._response
        try:
            if not reuse or self._pool is not None:
                response.close()  # closes the connection too, while it is ours
            if self._pool is not None:
                response._pool, self._pool = self._pool, None  # type: ignore[attr-defined]
            response.release_conn()
        except (u3exc.HTTPError, HTTPException, OSError, ValueError):
            log.debug("error while closing a response", exc_info=True)


class _Answered:
    """A redirect answer read without urllib3, as :meth:`Retry.increment` reads one."""

    url = None  # the answer of the request's own URL

    def __init__(self, status: int, location: str) -> None:
        self.status = status
        self._location = location

    def get_redirect_location(self) -> str:
        return self._location

    def close(self) -> None:
        pass  # (its connection is closed already)

    def release_conn(self) -> None:
        pass


class Urllib3Transport:
    """Sends requests through a :class:`urllib3.PoolManager`.

    :param pool_manager: a caller's manager (kept open when we close), or
        ``None`` to build one from ``tls`` options (closed with us).
    """

    def __init__(
        self, pool_manager: Optional[urllib3.PoolManager] = None, **tls: Any
    ) -> None:
        self._owns_pool = pool_manager is None
        self._proxy: Optional[str] = tls.get("proxy") if pool_manager is None else None
        self.pool_manager = pool_manager if pool_manager is not None else build_pool_manager(**tls)
        self._registers_sockets = registers_sockets(self.pool_manager)
        self._retries = Retry(
            total=None,
            connect=0,
            read=0,
            redirect=MAX_REDIRECTS,
            status=0,
            other=0,
            raise_on_redirect=True,
            raise_on_status=False,
            respect_retry_after_header=False,
        )

    def open(self, request: Request, attempt: Attempt) -> Stream:
        secrets = request_secrets(request, self._proxy)
        request = with_userinfo_auth(request)
        secrets += request_secrets(request)
        return self._open(request, attempt, self._retries, secrets)

    def follow(self, request: Request, attempt: Attempt, status: int, location: str) -> Stream:
        """Follow a redirect received for ``request`` elsewhere (a hub's lean connect).

        By urllib3's rules, as if urllib3 had received it: the hop counts
        toward the limit, a relative ``Location`` is resolved, credentials
        stay at home. The request itself is not sent again.
        """
        secrets = request_secrets(request, self._proxy)
        answer = _Answered(status, location)
        retries, request = self._redirect(answer, request, location, self._retries, secrets)  # type: ignore[arg-type]
        return self._open(request, attempt, retries, secrets)

    def _open(
        self, request: Request, attempt: Attempt, retries: Retry, secrets: list[str]
    ) -> Stream:
        while True:
            # A caller's manager has urllib3's own connection classes: see sockets_watched.
            watched: AbstractContextManager[None] = (
                nullcontext() if self._registers_sockets else sockets_watched(attempt)
            )
            with watched:  # (the head after an interim one is waited for here too)
                response = self._send(request, attempt, retries, secrets)
                try:
                    interim = skip_interim(response)  # a caller's pool: see _FinalResponse
                except (HTTPException, OSError) as exc:
                    response.release_conn()
                    error = urllib3_error(exc, request.url, secrets)
                    raise error from error.__cause__
            location = response.get_redirect_location() if interim else None
            if not location:
                break
            # A redirect that urllib3 did not see: it read the interim head.
            retries = response.retries or retries  # what urllib3 has used up already
            retries, request = self._redirect(response, request, location, retries, secrets)
        stream = ResponseStream(response, request.url, request.reuse_connection, request.timeout[1])
        attempt.attach_stream(stream)
        return stream

    def _send(
        self, request: Request, attempt: Attempt, retries: Retry, secrets: list[str]
    ) -> urllib3.BaseHTTPResponse:
        connect, read = request.timeout
        _current.attempt = attempt
        try:
            return self.pool_manager.urlopen(
                request.method,
                request.url,
                body=request.body,
                headers=dict(request.headers),
                preload_content=False,
                redirect=True,
                retries=retries,
                timeout=urllib3.Timeout(connect=connect, read=read),
            )
        except (u3exc.HTTPError, HTTPException, OSError) as exc:
            error = urllib3_error(exc, request.url, secrets)
            raise error from error.__cause__
        except ValueError as exc:  # e.g. a redirect to an unparsable Location
            error = invalid_target_error(request.url, exc, secrets)
            raise error from error.__cause__
        finally:
            _current.attempt = None

    @staticmethod
    def _redirect(
        response: urllib3.BaseHTTPResponse,
        request: Request,
        location: str,
        retries: Retry,
        secrets: list[str],
    ) -> tuple[Retry, Request]:
        """Follow a redirect by urllib3's rules: its count, 303 -> GET, credentials at home."""
        url = urljoin(request.url, response.url) if response.url else request.url
        target = urljoin(url, location)
        try:
            retries = retries.increment(request.method, target, response=response)
        except u3exc.MaxRetryError as exc:
            error = urllib3_error(exc, request.url, secrets)
            raise error from error.__cause__
        finally:
            response.close()  # unread: the connection is not reused
            response.release_conn()
        method, body = request.method, request.body
        headers = dict(request.headers)
        dropped: frozenset[str] = frozenset()
        if response.status == 303 and method != "HEAD":
            method, body, dropped = "GET", None, _BODY_HEADERS
        if not _same_host(url, target):
            dropped |= {name.lower() for name in retries.remove_headers_on_redirect}
        headers = {name: value for name, value in headers.items() if name.lower() not in dropped}
        return retries, replace(request, method=method, url=target, headers=headers, body=body)

    def close(self) -> None:
        if self._owns_pool:
            self.pool_manager.clear()
