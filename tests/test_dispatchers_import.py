"""``ssesync.dispatchers`` imports no GUI toolkit until a dispatcher is made.

A server or a script that imports ssesync must not pay for (or need) Tk or
Qt. The GUI behaviour itself is tested in ``tests/gui``, which needs Xvfb.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def test_importing_the_dispatchers_loads_no_toolkit() -> None:
    out = run(
        """
        import sys
        import ssesync.dispatchers
        loaded = [m for m in sys.modules if m.split(".")[0] in ("tkinter", "PySide6", "PyQt6")]
        print(loaded)
        """
    )
    assert out.strip() == "[]"


def test_the_dispatchers_import_without_any_toolkit_and_say_what_is_missing() -> None:
    out = run(
        """
        import sys
        for name in ("tkinter", "PySide6", "PyQt6"):
            sys.modules[name] = None  # as if not installed
        from ssesync import dispatchers
        for make in (dispatchers.qt, lambda: dispatchers.tk(None)):
            try:
                make()
            except ImportError as exc:
                print("ImportError:", exc)
        """
    )
    lines = out.splitlines()
    assert lines[0] == "ImportError: ssesync.dispatchers.qt() needs PySide6 or PyQt6"
    assert lines[1].startswith("ImportError:")
    assert "tkinter" in lines[1]
