"""The HTTP edge: send the request, hand back a byte stream, map failures.

The read loop sees only a few small things from here: a :class:`Request` it
builds, a :class:`Transport` whose ``open()`` returns a :class:`Stream` (or
raises :class:`~ssesync.SSEConnectionError`), and :func:`check_response`,
which applies the status and content-type rules that every backend shares.
The package's modules, one role each, in the order a request meets them:

- ``_protocol``: :class:`Request`, :class:`Stream`, :class:`Transport`;
- ``_connect``: abortable attempts (:class:`Attempt`) and the urllib3 pools
  whose connections register with them;
- ``_urllib3``: the default transport; ``_requests``: the one through a
  caller's ``requests.Session``;
- ``_response``: which response counts (interim ``1xx``, status, MIME type);
- ``_body``: reading the body, with the socket fast path and ``_chunked``,
  its sans-I/O decoder of chunked framing;
- ``_errors``: the one place backend exceptions become ssesync's, and are
  redacted.

:func:`open_transport` picks and builds the transport a source's options ask for.
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import urlsplit

import urllib3

from ._connect import Attempt, build_pool_manager, proxy_settings
from ._errors import redact_url
from ._protocol import MAX_REDIRECTS, READ_SIZE, Request, Stream, Timeout, Transport
from ._response import check_response
from ._urllib3 import ResponseStream, Urllib3Transport

__all__ = [
    "MAX_REDIRECTS",
    "READ_SIZE",
    "TRANSPORT_OPTIONS",
    "Attempt",
    "Request",
    "ResponseStream",
    "Stream",
    "Timeout",
    "Transport",
    "Urllib3Transport",
    "build_pool_manager",
    "check_response",
    "open_transport",
    "proxy_settings",
    "redact_url",
]


#: The options of EventSource that pick its transport, with their defaults.
TRANSPORT_OPTIONS = {
    "pool_manager": None, "session": None, "verify": True, "cert": None,
    "proxy": None, "ca_certs": None, "ssl_context": None,
}  # fmt: skip


def open_transport(
    *,
    pool_manager: Any = None,
    session: Any = None,
    verify: Any = True,
    cert: Any = None,
    proxy: Any = None,
    ca_certs: Any = None,
    ssl_context: Any = None,
    maxsize: int = 1,
) -> Transport:
    """The transport a source's options ask for, after checking them.

    :param maxsize: connections kept per host by a pool built here.

    :raises TypeError: an option of the wrong type (the message names it).
    :raises ValueError: an option with a wrong value, such as a proxy URL
        that is not ``http://`` or ``https://``.
    """
    if not isinstance(verify, (bool, str)):
        raise TypeError(
            f"verify must be True, False or a CA bundle path, not {type(verify).__name__}"
        )
    if cert is not None and not (
        isinstance(cert, str)
        or (isinstance(cert, (tuple, list)) and len(cert) == 2
            and all(isinstance(part, str) for part in cert))
    ):  # fmt: skip
        raise TypeError("cert must be a PEM path or a (cert, key) pair of paths")
    if proxy is not None:
        if not isinstance(proxy, str):
            raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
        if urlsplit(proxy).scheme.lower() not in ("http", "https"):
            raise ValueError(f"proxy must be an http:// or https:// URL, not {redact_url(proxy)!r}")
    if ca_certs is not None and not isinstance(ca_certs, str):
        raise TypeError(f"ca_certs must be a path, not {type(ca_certs).__name__}")
    if ssl_context is not None and not isinstance(ssl_context, ssl.SSLContext):
        raise TypeError(f"ssl_context must be an ssl.SSLContext, not {type(ssl_context).__name__}")
    if pool_manager is not None and not isinstance(pool_manager, urllib3.PoolManager):
        raise TypeError(
            "pool_manager must be a urllib3.PoolManager or ProxyManager, "
            f"not {type(pool_manager).__name__}"
        )
    if session is not None:
        if pool_manager is not None:
            raise ValueError("give either session= or pool_manager=, not both")
        if not callable(getattr(session, "send", None)):
            raise TypeError(f"session must be a requests.Session, not {type(session).__name__}")
        if ssl_context is not None:
            # requests takes verify= and cert= per request, but no SSLContext.
            raise ValueError(
                "session= cannot use ssl_context=: requests takes no SSLContext per request; "
                "give verify=/cert=, or mount an adapter with that context on the session"
            )
        from ._requests import RequestsTransport

        if verify is True and ca_certs is not None:
            verify = ca_certs  # as on urllib3: a path given as verify= comes first
        return RequestsTransport(
            session,
            verify=None if verify is True else verify,
            cert=cert if cert is None or isinstance(cert, str) else (cert[0], cert[1]),
            proxy=proxy,
        )
    if pool_manager is not None:
        # The manager's own settings rule its connections; ours would be ignored.
        given = [
            f"{name}=" for name, value in (
                ("verify", verify is not True), ("cert", cert is not None),
                ("proxy", proxy is not None), ("ca_certs", ca_certs is not None),
                ("ssl_context", ssl_context is not None),
            ) if value
        ]  # fmt: skip
        if given:
            raise ValueError(
                f"pool_manager= cannot be combined with {', '.join(given)}: a pool manager "
                "uses its own TLS and proxy settings, so give them to the PoolManager or "
                "ProxyManager you build"
            )
    return Urllib3Transport(
        pool_manager,
        verify=verify,
        cert=cert,
        proxy=proxy,
        ca_certs=ca_certs,
        ssl_context=ssl_context,
        maxsize=maxsize,
    )
