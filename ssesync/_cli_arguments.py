"""The command line's grammar: the options of ``ssesync``, their help and their types.

Each option's type converter checks its value as argparse reads it, so a
wrong value is a usage error (exit status 2) with a message that names the
option — and never quotes a header's value, which is often a credential.
"""

from __future__ import annotations

import argparse
import platform
import re

import urllib3

from . import __version__

__all__ = ["MAX_CONNECT_TIMEOUT", "build_parser"]

#: The longest connect timeout, whatever ``--timeout`` says: a read timeout of
#: minutes is normal for a quiet stream, a connect that slow is not.
MAX_CONNECT_TIMEOUT = 10.0


# RFC 9110 tokens: what a header name or a method may consist of.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


_USAGE = "%(prog)s [options] URL\n       %(prog)s demo [--format text|json] [-v]"


_DESCRIPTION = """\
Connect to a Server-Sent Events stream and print each event as it arrives:
one JSON object per line, {"event": ..., "data": ..., "id": ..., "retry": ...},
flushed at once so that `ssesync URL | jq` works. When the stream ends or
breaks, ssesync reconnects with Last-Event-ID, as a browser would; a first
connection that fails ends the command instead (unless --max-retries is given).

`ssesync demo` serves a built-in stream on loopback and reads it: no server
of your own needed."""


_EPILOG = """\
examples:
  ssesync https://example.com/stream
  ssesync -H 'Authorization: Bearer TOKEN' --max-events 10 https://example.com/stream
  ssesync --json '{"prompt": "hi"}' https://example.com/chat | jq -r .data
  ssesync --cacert internal-ca.pem https://events.internal/stream

environment:
  https_proxy, HTTPS_PROXY  the proxy for https:// URLs (unless --proxy is given)
  http_proxy, HTTP_PROXY    the proxy for http:// URLs (HTTP_PROXY is ignored
                            when REQUEST_METHOD is set, as in a CGI script)
  no_proxy, NO_PROXY        hosts reached without a proxy, even with --proxy:
                            names (a name also covers its subdomains),
                            addresses, CIDR ranges, or * for all

exit status:
  0 the stream ended cleanly (--no-reconnect, --max-events, HTTP 204)
  1 the stream failed (refused connection, HTTP error, wrong Content-Type, ...)
  2 wrong command line;  130 interrupted (Ctrl-C);  141 stdout was closed"""


def _header(text: str) -> tuple[str, str]:
    """Parse ``-H 'Name: value'``; error messages name the header, never its value."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon:
        raise argparse.ArgumentTypeError("expected 'Name: value', but the header has no colon")
    if not _TOKEN.fullmatch(name):
        shown = name if name.isprintable() and len(name) <= 60 else "(unprintable)"
        raise argparse.ArgumentTypeError(f"invalid header name {shown!r} (expected 'Name: value')")
    value = value.strip()
    if any(char in value for char in "\r\n\0"):
        raise argparse.ArgumentTypeError(f"the value of header {name!r} contains a line break")
    return name, value


def _method(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"invalid HTTP method {text!r}")
    return text.upper()


def _whole_number(text: str, minimum: int) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"expected {minimum} or more, got {text!r}")
    return number


def _positive_int(text: str) -> int:
    return _whole_number(text, 1)


def _count(text: str) -> int:
    return _whole_number(text, 0)


def _seconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not number > 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return number


def _milliseconds(text: str) -> float:
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected milliseconds, got {text!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 or more milliseconds, got {text!r}")
    return number


def _last_event_id(text: str) -> str:
    if any(char in text for char in "\r\n\0"):
        raise argparse.ArgumentTypeError("an event id cannot contain CR, LF or NUL")
    return text


def _version_text() -> str:
    """The version, with those of urllib3 and Python: what a bug report needs."""
    urllib3_version = getattr(urllib3, "__version__", "unknown")
    return f"ssesync {__version__} (urllib3 {urllib3_version}, Python {platform.python_version()})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ssesync",
        usage=_USAGE,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "url",
        metavar="URL",
        help="the stream's http:// or https:// URL (http:// is assumed when "
        "no scheme is given), or `demo`",
    )

    request = parser.add_argument_group("request")
    request.add_argument(
        "-H",
        "--header",
        dest="headers",
        metavar="'NAME: VALUE'",
        type=_header,
        action="append",
        default=[],
        help="add a request header (repeatable)",
    )
    request.add_argument(
        "-X",
        "--request",
        dest="method",
        metavar="METHOD",
        type=_method,
        help="the HTTP method (default: GET, or POST with -d/--json); "
        "the body is sent again on every reconnect",
    )
    body = request.add_mutually_exclusive_group()
    body.add_argument(
        "-d",
        "--data",
        metavar="DATA",
        help="send DATA as the request body, as given (@FILE reads a file, @- stdin); "
        "add -H 'Content-Type: ...' if the server needs one",
    )
    body.add_argument(
        "--json",
        metavar="BODY",
        help="send BODY, a JSON text (@FILE reads a file), with Content-Type: application/json",
    )
    request.add_argument(
        "--last-event-id",
        metavar="ID",
        type=_last_event_id,
        help="resume after event ID: sent as Last-Event-ID on the first request",
    )
    request.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        help="read timeout; a stream silent this long counts as broken and is "
        f"reconnected (default: 300; the connect timeout is at most {MAX_CONNECT_TIMEOUT:g})",
    )

    tls = parser.add_argument_group("TLS and proxies")
    tls.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="do not verify the server's TLS certificate or host name",
    )
    tls.add_argument(
        "--cacert",
        metavar="FILE",
        help="verify the server's certificate with the CA certificates in FILE (PEM) "
        "instead of the system's",
    )
    tls.add_argument(
        "--cert",
        metavar="FILE[:KEY]",
        help="send the client certificate in FILE (PEM); KEY is the file of its private "
        "key when FILE does not hold it",
    )
    tls.add_argument(
        "--proxy",
        metavar="URL",
        help="send requests through the HTTP(S) proxy at URL (http:// is assumed; "
        "user:password@ in it authenticates); '' for none. Default: from the environment",
    )

    reconnect = parser.add_argument_group("reconnecting")
    reconnect.add_argument(
        "--no-reconnect",
        dest="reconnect",
        action="store_false",
        help="exit when the stream ends or breaks instead of reconnecting",
    )
    reconnect.add_argument(
        "--retry-delay",
        metavar="MS",
        type=_milliseconds,
        help="base reconnect delay in milliseconds, doubled after each failed attempt "
        "(default: 3000; a retry: field from the server replaces it)",
    )
    reconnect.add_argument(
        "--max-retries",
        metavar="N",
        type=_count,
        help="give up after N failed attempts in a row; also retries a first "
        "connection that fails (default: retry forever once connected)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "--max-events",
        metavar="N",
        type=_positive_int,
        help="exit (status 0) after printing N events",
    )
    output.add_argument(
        "--format",
        choices=("json", "text"),
        help="json: one JSON object per line (the default); "
        "text: one readable line per event, for people (the default for `demo`)",
    )
    output.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log connections and reconnects to stderr; -vv for debugging detail",
    )
    output.add_argument(
        "--version",
        action="version",
        version=_version_text(),
    )
    return parser
