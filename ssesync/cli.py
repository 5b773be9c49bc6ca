"""The ``ssesync`` command: print a server-sent event stream, one line per event.

The command is a thin shell around :class:`~ssesync.EventSource` iterated in
the main thread, so everything the library does (reconnects with
``Last-Event-ID``, backoff, dedupe) happens here too. What the command adds is
policy a library cannot choose for its caller:

* **Output is a pipe's friend.** Each event is one line, flushed at once, so
  ``ssesync URL | jq`` shows events as they arrive and not when a buffer
  fills. A reader that goes away (``| head -1``) ends the command quietly,
  and Ctrl-C closes the source and exits with the shell's usual 130.
* **A first connection that fails ends the command**, as with curl: a typo in
  the URL should not look like a stream that is merely quiet. Once the stream
  has been open, drops are reconnected as the library does, because that is
  why one uses an SSE client. ``--max-retries`` asks for retries from the
  start instead. A parse error (an event over the size limit) ends the
  command too: reconnecting would only fetch the same oversized event again.
* **Errors are one line** on stderr, ``ssesync: error: ...``, exit status 1
  for a failed stream and 2 for a wrong command line. Messages never contain
  request header values, which are often credentials.
* **Server text stays inert.** Data, ids, comments, status lines and the
  reasons in error messages come from the server; whatever the command
  prints — events in either format, error lines, log lines at any
  verbosity — shows their control characters as escapes
  (:func:`ssesync._text.visible`), so a stream cannot drive the terminal.

* **TLS and proxies as in curl.** ``-k``, ``--cacert``, ``--cert`` and
  ``--proxy`` map onto the library's ``verify``, ``cert`` and ``proxy``, and
  their files are checked before anything is sent, so a wrong path is a
  usage error and not a failed stream. Unlike the library, which never reads
  the environment, the command takes its proxy from ``https_proxy`` /
  ``http_proxy`` and skips it for hosts in ``no_proxy`` (:func:`proxy_for`).

``ssesync demo`` runs :mod:`ssesync._demo`, which serves a scripted stream on
loopback and reads it with the same printer and loop as a real URL.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import platform
import re
import ssl
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional, TextIO, Union
from urllib.parse import urlsplit

import urllib3

from . import __version__
from ._event import Event, ReadyState
from ._source import EventSource
from ._text import CONTROL, visible
from ._transport import proxy_settings, redact_url
from .exceptions import SSEError, SSEParsingError

__all__ = ["main", "proxy_for"]

log = logging.getLogger("ssesync.cli")

#: Exit statuses: success, a failed stream, a wrong command line, Ctrl-C
#: (128 + SIGINT) and a closed stdout (128 + SIGPIPE, what ``cat`` reports).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

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


# -- argument parsing -------------------------------------------------------------


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


def _build_parser() -> argparse.ArgumentParser:
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


def _read_argument_file(parser: argparse.ArgumentParser, option: str, value: str) -> bytes:
    """The bytes of ``@FILE`` (``@-``: stdin), or the argument's own bytes."""
    if not value.startswith("@"):
        # fsencode gives back the bytes the user typed, even ones that are not UTF-8.
        return os.fsencode(value)
    path = value[1:]
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as exc:
        parser.error(f"{option}: cannot read {path!r}: {exc.strerror or exc}")


def _readable(parser: argparse.ArgumentParser, option: str, path: str) -> str:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        parser.error(f"{option}: cannot read {path!r}: {exc.strerror or exc}")
    return path


def _tls_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
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


def _source_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """Turn the parsed command line into :class:`EventSource` keyword arguments."""
    headers: dict[str, str] = {}
    names: dict[str, str] = {}  # lower-case name -> the spelling first used
    for name, value in args.headers:
        key = names.setdefault(name.lower(), name)
        # A repeated header is one list-valued header, as HTTP defines it.
        headers[key] = f"{headers[key]}, {value}" if key in headers else value

    body: Optional[bytes] = None
    if args.data is not None:
        body = _read_argument_file(parser, "-d/--data", args.data)
    elif args.json is not None:
        body = _read_argument_file(parser, "--json", args.json)
        try:
            json.loads(body)
        except ValueError as exc:
            parser.error(f"--json: not valid JSON: {exc}")
        if "content-type" not in names:
            headers["Content-Type"] = "application/json"

    options: dict[str, Any] = {
        "headers": headers,
        "method": args.method or ("GET" if body is None else "POST"),
        "data": body,
        "reconnect": args.reconnect,
    }
    if args.last_event_id:
        options["last_event_id"] = args.last_event_id
    if args.timeout is not None:
        options["timeout"] = (min(MAX_CONNECT_TIMEOUT, args.timeout), args.timeout)
    if args.retry_delay is not None:
        options["retry_delay"] = args.retry_delay
    if args.max_retries is not None:
        options["max_retries"] = args.max_retries
    options.update(_tls_options(parser, args))
    proxy, origin = proxy_for(args.url, args.proxy, os.environ)
    if proxy is not None:
        try:
            proxy_settings(proxy)
        except ValueError as exc:
            parser.error(f"{origin}: {exc}")
        options["proxy"] = proxy
    args.proxy_note = (
        f"using the proxy {redact_url(proxy)} (from {origin})" if proxy is not None
        else f"no proxy for this host ({origin})" if origin in ("no_proxy", "NO_PROXY")
        else None
    )
    return options


