"""The event-stream parser: bytes in, events out, no I/O.

It implements the "interpreting an event stream" rules of the WHATWG HTML
standard's Server-sent events section, and it is the hot path of every
source, so it is built around bulk string operations on whole reads rather
than a loop per line or per character.

Strategy. Each read is decoded once with an incremental UTF-8 decoder (a
character split across reads comes out whole; invalid bytes become U+FFFD).
Line ends are then normalised to LF in one ``replace`` pass: CRLF and a lone
CR both become LF. A CR that ends a read already ends its line — so
``data: x\\r\\r`` dispatches without waiting — and we remember to drop an LF
that starts the next read, which completes the same CRLF. After that, a blank
line is simply ``"\\n\\n"``, so the decoded text splits into whole blocks with
``rfind`` and ``split``. What follows the last blank line is kept as a list of
pieces that is only joined once its block completes; each new read is
searched on its own (plus the one character of overlap at the seam), so the
cost stays linear however a large event is cut into reads. The size of those
pieces is what ``max_event_size`` bounds: a server that never sends a blank
line cannot make the parser hold more than that.

Blocks of the common shape ``data: <text>`` take a fast path that builds the
event directly. Streams whose blocks have several lines are most often
written as ``event:`` and ``id:`` lines then ``data:`` lines; once a read shows
such blocks, the next reads are matched whole by one regular expression
(``_parse_structured``), which leaves only the building of each event to
Python. Everything else goes through the field-by-field rules.
"""

from __future__ import annotations

import codecs
import operator
import re
import sys
from itertools import repeat
from typing import Callable, Optional, Union

from ._event import Event
from .exceptions import SSEParsingError

__all__ = ["DEFAULT_MAX_EVENT_SIZE", "Parser"]

#: The default bound on one line or event, in characters: 32 MiB.
DEFAULT_MAX_EVENT_SIZE = 32 * 1024 * 1024

_new_event = tuple.__new__
_contains = operator.contains
_LF = repeat("\n")
_utf8_decode = codecs.utf_8_decode


