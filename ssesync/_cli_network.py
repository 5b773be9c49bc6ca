"""The command's TLS and proxy options, read as curl reads them.

``-k``, ``--cacert`` and ``--cert`` become the library's ``verify`` and
``cert``, their files checked before anything is sent. The proxy comes from
``--proxy`` or, unlike the library (which never reads the environment), from
``https_proxy``/``http_proxy``, skipped for the hosts of ``no_proxy``
(:func:`proxy_for`).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
from collections.abc import Mapping
from typing import Any, Optional, Union
from urllib.parse import urlsplit

__all__ = ["proxy_for", "tls_options"]

def _readable(parser: argparse.ArgumentParser, option: str, path: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        parser.error(f"{option}: cannot read {path!r}: {exc.strerror or exc}")
    return path


def tls_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """``verify`` and ``cert`` from -k, --cacert and --cert, their files checked now.

    Loading them into a throwaway :class:`ssl.SSLContext` finds a missing
    file, one that is not PEM, or a key that does not match its certificate
    before the first request, where it can be reported as the mistake it is.
    """
    options: dict[str, Any] = {}
    if args.cacert is None and args.cert is None:
        return {"verify": False} if args.insecure else options
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if args.cacert is not None:
        _readable(parser, "--cacert", args.cacert)
        try:
            context.load_verify_locations(cafile=args.cacert)
        except ssl.SSLError as exc:
            why = exc.reason or "not PEM"
            parser.error(f"--cacert: no CA certificate found in {args.cacert!r} ({why})")
        options["verify"] = args.cacert
    if args.insecure:
        options["verify"] = False  # as in curl, -k wins over --cacert
    if args.cert is not None:
        cert: Union[str, tuple[str, str]] = _client_cert(parser, args.cert)
        files = (cert, None) if isinstance(cert, str) else cert
        try:
            context.load_cert_chain(*files)
        except ssl.SSLError as exc:
            why = exc.reason or "not PEM, or the key does not match"
            parser.error(f"--cert: cannot use {args.cert!r} as certificate and key ({why})")
        options["cert"] = cert
    return options


def _client_cert(parser: argparse.ArgumentParser, text: str) -> Union[str, tuple[str, str]]:
    """``FILE`` or ``FILE:KEY``; a colon in an existing path (``C:\\...``) is not a split."""
    if os.path.exists(text) or ":" not in text:
        return _readable(parser, "--cert", text)
    splits = [i for i, char in enumerate(text) if char == ":"]
    for i in splits:
        if os.path.exists(text[:i]) and os.path.exists(text[i + 1 :]):
            return text[:i], text[i + 1 :]
    cert, _, key = text.rpartition(":")
    return _readable(parser, "--cert", cert), _readable(parser, "--cert", key)


def _environ(environ: Mapping[str, str], name: str) -> str:
    """A variable that may be spelled in lower or upper case; lower case wins, as in curl."""
    return environ.get(name) or environ.get(name.upper()) or ""


def _bypasses_proxy(host: str, no_proxy: str) -> bool:
    """Whether ``host`` matches an entry of a ``no_proxy`` list, by curl's rules.

    Entries are separated by commas. ``*`` matches every host; an address or
    a CIDR range matches the addresses in it; a name matches itself and its
    subdomains (``example.com`` and ``.example.com`` both match
    ``www.example.com``, neither matches ``notexample.com``). A port after a
    name is ignored.
    """
    host = host.lower().rstrip(".")
    try:
        address: Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in no_proxy.split(","):
        entry = entry.strip().lower()
        if entry == "*":
            return True
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            if address is not None and address in network:
                return True
            continue
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.strip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def proxy_for(
    url: str, given: Optional[str], environ: Mapping[str, str]
) -> tuple[Optional[str], str]:
    """The proxy the command uses for ``url``, and where it came from, as curl chooses.

    ``--proxy`` (``given``) wins over the environment, and ``--proxy ''``
    means none. Otherwise ``https_proxy`` (or ``HTTPS_PROXY``) serves
    ``https://`` URLs and ``http_proxy`` (or ``HTTP_PROXY``) ``http://`` ones.
    curl reads ``http_proxy`` only in lower case: a CGI script gets a
    request's ``Proxy:`` header as ``HTTP_PROXY``, so a client could choose
    the proxy. Like Python's own :func:`urllib.request.getproxies`, the upper
    case spelling is therefore ignored when ``REQUEST_METHOD`` is set. A host
    in ``no_proxy`` is reached directly, even with ``--proxy``. A proxy
    without a scheme gets ``http://``.
    """
    if given == "":
        return None, "--proxy"
    host = urlsplit(url).hostname or ""
    no_proxy = _environ(environ, "no_proxy")
    origin = "--proxy"
    if given is None:
        if urlsplit(url).scheme.lower() == "https":
            origin = "https_proxy" if environ.get("https_proxy") else "HTTPS_PROXY"
            given = _environ(environ, "https_proxy")
        else:
            given = environ.get("http_proxy") or ""
            origin = "http_proxy"
            if not given and "REQUEST_METHOD" not in environ:
                given = environ.get("HTTP_PROXY") or ""
                origin = "HTTP_PROXY"
    if not given:
        return None, origin
    if no_proxy and _bypasses_proxy(host, no_proxy):
        return None, "no_proxy" if environ.get("no_proxy") else "NO_PROXY"
    return (given if "://" in given else "http://" + given), origin
