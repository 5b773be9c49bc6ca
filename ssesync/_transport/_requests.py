"""A transport through a caller's ``requests.Session`` (optional dependency).

Legacy code often has a configured session — auth, cookies, proxies, mounted
adapters — and wants its streams to go through it. The request is sent with
``stream=True`` and the body is read from the underlying urllib3 response
with ``read1``, so parsing, latency and reconnects are exactly those of the
default transport. Only the sending and the exception mapping differ.

Session settings win unless the source was given its own: ``verify``,
``cert`` and ``proxy`` are passed per request only when set explicitly, so a
session's own ``verify`` or ``proxies`` are not silently overridden.
"""

from __future__ import annotations

from http.client import HTTPException
from typing import Any, Optional, Union

from urllib3 import exceptions as u3exc

from ._connect import Attempt, proxy_settings
from ._errors import invalid_target_error, request_secrets, requests_error, urllib3_error
from ._protocol import MAX_REDIRECTS, Request, Stream
from ._response import skip_interim
from ._urllib3 import ResponseStream, split_userinfo
from ._watch import sockets_watched

try:
    import requests
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "session= needs the requests package: pip install 'ssesync[requests]'"
    ) from exc

__all__ = ["RequestsTransport"]


class _RequestsStream(ResponseStream):
    """The urllib3 response under a ``requests`` response, and that one too."""

    __slots__ = ("_outer",)

    def __init__(self, response: Any, url: str, reuse: bool) -> None:
        super().__init__(response.raw, url, reuse)
        self._outer = response
        self.status = response.status_code
        self.headers = response.headers
        self.url = response.url or url

    def close(self, reuse: bool = False) -> None:
        super().close(reuse)
        try:
            self._outer.close()
        except (u3exc.HTTPError, OSError, ValueError):
            pass


def _past_interim(
    session: requests.Session, response: Any, timeout: Any, settings: dict[str, Any]
) -> Any:
    """The response after any interim ones, and the redirects that came after them.

    requests decided on redirects when it had read only an interim head (see
    :func:`~ssesync._transport._response.skip_interim`), so a redirect after
    one is followed here, by requests' own rules (its count, the method
    change, credentials dropped on another host, the session's cookies).
    """
    for _ in range(MAX_REDIRECTS + 1):
        if not skip_interim(response.raw):
            return response
        response.status_code = response.raw.status
        response.reason = response.raw.reason
        response.headers = requests.structures.CaseInsensitiveDict(response.raw.headers)
        if not response.is_redirect:
            return response
        # urllib3 took the interim head for the response and would pool the
        # connection as reusable (the redirect's "Connection: close" came
        # after it): read the redirect's body now and close the connection,
        # so the next request opens a fresh one instead of a closed socket.
        connection = response.raw.connection
        response.content  # noqa: B018  (read now; resolve_redirects keeps it)
        if connection is not None:
            connection.close()
        hops = session.resolve_redirects(response, response.request, timeout=timeout, **settings)
        for hop in hops:
            response = hop  # the last one counts
    raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects after interim responses")


def _close_redirect(response: Any, **_kwargs: Any) -> Any:
    """A redirect answering a ``Connection: close`` request: close it, unread.

    requests follows a redirect by reading its body to the end (waiting as
    long as the server takes over it) and sending the next request on the
    same pooled connection, though ours said it would close it (some
    servers answer that request with 400). Closed here, in the session's
    response hook, the body reads as empty at once and the connection goes
    back to the pool closed, so the next request opens a new one.
    """
    request = getattr(response, "request", None)
    said = request.headers.get("Connection", "") if request is not None else ""
    if response.is_redirect and "close" in str(said).lower():
        try:
            response.raw.close()
        except (AttributeError, u3exc.HTTPError, HTTPException, OSError):
            pass  # not a urllib3 response: requests reads it as before
    return response


class RequestsTransport:
    """Sends requests through a ``requests.Session`` owned by the caller."""

    def __init__(
        self,
        session: requests.Session,
        *,
        verify: Union[bool, str, None] = None,
        cert: Union[str, tuple[str, str], None] = None,
        proxy: Optional[str] = None,
    ) -> None:
        self.session = session
        self._options: dict[str, Any] = {}
        if verify is not None:
            self._options["verify"] = verify
        if cert is not None:
            self._options["cert"] = cert
        self._proxy = proxy
        if proxy is not None:
            proxy_settings(proxy)  # an unusable proxy URL fails here, as with urllib3
            self._options["proxies"] = {"http": proxy, "https": proxy}

    def open(self, request: Request, attempt: Attempt) -> Stream:
        session = self.session
        headers = dict(request.headers)
        # The server's last event ID goes out byte for byte, as on the urllib3
        # transport: requests refuses a header value with leading whitespace
        # (an "id:  7" line gives " 7"), so it is set after the request is
        # prepared, which is where requests validates headers.
        last_event_id = headers.pop("Last-Event-ID", None)
        url = request.url
        if any(name.lower() == "authorization" for name in headers):
            url = split_userinfo(url)[0]  # the caller's header wins, as on urllib3
        try:
            prepared = session.prepare_request(
                requests.Request(request.method, url, headers=headers, data=request.body)
            )
            if last_event_id is not None:
                prepared.headers["Last-Event-ID"] = last_event_id
            prepared.register_hook("response", _close_redirect)
            settings = session.merge_environment_settings(
                prepared.url or request.url,
                self._options.get("proxies", {}),
                True,
                self._options.get("verify"),
                self._options.get("cert"),
            )
            with sockets_watched(attempt):  # (the session's classes do not register them)
                response = session.send(
                    prepared, timeout=request.timeout, allow_redirects=True, **settings
                )
                response = _past_interim(session, response, request.timeout, settings)
        except requests.RequestException as exc:
            error = requests_error(exc, request.url, request_secrets(request, self._proxy))
            raise error from error.__cause__
        except (u3exc.HTTPError, HTTPException, OSError) as exc:
            error = urllib3_error(exc, request.url, request_secrets(request, self._proxy))
            raise error from error.__cause__
        except ValueError as exc:  # e.g. a redirect to an unparsable Location
            error = invalid_target_error(request.url, exc, request_secrets(request, self._proxy))
            raise error from error.__cause__
        stream = _RequestsStream(response, request.url, request.reuse_connection)
        attempt.attach_stream(stream)
        return stream

    def close(self) -> None:
        """The session belongs to the caller: it stays open."""
