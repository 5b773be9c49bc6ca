"""A slow, simple reference for the event-stream parser, for differential tests.

It follows the WHATWG HTML standard, section "Server-sent events",
subsection "Parsing an event stream" / "Interpreting an event stream",
step by step, with no attempt at speed:

1. Decode the whole byte string with UTF-8, invalid bytes becoming U+FFFD.
2. Ignore one leading U+FEFF BYTE ORDER MARK, if any (only one).
3. Read the text line by line: a line ends at CRLF, at an LF, or at a lone CR.
   The characters are scanned one at a time to find the ends.
4. For each line:

   * empty line: dispatch the event;
   * starts with ":": a comment, ignored by the specification;
   * contains ":": the field name is what precedes the first ":", the value is
     what follows it, less one leading U+0020 SPACE if there is one;
   * otherwise: the whole line is the field name, the value is "".

5. Process the field:

   * ``event``: set the event type buffer to the value;
   * ``data``: append the value and then an LF to the data buffer;
   * ``id``: if the value contains no U+0000 NULL, set the last event ID
     buffer to the value (otherwise ignore the field);
   * ``retry``: if the value consists of ASCII digits only (and at least one),
     set the reconnection time to it as a base-ten integer; else ignore it;
   * anything else: ignore the field.

6. Dispatch: set the last event ID string to the last event ID buffer; if the
   data buffer is empty, empty the data and event type buffers and stop;
   otherwise remove one trailing LF from the data buffer, create the event,
   and empty the data and event type buffers.
7. At the end of the stream, an incomplete block (no final blank line) is
   discarded without being dispatched.

One library convention sits on top of the specification, which simply ignores
comments: ssesync reports the text of each comment line (one leading space
removed) in its place among the events, as soon as the line is complete
(API.md section 4), so a keep-alive comment is seen at once. A comment line
inside a block is therefore reported before that block's event, and one in
an incomplete final block is still reported, as its line was complete.

Items are encoded as plain tuples, which cannot be confused with each other:

* an event is the 5-tuple ``(data, event, id, retry, last_event_id)`` where
  ``event`` is the ``event`` field as sent (``None`` if the block had none),
  ``id`` the block's accepted ``id`` field (``None`` if none), ``retry`` the
  block's last valid ``retry`` value (``None`` if none), and
  ``last_event_id`` the last event ID string after the block;
* a comment is the 2-tuple ``("comment", text)``.
"""

from __future__ import annotations

from typing import Optional, Union

__all__ = ["ReferenceStream", "reference_parse"]

Item = Union[tuple[str, Optional[str], Optional[str], Optional[int], str], tuple[str, str]]

CR = "\r"
LF = "\n"
BOM = "\ufeff"


def split_lines(text: str) -> tuple[list[str], str]:
    """Split ``text`` into complete lines and the unterminated rest.

    A line ends at CRLF, at LF, or at a CR that is not followed by LF. A CR
    that is the very last character ends its line too (a LF after it could
    only make the same line end a CRLF).
    """
    lines: list[str] = []
    current = ""
    i = 0
    while i < len(text):
        char = text[i]
        if char == CR:
            lines.append(current)
            current = ""
            if i + 1 < len(text) and text[i + 1] == LF:
                i += 1  # CRLF is one line end
        elif char == LF:
            lines.append(current)
            current = ""
        else:
            current += char
        i += 1
    return lines, current


def is_ascii_digits(value: str) -> bool:
    """True if ``value`` is one or more of the characters 0-9."""
    return value != "" and all("0" <= char <= "9" for char in value)


def base_ten(value: str) -> int:
    """The integer written in ASCII digits ``value`` (no length limit)."""
    number = 0
    for char in value:
        number = number * 10 + (ord(char) - ord("0"))
    return number


class ReferenceStream:
    """The state of one event stream, interpreted exactly as the steps say."""

    def __init__(self, last_event_id: str = "") -> None:
        # The state the specification names.
        self.data_buffer = ""
        self.event_type_buffer: Optional[str] = None  # None: no event field yet
        self.last_event_id_buffer = last_event_id
        self.last_event_id = last_event_id  # the last event ID string
        self.reconnection_time: Optional[int] = None
        # What ssesync additionally reports for the current block.
        self.block_id: Optional[str] = None
        self.block_retry: Optional[int] = None
        # What has been reported so far.
        self.items: list[Item] = []

    def parse(self, data: bytes) -> None:
        """Interpret a whole stream (steps 1-7)."""
        text = data.decode("utf-8", errors="replace")
        if text.startswith(BOM):
            text = text[1:]
        lines, _incomplete_last_line = split_lines(text)
        for line in lines:
            self.process_line(line)
        # Step 7: whatever the buffers hold now is an incomplete block; it is
        # discarded, which means simply not dispatching it.

    def process_line(self, line: str) -> None:
        """Step 4."""
        if line == "":
            self.dispatch()
        elif line.startswith(":"):
            text = line[1:]
            if text.startswith(" "):
                text = text[1:]
            self.items.append(("comment", text))
        elif ":" in line:
            index = line.index(":")
            name = line[:index]
            value = line[index + 1 :]
            if value.startswith(" "):
                value = value[1:]
            self.process_field(name, value)
        else:
            self.process_field(line, "")

    def process_field(self, name: str, value: str) -> None:
        """Step 5."""
        if name == "event":
            self.event_type_buffer = value
        elif name == "data":
            self.data_buffer += value + LF
        elif name == "id":
            if "\0" in value:
                return  # the field is ignored
            self.last_event_id_buffer = value
            self.block_id = value
        elif name == "retry":
            if not is_ascii_digits(value):
                return  # the field is ignored
            self.reconnection_time = base_ten(value)
            self.block_retry = self.reconnection_time
        # Any other field name is ignored.

    def dispatch(self) -> None:
        """Step 6."""
        self.last_event_id = self.last_event_id_buffer
        if self.data_buffer != "":
            data = self.data_buffer
            if data.endswith(LF):
                data = data[:-1]
            self.items.append(
                (data, self.event_type_buffer, self.block_id, self.block_retry, self.last_event_id)
            )
        self.data_buffer = ""
        self.event_type_buffer = None
        self.block_id = None
        self.block_retry = None


def reference_parse(data: bytes, last_event_id: str = "") -> tuple[list[Item], str]:
    """Interpret the whole stream ``data``.

    :returns: the reported items in order (see the module docstring for their
        encoding) and the last event ID string at the end of the stream.
    """
    stream = ReferenceStream(last_event_id)
    stream.parse(data)
    return stream.items, stream.last_event_id
