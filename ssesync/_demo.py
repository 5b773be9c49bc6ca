"""``ssesync demo``: serve a scripted stream on loopback and read it, narrated.

A new user's first command should show the parts of SSE that are hard to see
against a real server: event types, ids, comments, the server's ``retry:``,
and above all what happens when a connection drops. So the demo runs
:class:`ssesync.testing.SSEServer` in this process and scripts three
connections:

1. events 1-4 (with a comment between them and ``retry: 500`` on the first),
   then the server resets the connection;
2. the client comes back carrying ``Last-Event-ID: 4``; the server resumes
   after it but sends event 4 once more, which the client's dedupe skips; it
   then sends events 5 and 6 and ends the stream cleanly;
3. the client reconnects once more and the server answers ``204 No Content``,
   which tells an SSE client to stop: the demo ends by itself.

Events go to stdout through the command's own printer and loop (the same
code as ``ssesync URL``); the narration, from the source's hooks and from the
server's handlers, goes to stderr as ``#`` lines so that ``--format json``
output stays pure JSON. Nothing leaves the loopback interface, and leaving
the ``with SSEServer()`` block joins every server thread, so no thread
outlives the demo.
"""

from __future__ import annotations

import json
import logging
import sys

from ._console import _configure_logging, _Policy, _Printer, _run
from ._event import Event
from ._source import EventSource
from ._text import visible
from .exceptions import SSEError
from .testing import EventSpec, SSEServer, StreamConnection

__all__ = ["run_demo"]

#: The ``retry:`` the demo server sends: short, so the demo's reconnects are quick.
RETRY_MS = 500
#: The pause between two events: slow enough to watch events arrive one by one.
PAUSE = 0.12
PATH = "/demo"

_EVENTS: list[EventSpec] = [
    {
        "event": "greeting",
        "id": "1",
        "retry": RETRY_MS,
        "data": "Hello from the ssesync demo server!",
    },
    {"id": "2", "data": 'This one has no "event:" field, so its type is "message".'},
    {"event": "update", "id": "3", "data": json.dumps({"progress": 50, "status": "working"})},
    {"id": "4", "data": "Data may span lines:\neach data: line becomes one line of the event."},
    # The first connection is dropped here.
    {"event": "update", "id": "5", "data": json.dumps({"progress": 100, "status": "done"})},
    {"event": "goodbye", "id": "6", "data": "That's all: the server now ends the stream."},
]
_DROP_AFTER = 4


def _say(text: str) -> None:
    """One narration line on stderr, escaped like all the command prints.

    The demo goes on if stderr is gone.
    """
    try:
        print(f"# {visible(text)}", file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _send(conn: StreamConnection, spec: EventSpec) -> None:
    conn.event(
        spec.get("data"), event=spec.get("event"), id=spec.get("id"), retry=spec.get("retry")
    )


def _first_connection(conn: StreamConnection) -> None:
    conn.send_headers()
    conn.event(comment="welcome to the ssesync demo")
    for index, spec in enumerate(_EVENTS[:_DROP_AFTER]):
        conn.pause(PAUSE)
        if index == 2:
            conn.event(comment="keep-alive")  # what servers send to keep proxies from timing out
        _send(conn, spec)
    # Give the client time to read event 4 first: on some systems a reset
    # discards received bytes the application has not read yet.
    conn.pause(PAUSE)
    if conn.closed_by_peer():  # the demo was cut short (Ctrl-C, `| head`): say no more
        return
    _say("server: dropping the connection (TCP reset), as a crashing server or proxy would")
    conn.drop()


def _resumed_connection(conn: StreamConnection) -> None:
    last_id = conn.request.last_event_id
    ids = [spec.get("id") for spec in _EVENTS]
    if last_id in ids:
        start = ids.index(last_id)  # resume after it, but replay it once
        _say(
            f"server: the request carries Last-Event-ID: {last_id}; resuming after event "
            f"{last_id}, which it sends once more (the client's dedupe skips the copy)"
        )
    else:
        start = 0
        _say("server: the request carries no usable Last-Event-ID; starting over")
    conn.send_headers()
    for index, spec in enumerate(_EVENTS[start:]):
        if index:
            conn.pause(PAUSE)
        _send(conn, spec)
    conn.pause(PAUSE)
    conn.end()


def _finished(conn: StreamConnection) -> None:
    _say("server: the stream is over: answering 204 No Content, which tells the client to stop")
    conn.respond(204)


class _Narrator:
    """The client side of the narration, hooked into the source."""

    def __init__(self) -> None:
        self.opened = 0
        self.comments = 0

    def on_open(self, source: EventSource) -> None:
        self.opened += 1
        if self.opened == 1:
            _say(f"client: connected to {source.url}")
        else:
            _say(f"client: connected again (connection {self.opened})")

    def on_error(self, source: EventSource, error: BaseException) -> None:
        if not isinstance(error, SSEError):
            return
        _say(f"client: {error}")
        last_id = source.last_event_id
        resume = f", with Last-Event-ID: {last_id}" if last_id else ""
        wait = f"{RETRY_MS} ms or a little more (the server's retry:)"
        _say(f"client: reconnecting after {wait}{resume}")

    def on_comment(self, source: EventSource, text: str) -> None:
        self.comments += 1
        why = " (comments are not events: servers send them to keep a connection busy)"
        _say(f"client: comment: {text}{why if self.comments == 1 else ''}")


def run_demo(*, output_format: str = "text", verbose: int = 0) -> int:
    """Serve the demo stream on loopback, read it, print it; returns the exit status.

    :param output_format: ``"text"`` or ``"json"``, as ``--format``.
    :param verbose: as ``-v``: also log the library's own connection messages.
    """
    policy = _Policy(retry_first_connection=False)
    # Without -v the narration tells the story; the library's log would repeat it.
    restore_logging = _configure_logging(verbose, policy, quiet_level=logging.CRITICAL + 1)
    printer = _Printer(output_format)
    narrator = _Narrator()

    def print_event(event: Event) -> None:
        printer(event)
        if event.retry is not None:
            _say(f"client: retry: {event.retry} sets the reconnect delay to {event.retry} ms")

    try:
        with SSEServer() as server:
            server.route(PATH, _first_connection, _resumed_connection, _finished)
            url = server.url_for(PATH)
            _say(f"ssesync demo: serving a scripted stream at {url} and reading it")
            source = EventSource(url, retry_delay=RETRY_MS, timeout=(2.0, 5.0))
            source.on_open(narrator.on_open)
            source.on_error(narrator.on_error)
            source.on_comment(narrator.on_comment)
            status = _run(source, print_event, policy)
            requests = server.connection_count
    finally:
        restore_logging()
    if status == 0:
        _say(f"demo over: {printer.count} events printed, each once, over {requests} requests")
    return status