class Parser:
    """Turns the bytes of one event stream into events and comments.

    A parser belongs to one connection: a reconnect starts a new one, seeded
    with the last event ID, so that a block cut off by the dropped connection
    is discarded (the specification's rule for an incomplete final event).

    :param last_event_id: the last event ID carried over from earlier streams.
    :param max_event_size: the longest line or event accepted, in characters;
        anything longer raises :class:`~ssesync.SSEParsingError`.
    :param strict: raise :class:`~ssesync.SSEParsingError` for violations that
        the specification tells clients to ignore (invalid UTF-8, an invalid
        ``retry`` value, an ``id`` containing NUL, an unknown field name).
    """

    __slots__ = (
        "_after_cr",
        "_bom_checked",
        "_comment_from",
        "_errors",
        "_long_blocks",
        "_max_size",
        "_messages_misses",
        "_messages_skip",
        "_pending",
        "_pending_ends_lf",
        "_pending_lf",
        "_pending_size",
        "_strict",
        "_structured",
        "_structured_misses",
        "_structured_skip",
        "_undecoded",
        "error",
        "last_event_id",
        "plain",
        "retry",
    )

    def __init__(
        self,
        *,
        last_event_id: str = "",
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
        strict: bool = False,
    ) -> None:
        if max_event_size <= 0:
            raise ValueError("max_event_size must be positive")
        self._errors = "strict" if strict else "replace"
        self._undecoded = b""  # the start of a character cut by the end of a read
        self._bom_checked = False
        self._after_cr = False
        # The unfinished block: pieces of text, their size in characters (a
        # comment line included while it is read, not once it is handed out
        # and dropped), and whether they end at a line start. An empty piece
        # stands for a block that so far held only comments, so that "no
        # pending block" stays the same as "not pending".
        self._pending: list[str] = []
        self._pending_size = 0
        self._pending_ends_lf = False
        self._pending_lf = False  # whether any piece holds an LF (see _complete_line)
        # Where in _pending the comment line still in progress starts, if any.
        self._comment_from: Optional[int] = None
        self._max_size = max_event_size
        self._strict = strict
        self._long_blocks = False  # whether the last read's blocks were long
        # The backoff of _parse_messages, as of _parse_structured.
        self._messages_misses = 0
        self._messages_skip = 0
        # Whether the next read tries _parse_structured, and its backoff.
        self._structured = False
        self._structured_misses = 0
        self._structured_skip = 0
        #: The last event ID as of the newest dispatched block.
        self.last_event_id = last_event_id
        #: The newest valid ``retry:`` value in ms; the reader resets it to
        #: ``None`` once applied. It is set even by blocks that carry no data,
        #: as the specification applies ``retry`` when the field is read.
        self.retry: Optional[int] = None
        #: Whether the last :meth:`feed` returned only ``message`` events
        #: without an ``id`` (no comments): the reader then skips its
        #: per-event id bookkeeping.
        self.plain = True
        #: The error that ended parsing, once there is one. :meth:`feed`
        #: returns the items completed before it first, so the reader checks
        #: this after delivering them; any later call raises it.
        self.error: Optional[SSEParsingError] = None

    @property
    def buffered(self) -> int:
        """How many characters of an unfinished block are held (its line end aside)."""
        return max(0, self._pending_size - self._pending_ends_lf)

    def feed(self, data: bytes) -> list[Union[Event, str]]:
        """Parse the next bytes of the stream.

        :returns: the events completed by these bytes, in order, with the text
            of each comment line (as ``str``) in its place among them.
        :raises SSEParsingError: when a line or event exceeds
            ``max_event_size``, or on a violation in strict mode, and nothing
            was completed before the violation. When something was, it is
            returned, :attr:`error` is set, and the next call raises.
        """
        if self.error is not None:
            raise self.error
        if self._undecoded:
            data = self._undecoded + data
        try:
            text, used = _utf8_decode(data, self._errors, False)
        except UnicodeDecodeError as exc:
            return self._feed_valid_prefix(data, exc)
        # A character cut by the end of the read waits for the next one.
        self._undecoded = data[used:] if used < len(data) else b""
        self.plain = True
        if not text:
            return []
        if not self._bom_checked:
            self._bom_checked = True
            if text[0] == "\ufeff":
                text = text[1:]
        if self._after_cr:
            # The previous read ended with CR: an LF here completes that CRLF.
            self._after_cr = False
            if text[:1] == "\n":
                text = text[1:]
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not text:
            return []
        if (
            not self._pending
            and text[:6] == "data: "
            and text.find("\n") == len(text) - 2
            and text[-1] == "\n"
            and len(text) <= self._max_size
        ):
            # One read, one event: what a server flushing each event sends.
            data_ = text[6:-2]
            return [_new_event(Event, (data_, None, None, None, self.last_event_id, "message"))]
        out: list[Union[Event, str]] = []
        try:
            self._feed_text(text, out)
        except SSEParsingError as exc:
            self._fail(exc, out)
        return out

    def end(self) -> None:
        """The stream ended: apply the ``retry`` lines of an unfinished block.

        The block itself is discarded, as the specification says, but its
        complete ``retry:`` lines already set the reconnection time when they
        were read, and that time is what the coming reconnect uses.
        """
        text = "".join(self._pending)
        self._clear_pending()
        complete = text[: text.rfind("\n") + 1]
        if "retry" not in complete:
            return
        for line in complete.split("\n"):
            name, colon, value = line.partition(":")
            if name == "retry":
                if colon and value[:1] == " ":
                    value = value[1:]
                if value.isdigit() and value.isascii():
                    self.retry = _retry_ms(value)

    # -- internals -------------------------------------------------------------
    def _fail(self, exc: SSEParsingError, out: list[Union[Event, str]]) -> None:
        """Remember ``exc``; raise it now only if nothing completed before it."""
        self._clear_pending()
        self.error = exc
        self.plain = False
        if not out:
            raise exc

    def _feed_valid_prefix(self, data: bytes, exc: UnicodeDecodeError) -> list[Union[Event, str]]:
        """Strict mode met invalid UTF-8: parse what precedes it, then fail."""
        self._undecoded = b""
        error = SSEParsingError(f"invalid UTF-8 in the event stream: {exc.reason}")
        error.__cause__ = exc
        out: list[Union[Event, str]] = []
        prefix = data[: exc.start]
        try:
            out = self.feed(prefix) if prefix else []
        except SSEParsingError as earlier:
            error = earlier  # a violation before the invalid bytes comes first
        if self.error is not None:
            error = self.error
        self._fail(error, out)
        return out

    def _feed_text(self, text: str, out: list[Union[Event, str]]) -> None:
        """Parse one read's decoded, LF-only text (all but the one-event fast path)."""
        pending = self._pending
        if pending and self._pending_ends_lf and text[0] == "\n":
            # The blank line that ends the pending block falls on the seam.
            block = "".join(pending)
            self._clear_pending()
            self._finish_block(block, out)
            text = text[1:]
            if not text:
                return

        # A read in the middle of a long line has no LF at all: memchr says so
        # faster than a search for the two-character blank line.
        cut = text.rfind("\n\n") if "\n" in text else -1
        if cut < 0:
            self._add_pending(text, out)
            return

        start = 0
        if pending:
            # The pending part holds no blank line (one on the seam was
            # handled above), so the first block of this read completes it.
            first = text.find("\n\n")
            if self._pending_size + first > self._max_size or self._strict:
                self._lines(text, 0, out)  # finds the exact point of failure
                return
            if self._pending_lf or text.find("\n") != first or pending[0][:6] != "data: ":
                pending.append(text[:first])
                block = "".join(pending)
                self._clear_pending()
                self._finish_block(block, out)
            else:
                self._complete_line(text[:first], out)
            start = first + 2
        if start <= cut:
            if cut - start > self._max_size and self._has_long_block(text, start, cut):
                self._lines(text, start, out)
                return
            if self._structured and self._parse_structured(text, start, cut + 2, out):
                self.plain = False
            else:
                self._parse_blocks(text, start, cut, out)
        if cut + 2 < len(text):
            self._add_pending(text[cut + 2 :], out)

    def _complete_line(self, rest: str, out: list[Union[Event, str]]) -> None:
        """Dispatch the pending block, one ``data:`` line so far, ended by ``rest``.

        What :meth:`_finish_block` does for that shape, without the copy of
        the whole block that slicing ``"data: "`` off it would cost: only the
        first piece is sliced. For a big event that is one copy of it less,
        and one allocation of its size less, which is what lets the memory
        freed by the previous event be reused rather than handed back to the
        system and faulted in again (``malloc`` trims a thread's arena once
        that much is free at its top).
        """
        pending = self._pending
        pending[0] = pending[0][6:]
        pending.append(rest)
        data = "".join(pending)
        self._clear_pending()
        out.append(_new_event(Event, (data, None, None, None, self.last_event_id, "message")))

    def _add_pending(self, text: str, out: list[Union[Event, str]]) -> None:
        """Hold ``text``, which has no blank line, as (more of) the unfinished block."""
        pending = self._pending
        if pending:
            at_line_start = self._pending_ends_lf
        else:
            text = text.lstrip("\n")  # blank lines before a block dispatch nothing
            if not text:
                return
            at_line_start = True
        if (
            self._strict
            or (self._comment_from is not None and "\n" in text)
            or (":" in text and ((at_line_start and text[0] == ":") or "\n:" in text))
        ):
            # A comment line starts or ends here, or strict mode checks each
            # line as it completes: go line by line.
            self._lines(text, 0, out)
            return
        size = self._pending_size + len(text)
        # The line end held at the tail is not part of the event's size.
        if size - (text[-1] == "\n") > self._max_size:
            raise self._too_long()
        self._append(text)
        self._pending_size = size
        self._pending_ends_lf = text[-1] == "\n"

    def _append(self, text: str) -> None:
        """Add a piece to the pending block, merging small ones.

        A server may write one byte at a time; a string per read would cost
        some fifty bytes of memory per character held. Small pieces are
        therefore appended to the last one until it reaches
        :data:`MERGED_PIECE` characters, which bounds that overhead to a
        fraction of a percent at a cost of at most that many characters
        copied per read. The first piece of a comment line stays apart (see
        :meth:`_lines`).
        """
        pending = self._pending
        if (
            pending
            and len(text) < MERGED_PIECE
            and len(pending[-1]) < MERGED_PIECE
            and self._comment_from != len(pending)
        ):
            pending[-1] += text
        else:
            pending.append(text)
        if not self._pending_lf and "\n" in text:
            self._pending_lf = True

    def _lines(self, text: str, pos: int, out: list[Union[Event, str]]) -> None:
        """Parse ``text[pos:]`` line by line, with the pending block as the state.

        The general path for what the bulk paths leave alone: comment lines
        that complete while their block is unfinished (reported at once, then
        dropped), strict mode on an unfinished block (each line checked as it
        completes), and blocks over ``max_event_size`` (the error is raised at
        the line that crosses the limit, after everything before it). The
        result is the same however the bytes were cut into reads.
        """
        self.plain = False
        pending = self._pending
        limit = self._max_size
        end = len(text)
        while pos < end:
            eol = text.find("\n", pos)
            stop = end if eol < 0 else eol
            piece = text[pos:stop]
            # The block's size with this piece: a line end held at the tail
            # of the pending part counts once another line follows it.
            size = self._pending_size + len(piece)
            if piece and size > limit:
                raise self._too_long()
            if self._comment_from is not None:  # the rest of a comment line
                if eol < 0:
                    self._append(piece)
                    self._pending_size = size
                    return
                start = self._comment_from
                held = pending[start:]
                line = "".join(held) + piece
                del pending[start:]
                self._comment_from = None
                out.append(_comment_text(line))
                self._end_comment_line(self._pending_size - sum(map(len, held)))
            elif not pending or self._pending_ends_lf:  # at a line start
                if eol < 0:
                    if piece[0] == ":":
                        self._comment_from = len(pending)
                    self._append(piece)
                    self._pending_size = size
                    self._pending_ends_lf = False
                    return
                if not piece:  # a blank line: the block is complete
                    if pending:
                        block = "".join(pending)
                        self._clear_pending()
                        self._process_block(block, out)
                elif piece[0] == ":":
                    out.append(_comment_text(piece))
                    self._end_comment_line(self._pending_size)
                else:
                    if self._strict:
                        self._check_line(piece)
                    self._append(piece + "\n")
                    self._pending_size = size + 1
                    self._pending_ends_lf = True
            else:  # the rest of a line begun in an earlier read
                if eol < 0:
                    self._append(piece)
                    self._pending_size = size
                    return
                if self._strict:
                    self._check_line(self._partial_line() + piece)
                self._append(piece + "\n")
                self._pending_size = size + 1
                self._pending_ends_lf = True
            pos = stop + 1

    def _end_comment_line(self, size: int) -> None:
        """A comment line was reported: the block is ``size`` again, as before it.

        A comment line counts toward ``max_event_size`` while it is read (so
        memory stays bounded), and no more once it is handed out and dropped:
        keep-alive comments never make an event too long.
        """
        if not self._pending:
            self._pending.append("")  # see __init__
        self._pending_size = size
        self._pending_ends_lf = True

    def _partial_line(self) -> str:
        """The start of the line in progress at the end of the pending block."""
        parts: list[str] = []
        for piece in reversed(self._pending):
            eol = piece.rfind("\n")
            parts.append(piece[eol + 1 :])
            if eol >= 0:
                break
        return "".join(reversed(parts))

    def _check_line(self, line: str) -> None:
        """Strict mode: raise for a complete line the specification would ignore."""
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name in ("data", "event"):
            return
        if name == "id":
            if "\0" in value:
                raise SSEParsingError("an id field contains NUL")
        elif name == "retry":
            if not (value.isdigit() and value.isascii()):
                raise SSEParsingError(f"invalid retry value {value[:40]!r}")
        else:
            raise SSEParsingError(f"unknown field {name[:40]!r}")

    def _too_long(self) -> SSEParsingError:
        return SSEParsingError(
            f"an event or line exceeds max_event_size ({self._max_size} characters)"
        )

    def _clear_pending(self) -> None:
        self._pending.clear()  # in place: _feed_text holds a reference to this list
        self._pending_size = 0
        self._pending_ends_lf = False
        self._pending_lf = False
        self._comment_from = None

    def _finish_block(self, block: str, out: list[Union[Event, str]]) -> None:
        """Parse the block that the pending text and this read's first blank line complete."""
        if block[:6] == "data: " and "\n" not in block:
            data = block[6:]
            out.append(_new_event(Event, (data, None, None, None, self.last_event_id, "message")))
        else:
            self._process_block(block, out)
            self.plain = False

    def _has_long_block(self, text: str, start: int, cut: int) -> bool:
        limit = self._max_size
        return any(len(block.strip("\n")) > limit for block in text[start:cut].split("\n\n"))

    def _parse_blocks(self, text: str, start: int, cut: int, out: list[Union[Event, str]]) -> None:
        """Parse the whole blocks in ``text[start:cut]`` one by one.

        Each block of the single line ``data: <text>`` is built right here;
        any other goes through :meth:`_process_block`. What the blocks looked
        like picks the path for the next read (see :meth:`_parse_structured`).
        When every block has that shape, :meth:`_parse_messages` builds them
        all at once.
        """
        if self._messages_skip:
            self._messages_skip -= 1
        elif text.startswith("data: ", start) and self._parse_messages(text, start, cut, out):
            if self._structured_skip:
                self._structured_skip -= 1
            else:
                self._structured = False
            return
        append = out.append
        last_event_id = self.last_event_id
        size = cut - start
        taken = 0
        if self._long_blocks:
            mark = len(out)
            start = _take_data_lines(text, start, cut, append, last_event_id)
            taken = len(out) - mark
            blocks = _split_sparse(text, start, cut) if start <= cut else []
        else:
            blocks = text[start:cut].split("\n\n")
        self._long_blocks = size > LONG_BLOCK * (taken + len(blocks))
        simple = True
        for block in blocks:
            if block[:6] == "data: " and "\n" not in block:
                append(_new_event(Event, (block[6:], None, None, None, last_event_id, "message")))
            else:
                self._process_block(block, out)
                last_event_id = self.last_event_id
                simple = False
        if not simple:
            self.plain = False
        if self._structured_skip:
            self._structured_skip -= 1
        else:
            self._structured = not simple

    def _parse_messages(
        self, text: str, start: int, cut: int, out: list[Union[Event, str]]
    ) -> bool:
        """Build the events of ``text[start:cut]`` if its blocks are all ``data: <text>``.

        ``text[start:cut]`` starts with ``"data: "``. Split on
        ``"\n\ndata: "``, it gives the data of blocks of that shape exactly
        when no piece holds an LF (each a memchr); then the splitting, the
        checking and the building of the events all run in C, with no Python
        step per event. Otherwise nothing is added and
        the next few reads skip this path (twice as many after each miss, up
        to 64), as for :meth:`_parse_structured`.
        """
        datas = text[start + 6 : cut].split("\n\ndata: ")
        if any(map(_contains, datas, _LF)):
            self._messages_misses = min(self._messages_misses * 2 or 1, 64)
            self._messages_skip = self._messages_misses
            return False
        self._messages_misses = 0
        self._long_blocks = cut - start > LONG_BLOCK * len(datas)
        none = repeat(None)
        out.extend(
            map(
                _new_event,
                repeat(Event),
                zip(datas, none, none, none, repeat(self.last_event_id), repeat("message")),
            )
        )
        return True

    def _parse_structured(
        self, text: str, start: int, end: int, out: list[Union[Event, str]]
    ) -> bool:
        """Parse ``text[start:end]`` in one regular-expression pass, if its shape allows.

        Most servers write every block as optional ``event:`` and ``id:``
        lines, then ``data:`` lines, each with one space after the colon.
        :data:`_STRUCTURED_BLOCK` matches such blocks whole, or any other
        single character, so the region takes this path only if it is
        nothing but such blocks; then the matching, the line splitting and
        the joining of data lines all run in C. Otherwise nothing is added,
        the blocks go through :meth:`_parse_blocks`, and the next few reads
        skip this path (twice as many after each miss, up to 64).
        """
        mark = len(out)
        append = out.append
        last_event_id = self.last_event_id
        for event_line, id_line, event_line2, data, other in _STRUCTURED_BLOCK.findall(
            text, start, end
        ):
            if other:
                del out[mark:]
                self._structured = False
                self._structured_misses = min(self._structured_misses * 2 or 1, 64)
                self._structured_skip = self._structured_misses
                return False
            if "\n" in data:
                data = data.replace("\ndata: ", "\n")
            event_id = None
            if id_line:
                event_id = last_event_id = id_line[4:-1]
            if event_line2:
                event_line = event_line2
            if event_line:
                event_type = event_line[7:-1]
                append(
                    _new_event(
                        Event,
                        (data, event_type, event_id, None, last_event_id, event_type or "message"),
                    )
                )
            else:
                append(_new_event(Event, (data, None, event_id, None, last_event_id, "message")))
        self.last_event_id = last_event_id
        self._structured_misses = 0
        return True

    def _process_block(self, block: str, out: list[Union[Event, str]]) -> None:
        """Apply the field rules to one block (its lines, without blank ones)."""
        block = block.strip("\n")
        if not block:
            return
        strict = self._strict
        data: list[str] = []
        event_type: Optional[str] = None
        event_id: Optional[str] = None
        retry: Optional[int] = None
        for line in block.split("\n"):
            # The common spellings first; everything else by the general rule.
            head = line[:6]
            if head == "data: ":
                data.append(line[6:])
                continue
            if head == "event:" and line[6:7] == " ":
                event_type = line[7:]
                continue
            if head[:4] == "id: " and "\0" not in line:
                event_id = line[4:]
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                data.append(value)
            elif not name:
                out.append(value)  # a comment line: ": text"
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\0" not in value:
                    event_id = value
                elif strict:
                    raise SSEParsingError("an id field contains NUL")
            elif name == "retry":
                if value.isdigit() and value.isascii():
                    retry = self.retry = _retry_ms(value)
                elif strict:
                    raise SSEParsingError(f"invalid retry value {value[:40]!r}")
            elif strict:
                raise SSEParsingError(f"unknown field {name[:40]!r}")
        if event_id is not None:
            self.last_event_id = event_id
        if data:
            text = data[0] if len(data) == 1 else "\n".join(data)
            out.append(
                _new_event(
                    Event,
                    (text, event_type, event_id, retry, self.last_event_id,
                     event_type or "message"),
                )
            )


