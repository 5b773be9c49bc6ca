"""Fail when a code block of the built HTML is wider than the theme's column.

Furo's content column is 40em of 16 px type; code is set at 81.25 % in a
monospace font about 0.6 em wide, less the block's padding: some 78
characters fit without a horizontal scroll bar. Run it after the HTML build::

    python docs/tools/code_width.py docs/_build/html [LIMIT]
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

PRE = re.compile(r"<pre[^>]*>(.*?)</pre>", re.S)
TAG = re.compile(r"<[^>]+>")


def widest(root: Path) -> list[tuple[int, str, str]]:
    """Every code line of every page, widest first: (width, page, line)."""
    lines = []
    for page in sorted(root.rglob("*.html")):
        if "_modules" in page.parts:  # the highlighted source of the modules
            continue
        for block in PRE.findall(page.read_text(encoding="utf-8")):
            for line in html.unescape(TAG.sub("", block)).splitlines():
                lines.append((len(line), str(page.relative_to(root)), line))
    return sorted(lines, reverse=True)


def main() -> int:
    root = Path(sys.argv[1])
    limit = int(sys.argv[2]) if len(sys.argv) > 2 else 78
    lines = widest(root)
    for width, page, line in lines[:5]:
        print(f"{width:4d}  {page}: {line}")
    too_wide = [entry for entry in lines if entry[0] > limit]
    if too_wide:
        print(f"{len(too_wide)} code lines are wider than {limit} characters")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
