"""Making text that a server controls inert before anyone prints it.

A status line, a comment, an id or the reason in an error message comes from
the server. Printed raw, an ESC sequence in it can retitle a terminal, move
the cursor or repaint the screen, and a line break can forge a log line. So
the HTTP edge (for the messages it builds from backend text) and the command
line (for everything it prints) show control characters as escapes instead.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL", "visible"]

#: What a terminal or a line-based reader acts on instead of showing: the C0
#: controls but tab, DEL, the C1 controls (U+0080-U+009F, which terminals may
#: read as CSI and the like even when UTF-8 encoded), the Unicode line and
#: paragraph separators (``str.splitlines`` ends a line at those), and the
#: bidirectional controls (marks, embeddings, overrides and isolates), with
#: which a server could make a terminal show text in another order.
CONTROL = re.compile(
    "[\x00-\x08\x0a-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]"
)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\u2028``); tab is kept."""
    return CONTROL.sub(_escape, text)