#: Python 3.11.5 and later have possessive repeats that match correctly (the
#: first 3.11 releases did not: python/cpython#106052, #100061); 3.9 and 3.10
#: have none. A possessive ``*+`` never gives back what it took, which saves
#: the matcher its backtracking state per data line; here nothing given back
#: could ever help (``\n\n`` cannot match where a ``\ndata:`` line starts),
#: so both spellings match the same blocks.
_POSSESSIVE = "+" if sys.version_info >= (3, 11, 5) else ""

#: One block of the usual shape (optional ``event:`` and ``id:`` lines, then
#: ``data:`` lines, one space after each colon, an id without NUL) with its
#: blank line; or, in the last group, any one character that is not where
#: such a block starts. Groups: event line, id line, event line (the last
#: ``event:`` wins), the data lines, the other character. Each optional line
#: is spelled ``(?:(line)|)`` rather than ``(line)?``: the same match (the
#: line first, else nothing), but a branch costs the matcher less than a
#: repeat of zero or one (a tenth of the parse of a multi-field stream).
_STRUCTURED_BLOCK = re.compile(
    r"(?:(event: [^\n]*\n)|)(?:(id: [^\n\0]*\n)|)(?:(event: [^\n]*\n)|)"
    r"data: ([^\n]*(?:\ndata: [^\n]*)*" + _POSSESSIVE + r")\n\n|([\s\S])"
)


