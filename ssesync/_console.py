"""What the command line and the demo share: printing, logging, and the run policy.

``ssesync URL`` (:mod:`ssesync.cli`) and ``ssesync demo`` (:mod:`ssesync._demo`)
print events the same way and end a run by the same rules; both build on this
module and neither imports the other. The policy is what a library cannot
choose for its caller:

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
"""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import Callable, Optional, TextIO

from ._event import Event, ReadyState
from ._source import EventSource
from ._text import CONTROL, visible
from .exceptions import SSEError, SSEParsingError

__all__ = ["format_json", "format_text"]

log = logging.getLogger("ssesync.cli")

#: Exit statuses: success, a failed stream, a wrong command line, Ctrl-C
#: (128 + SIGINT) and a closed stdout (128 + SIGPIPE, what ``cat`` reports).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


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
