"""The ``ssesync`` command: print a server-sent event stream, one line per event.

The command is a thin shell around :class:`~ssesync.EventSource` iterated in
the main thread, so everything the library does (reconnects with
``Last-Event-ID``, backoff, dedupe) happens here too. This module turns the
command line into source options; how events are printed and when a run
ends (:mod:`ssesync._console`) it shares with ``ssesync demo``.

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
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Optional

import urllib3

from ._cli_arguments import MAX_CONNECT_TIMEOUT, build_parser
from ._cli_network import proxy_for, tls_options
from ._console import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    _configure_logging,
    _error,
    _log_comment,
    _Policy,
    _Printer,
    _run,
)
from ._source import EventSource
from ._transport import proxy_settings, redact_url

__all__ = ["main", "proxy_for"]

log = logging.getLogger("ssesync.cli")


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
    options.update(tls_options(parser, args))
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


# -- running ----------------------------------------------------------------------


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
    parser = build_parser()
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