def _demo_conflicts(args: argparse.Namespace) -> list[str]:
    """The options given with ``demo`` that it cannot honour."""
    given = {
        "-H": bool(args.headers),
        "-X": args.method is not None,
        "-d": args.data is not None,
        "--json": args.json is not None,
        "--last-event-id": args.last_event_id is not None,
        "--timeout": args.timeout is not None,
        "--no-reconnect": not args.reconnect,
        "--retry-delay": args.retry_delay is not None,
        "--max-retries": args.max_retries is not None,
        "--max-events": args.max_events is not None,
        "-k": args.insecure,
        "--cacert": args.cacert is not None,
        "--cert": args.cert is not None,
        "--proxy": args.proxy is not None,
    }
    return [flag for flag, present in given.items() if present]


# -- output -----------------------------------------------------------------------


def format_json(event: Event) -> str:
    """One event as a compact JSON object on one line.

    ``json.dumps`` escapes the C0 controls; DEL, the C1 controls and U+2028 /
    U+2029 it leaves raw, and a terminal (or a reader splitting lines) may
    act on those, so they are written as ``\\u`` escapes too. They can only
    occur inside strings, where such an escape means the same character.
    """
    fields = {"event": event.event, "data": event.data, "id": event.id, "retry": event.retry}
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return CONTROL.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def format_text(event: Event) -> str:
    """One event for a person: ``[type] id=3 data``, further data lines indented."""
    head = [f"[{visible(event.type)}]"]
    if event.id is not None:
        head.append(f"id={visible(event.id)}" if event.id else 'id=""')
    if event.retry is not None:
        head.append(f"retry={event.retry}")
    first, *rest = event.data.split("\n")
    if first:
        head.append(visible(first))
    return "\n".join([" ".join(head), *("    " + visible(line) for line in rest)])


class _Printer:
    """Writes each event as one formatted line and flushes it at once.

    Flushing per event is the point: stdout is block-buffered when it is a
    pipe, and a stream's events must reach ``jq`` or ``grep`` as they come.
    """

    def __init__(self, output_format: str, stream: Optional[TextIO] = None) -> None:
        self._json = output_format == "json"
        self._stream = stream if stream is not None else sys.stdout
        self.count = 0

    def __call__(self, event: Event) -> None:
        line = (format_json(event) if self._json else format_text(event)) + "\n"
        try:
            self._stream.write(line)
        except UnicodeEncodeError:
            # An output encoding that cannot spell every character (a legacy
            # console): JSON has an ASCII-only spelling, text gets escapes.
            if self._json:
                fields = dict(json.loads(line))
                line = json.dumps(fields, separators=(",", ":")) + "\n"
            else:
                encoding = getattr(self._stream, "encoding", None) or "ascii"
                line = line.encode(encoding, "backslashreplace").decode(encoding)
            self._stream.write(line)
        self._stream.flush()
        self.count += 1


