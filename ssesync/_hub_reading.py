"""The reading half of a hub: each source's body, read whenever its socket is ready.

:class:`HubReading` is the part of :class:`~ssesync.Hub` that runs once a
source's response is in: it registers the body's socket with the reactor,
reads what has arrived (a few reads per turn, so one busy stream cannot
hold the others back), hands it to the source's read loop and sink, and
keeps the read timeout as a deadline. When the body ends, or breaks, it
tells the loop and goes on with the step the loop asks for
(:meth:`HubReading._step`, the hub's own).
"""

from __future__ import annotations

import abc
import functools
import logging
import time
from typing import TYPE_CHECKING, Optional

from ._loop import ReadLoop, Step
from ._reactor import Reactor, Timer
from ._sinks import CallbackSink
from ._transport import Transport
from ._transport._direct import DirectBody
from ._transport._lean import LeanConnect
from .exceptions import SSEConnectionError, SSEError

if TYPE_CHECKING:
    from ._source import EventSource

__all__ = ["Entry", "HubReading"]

log = logging.getLogger("ssesync")

#: Reads of one socket per wake-up before the others get their turn.
READS_PER_TURN = 4


class Entry:
    """One source as the hub runs it."""

    __slots__ = (
        "body", "connecting", "finished", "last_read", "lean", "loop", "sink", "source",
        "timer", "transport",
    )  # fmt: skip

    def __init__(
        self, source: EventSource, loop: ReadLoop, sink: CallbackSink, transport: Transport
    ) -> None:
        self.source = source  # held: a started source runs even if nobody else refers to it
        self.loop = loop
        self.sink = sink
        self.transport = transport
        self.body: Optional[DirectBody] = None
        self.connecting = False
        self.lean: Optional[LeanConnect] = None  # a connect on the hub's thread, under way
        self.finished = False
        self.last_read = 0.0
        self.timer: Optional[Timer] = None  # a wait before a reconnect, or the read timeout


class HubReading(abc.ABC):
    """Reading the bodies of a hub's sources, on the hub's thread."""

    _reactor: Optional[Reactor]
    #: The entry whose handlers run now, on the hub's thread.
    _running: Optional[Entry]

    @abc.abstractmethod
    def _step(self, entry: Entry, step: Step) -> None:
        """Do what the loop asks next (the hub's, which opens connections and waits)."""

    def _loop_reactor(self) -> Reactor:
        """The reactor, from the hub's own thread (where it always exists)."""
        assert self._reactor is not None
        return self._reactor

    def _start_reading(self, entry: Entry, body: DirectBody) -> None:
        reactor = self._loop_reactor()
        entry.body = body
        entry.last_read = time.monotonic()
        reactor.register(body.sock, functools.partial(self._readable, entry))
        read_timeout = entry.loop.options.timeout[1]
        if read_timeout is not None:
            entry.timer = reactor.schedule(read_timeout, functools.partial(self._silent, entry))
        self._readable(entry)  # what the response head brought along, and TLS leftovers

    def _silent(self, entry: Entry) -> None:
        """The read timeout is due: a stream silent that long counts as broken.

        Silent means nothing arrived, not nothing was read: a handler may have
        held the hub's thread past the deadline while bytes waited. So an
        overdue source is read once, without blocking, before it is judged.
        """
        entry.timer = None
        body, read_timeout = entry.body, entry.loop.options.timeout[1]
        if body is None or entry.finished or read_timeout is None:
            return
        if entry.last_read + read_timeout <= time.monotonic():
            self._readable(entry)  # sets last_read if anything came
            if entry.body is not body or entry.finished:
                return  # the read ended the stream, and the loop has decided what next
        left = entry.last_read + read_timeout - time.monotonic()
        url = entry.loop.url
        if left > 0:  # bytes came meanwhile: look again when they would be due
            again = functools.partial(self._silent, entry)
            entry.timer = self._loop_reactor().schedule(left, again)
        else:
            self._end_reading(entry, SSEConnectionError(f"read timed out on {url}", url=url))

    def _readable(self, entry: Entry) -> None:
        """Read what has arrived for ``entry``, parse it, deliver it."""
        body = entry.body
        if body is None or entry.finished:
            return
        loop = entry.loop
        parser = loop.parser
        assert parser is not None
        deliver = entry.sink.deliver
        self._running = entry
        try:
            for _ in range(READS_PER_TURN):
                data = body.read()
                if data is None:
                    break
                entry.last_read = time.monotonic()
                if data:
                    items = loop.received(data)
                    if items:
                        deliver(items, loop.plain)
                    if parser.error is not None:
                        self._end_reading(entry, parser.error)
                        return
                if body.ended or loop.closing:
                    self._end_reading(entry, None)
                    return
                if body.drained:
                    break  # a recv now would only say "would block"
            else:
                self._again(entry)  # more may be there: after the others' turns
                return
            if body.pending:
                self._again(entry)  # bytes inside TLS, which the selector cannot see
        except SSEError as exc:
            self._end_reading(entry, exc)
        except Exception as exc:  # a bug: report it, and end this stream, not the hub
            log.exception("unexpected error while reading %s", loop.url)
            entry.sink.registry.report_error(exc, uncaught=True)
            error = SSEConnectionError(f"reading {loop.url} failed: {type(exc).__name__}")
            self._end_reading(entry, error)
        finally:
            self._running = None

    def _again(self, entry: Entry) -> None:
        self._loop_reactor().again(functools.partial(self._readable, entry))

    def _end_reading(self, entry: Entry, error: Optional[SSEError]) -> None:
        self._stop_reading(entry)
        self._step(entry, entry.loop.ended(error))

    def _stop_reading(self, entry: Entry) -> None:
        body, entry.body = entry.body, None
        timer, entry.timer = entry.timer, None
        if timer is not None:
            timer.cancel()
        if body is not None and self._reactor is not None:
            self._reactor.unregister(body.sock)
