"""Fixtures of the GUI tier: a display of its own for Tk, an offscreen Qt application.

This tier is left out of the default run (``--ignore=tests/gui`` in
``pyproject.toml``); ``python -m pytest tests/gui`` runs it. Tk needs an X
display, so the session starts its own ``Xvfb`` — which picks a free display
number itself (``-displayfd``), so parallel runs never collide — and points
``DISPLAY`` at it. Qt runs with ``QT_QPA_PLATFORM=offscreen`` and needs no
display. A toolkit or ``Xvfb`` that is not installed skips its tests, with
the reason in the summary.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gui.loader import import_or_skip

#: Seconds Xvfb may take to start.
XVFB_START = 10.0


@pytest.fixture(scope="session")
def display() -> Iterator[str]:
    """An X display of this run's own (Xvfb), as ``DISPLAY`` while the tests run."""
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian: apt-get install xvfb); Tk needs a display")
    read_end, write_end = os.pipe()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [xvfb, "-displayfd", str(write_end), "-nolisten", "tcp", "-screen", "0", "800x600x24"],
            pass_fds=(write_end,),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        os.close(write_end)
        try:
            number = _read_display_number(read_end)
            if number is None:
                log.seek(0)
                pytest.fail(f"Xvfb did not start: {log.read().decode(errors='replace')[-2000:]}")
            saved = os.environ.get("DISPLAY")
            os.environ["DISPLAY"] = f":{number}"
            try:
                yield os.environ["DISPLAY"]
            finally:
                if saved is None:
                    del os.environ["DISPLAY"]
                else:
                    os.environ["DISPLAY"] = saved
        finally:
            os.close(read_end)
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _read_display_number(fd: int) -> int | None:
    """The display number Xvfb writes to ``-displayfd`` once it accepts clients."""
    text = b""
    while not text.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], XVFB_START)
        chunk = os.read(fd, 64) if ready else b""
        if not chunk:
            return None
        text += chunk
    return int(text)


@pytest.fixture(scope="session")
def qt_app() -> Any:
    """The process's ``QApplication`` (PySide6, offscreen), made once for the session."""
    os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display needed, whatever DISPLAY says
    widgets = import_or_skip("PySide6.QtWidgets", "pip install -e '.[gui]'")
    return widgets.QApplication.instance() or widgets.QApplication([])
