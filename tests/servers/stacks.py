"""Start and stop the real server stacks that every scenario runs against.

Each stack is started once per session, on a free port of ``127.0.0.1``, and
serves the same routes (see ``apps/common.py``). Stacks in a process of their
own print ``PORT <n>`` once they listen; the port is read from their output
file and the stack counts as started when ``/_ready`` answers, both polled
with a deadline. They also exit when their standard input closes, so a test
run that is killed leaves no server behind. A stack whose packages or
program are missing is skipped with the reason; stopping a stack waits for
it, killing it if it must.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import urlencode

import pytest
import urllib3

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
#: How long a stack may take to start.
START_WITHIN = 30.0

STACKS = ["starlette", "flask", "http10", "node"]


class Stack:
    """A running server stack: its URLs and the control routes the tests use."""

    def __init__(self, name: str, base: str) -> None:
        self.name = name
        self.base = base
        self._http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=10), retries=False
        )

    def url(self, path: str, **query: Any) -> str:
        return self.base + path + ("?" + urlencode(query) if query else "")

    def get(self, path: str, **query: Any) -> urllib3.BaseHTTPResponse:
        response = self._http.request("GET", self.url(path, **query))
        assert response.status == 200, (path, response.status, response.data[:200])
        return response

    def log(self, key: str) -> list[dict[str, Optional[str]]]:
        """The stream requests the server saw with ``k=key``, in order."""
        entries: list[dict[str, Optional[str]]] = json.loads(self.get("/_log", k=key).data)
        return entries

    def ack(self, key: str, n: int) -> None:
        """Tell the server that the client has seen item ``n`` of stream ``key``."""
        self.get("/_ack", k=key, n=n)

    def close(self) -> None:
        self._http.clear()

    def __repr__(self) -> str:
        return f"<Stack {self.name} {self.base}>"


def wait_ready(stack: Stack, alive: Callable[[], None] = lambda: None) -> None:
    """Poll ``/_ready`` until it answers; ``alive()`` raises if the server died."""
    deadline = time.monotonic() + START_WITHIN
    probe = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=2), retries=False)
    try:
        while True:
            alive()
            try:
                if probe.request("GET", stack.url("/_ready")).status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{stack.name} did not answer /_ready within {START_WITHIN} s")
            time.sleep(0.05)
    finally:
        probe.clear()


@contextmanager
def subprocess_stack(name: str, command: list[str]) -> Iterator[Stack]:
    """Run ``command`` (which prints ``PORT <n>``), yield its stack, then stop it.

    The child writes its output to a file that this process only ever reads
    through fresh opens of the path: a descriptor shared with the child would
    share its file offset too, and a seek here would move where the child
    writes (it once overwrote the ``P`` of ``PORT``).
    """
    with tempfile.TemporaryDirectory(prefix=f"ssesync-{name}-") as folder:
        output = Path(folder) / "output.log"
        with output.open("ab") as sink:
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                stdin=subprocess.PIPE,  # the stack exits when it closes: no orphan if we die
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        try:

            def alive() -> None:
                if process.poll() is not None:
                    pytest.fail(f"{name} exited with {process.returncode}:\n{_text(output)}")

            port = _read_port(name, output, alive)
            stack = Stack(name, f"http://127.0.0.1:{port}")
            wait_ready(stack, alive)
            try:
                yield stack
            finally:
                stack.close()
        finally:
            assert process.stdin is not None
            process.stdin.close()
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _text(output: Path) -> str:
    return output.read_bytes().decode("utf-8", "replace")[-4000:]


def _read_port(name: str, output: Path, alive: Callable[[], None]) -> int:
    deadline = time.monotonic() + START_WITHIN
    while True:
        found = re.search(rb"^PORT (\d+)$", output.read_bytes(), re.MULTILINE)
        if found:
            return int(found.group(1))
        alive()
        if time.monotonic() > deadline:
            pytest.fail(f"{name} printed no port within {START_WITHIN} s:\n{_text(output)}")
        time.sleep(0.02)


@contextmanager
def thread_stack(name: str, server: Any) -> Iterator[Stack]:
    """Serve ``server`` (a socketserver) in a thread, yield its stack, then stop it."""
    thread = threading.Thread(
        target=server.serve_forever, name=f"{name}-server", daemon=True
    )
    thread.start()
    stack = Stack(name, f"http://127.0.0.1:{server.server_address[1]}")
    try:
        wait_ready(stack)
        yield stack
    finally:
        stack.close()
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextmanager
def start_stack(name: str) -> Iterator[Stack]:
    if name == "starlette":
        pytest.importorskip("sse_starlette", reason="needs the servers extra (sse-starlette)")
        pytest.importorskip("uvicorn", reason="needs the servers extra (uvicorn)")
        command = [sys.executable, "-m", "tests.servers.apps.starlette_app"]
        with subprocess_stack(name, command) as stack:
            yield stack
    elif name == "flask":
        pytest.importorskip("flask", reason="needs the servers extra (flask)")
        from werkzeug.serving import make_server

        from .apps.common import Board
        from .apps.flask_app import create_app

        server = make_server("127.0.0.1", 0, create_app(Board()), threaded=True)
        with thread_stack(name, server) as stack:
            yield stack
    elif name == "http10":
        from .apps.http10_app import Http10Server

        with thread_stack(name, Http10Server()) as stack:
            yield stack
    elif name == "node":
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not on PATH: the Node http stack cannot run")
        with subprocess_stack(name, [node, str(APPS / "node_server.js")]) as stack:
            yield stack
    else:  # pragma: no cover - a typo in a parametrisation
        raise ValueError(f"unknown stack {name!r}")