def _comment_text(line: str) -> str:
    """The text of the comment line ``line`` (``": text"``): one leading space removed."""
    return line[2:] if line[1:2] == " " else line[1:]


#: Small pieces of an unfinished block are merged up to this many characters.
MERGED_PIECE = 8192

#: Retry values beyond this many ms (about 31,700 years) are held at it:
#: int() refuses very long digit strings and float() overflows on them.
_MAX_RETRY_MS = 10**15


def _retry_ms(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 16 else _MAX_RETRY_MS


#: Blocks longer than this many characters on average are split by
#: :func:`_split_sparse`; shorter ones by ``str.split``.
LONG_BLOCK = 512


def _take_data_lines(
    text: str, pos: int, cut: int, append: Callable[[Event], None], last_event_id: str
) -> int:
    """Build the events of the one-line ``data:`` blocks that start ``text[pos:cut]``.

    For long blocks of one line each (big events), each line end is found
    with memchr and the data is sliced out of the read once, with no block
    string in between. Returns where the first block of another shape
    starts (for the general path), or a position past ``cut``.
    """
    find = text.find
    startswith = text.startswith
    while pos < cut and startswith("data: ", pos):
        end = find("\n", pos, cut)
        if end < 0:
            end = cut  # the last block: its blank line is at cut
        elif text[end + 1] != "\n":
            break  # a block of several lines
        append(_new_event(Event, (text[pos + 6 : end], None, None, None, last_event_id, "message")))
        pos = end + 2
    return pos


def _split_sparse(text: str, start: int, cut: int) -> list[str]:
    """``text[start:cut].split("\\n\\n")``, faster when line ends are far apart.

    ``str.split`` cannot search for a two-character separator with memchr,
    so it costs about a nanosecond per character however few lines there
    are; here each LF is found with memchr and only LFs cost Python steps.
    """
    blocks: list[str] = []
    find = text.find
    pos = find("\n", start, cut)
    while pos >= 0:
        if pos + 1 < cut and text[pos + 1] == "\n":
            blocks.append(text[start:pos])
            start = pos + 2
            pos = find("\n", start, cut)
        else:
            pos = find("\n", pos + 1, cut)
    blocks.append(text[start:cut])
    return blocks