def _error(message: object) -> None:
    """Print the one line a failed run ends with (escaped: it may quote the server)."""
    text = visible(str(message))
    try:
        print(f"ssesync: error: {text}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is gone too: the exit status is all that is left


def _silence_stdout() -> None:
    """Point stdout at the null device after its reader went away.

    Otherwise the interpreter's final flush of the buffered remainder fails
    again and prints "Exception ignored ... BrokenPipeError" on the way out.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # not a real file (an embedding caller's stream): nothing to fix


# -- running ----------------------------------------------------------------------


class _Policy:
    """The command's rules for ending a run that the library would keep retrying.

    Hooked into the source as ``on_open`` / ``on_error`` and into the log
    handler as a filter: the library logs a failure (``"...; reconnecting in
    2.1 s"``) just before it reports it to ``on_error``, so the filter must
    make the same decision as the hook to keep a run that ends from also
    announcing a reconnect.
    """

    def __init__(self, retry_first_connection: bool) -> None:
        self.retry_first_connection = retry_first_connection
        self.opened = False
        self.failure: Optional[SSEError] = None

    def ends_run(self, error: BaseException) -> bool:
        if isinstance(error, SSEParsingError):
            return True
        return not self.opened and not self.retry_first_connection

    def on_open(self, source: EventSource) -> None:
        self.opened = True

    def on_error(self, source: EventSource, error: BaseException) -> None:
        if not isinstance(error, SSEError) or source.ready_state is not ReadyState.CONNECTING:
            return  # a fatal error: the iterator raises it, and main() reports it
        if self.ends_run(error):
            self.failure = error
            source.close()
        elif source.last_event_id:
            log.info("will resume with Last-Event-ID: %s", source.last_event_id)

    def filter(self, record: logging.LogRecord) -> bool:
        # The library logs a failure with the error as the first argument.
        args = record.args
        error = args[0] if isinstance(args, tuple) and args else None
        if isinstance(error, SSEError):
            # main() prints the error that ends the run as its one last line.
            return record.levelno < logging.ERROR and not self.ends_run(error)
        return True


class _LogFormatter(logging.Formatter):
    """``ssesync: message``, with ``warning:`` and the like for the serious ones."""

    def format(self, record: logging.LogRecord) -> str:
        # A record may quote the server (a comment, an id, a status line):
        # escaped, a line break included, so one record stays one line.
        label = "" if record.levelno < logging.WARNING else record.levelname.lower() + ": "
        text = f"ssesync: {label}{visible(record.getMessage())}"
        if record.exc_info:
            lines = self.formatException(record.exc_info).split("\n")
            text += "\n" + "\n".join(visible(line) for line in lines)
        return text


def _configure_logging(
    verbose: int, policy: _Policy, *, quiet_level: int = logging.WARNING
) -> Callable[[], None]:
    """Send the ``ssesync`` logger to stderr; returns the function that undoes it.

    Without ``-v`` only warnings show (a stream that broke and is being
    reconnected: the user should know why nothing arrives); ``-v`` adds
    connects and reconnects, ``-vv`` debugging detail.
    """
    level = quiet_level if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("ssesync")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_LogFormatter())
    handler.addFilter(policy.filter)
    handler.setLevel(level)
    previous_level = logger.level
    logger.setLevel(level)
    logger.addHandler(handler)

    def restore() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return restore


def _log_comment(source: EventSource, text: str) -> None:
    log.debug("comment: %s", text)


def _run(
    source: EventSource,
    printer: Callable[[Event], None],
    policy: _Policy,
    max_events: Optional[int] = None,
) -> int:
    """Iterate ``source`` into ``printer`` until it ends; returns the exit status."""
    source.on_open(policy.on_open)
    source.on_error(policy.on_error)
    count = 0
    try:
        try:
            for event in source:
                try:
                    printer(event)
                except BrokenPipeError:
                    _silence_stdout()
                    return EXIT_BROKEN_PIPE
                count += 1
                if max_events is not None and count >= max_events:
                    break
        finally:
            source.close()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except SSEError as exc:
        _error(_explained(exc))
        return EXIT_ERROR
    if policy.failure is not None:
        _error(_explained(policy.failure))
        return EXIT_ERROR
    return EXIT_OK


def _explained(error: SSEError) -> str:
    """The error's message, with what to do about it where the command can tell."""
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        text += " (to trust the server's certificate, give its CA with --cacert FILE; "
        text += "-k skips verification)"
    return text


def _parse(parser: argparse.ArgumentParser, argv: Optional[Sequence[str]]) -> argparse.Namespace:
    args = parser.parse_args(argv)
    if args.url == "demo":
        conflicts = _demo_conflicts(args)
        if conflicts:
            parser.error(f"`demo` takes only --format and -v, not {', '.join(conflicts)}")
        return args
    if "://" not in args.url:
        args.url = "http://" + args.url  # as curl does: `ssesync localhost:8000/events`
    args.source_options = _source_options(parser, args)
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); returns the exit status.

    It returns instead of raising :class:`SystemExit`, also for ``--help``
    and usage errors, so tests and embedding programs can call it directly;
    the console script passes the result to :func:`sys.exit`.
    """
    parser = _build_parser()
    try:
        args = _parse(parser, argv)
    except SystemExit as exc:  # argparse's way out, for --help, --version and errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:  # e.g. while `-d @-` reads a terminal
        return EXIT_INTERRUPTED

    if args.url == "demo":
        from ._demo import run_demo

        return run_demo(output_format=args.format or "text", verbose=args.verbose)

    try:
        source = EventSource(args.url, **args.source_options)
    except ValueError as exc:  # an unusable URL or proxy; the message is safe to show
        parser.print_usage(sys.stderr)
        _error(exc)
        return EXIT_USAGE
    policy = _Policy(retry_first_connection=args.max_retries is not None)
    source.on_comment(_log_comment)
    restore_logging = _configure_logging(args.verbose, policy)
    try:
        if args.proxy_note:
            log.info("%s", args.proxy_note)
        with warnings.catch_warnings():
            if args.insecure:  # asked for: no warning per connection, as in curl
                warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
            return _run(source, _Printer(args.format or "json"), policy, args.max_events)
    except KeyboardInterrupt:  # a second Ctrl-C while closing
        return EXIT_INTERRUPTED
    finally:
        restore_logging()


if __name__ == "__main__":
    sys.exit(main())
