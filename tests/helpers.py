"""Helpers shared by the behaviour tests: short-timeout sources, thread-safe waiting,
and running the command line in a child process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional, Union

from ssesync import Event, EventSource
from ssesync.testing import StreamConnection

#: Seconds any wait in a test may take; a deadlock fails the test instead of hanging CI.
WAIT = 10.0
#: The checkout (or unpacked sdist) the tests run from.
ROOT = Path(__file__).resolve().parent.parent
#: The command line, run from this checkout.
CLI = [sys.executable, "-m", "ssesync"]
#: The environment variables the command reads its proxy from.
PROXY_VARIABLES = (
    "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "no_proxy", "NO_PROXY",
    "all_proxy", "ALL_PROXY", "REQUEST_METHOD",
)


def fast(url: str, **options: Any) -> EventSource:
    """A source with no reconnect delay and short timeouts, so a broken test fails fast."""
    options.setdefault("retry_delay", 0)
    options.setdefault("timeout", (5, 10))
    return EventSource(url, **options)


def take(source: EventSource, n: int) -> list[Event]:
    """The first ``n`` events of ``source`` (iterating it)."""
    out: list[Event] = []
    for event in source:
        out.append(event)
        if len(out) == n:
            break
    return out


def reader_threads() -> list[threading.Thread]:
    """The threads of started sources: each source's own (a hub's are not among them)."""
    return [t for t in threading.enumerate() if t.name.startswith("ssesync-http")]


def ssesync_threads() -> list[threading.Thread]:
    """Every thread of ssesync's: sources', and hubs' with their connect workers'.

    The loopback server's threads (``ssesync-testserver-*``) are not among them.
    """
    return [
        t
        for t in threading.enumerate()
        if t.name.startswith("ssesync-") and not t.name.startswith("ssesync-testserver")
    ]


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir(f"/proc/{os.getpid()}/fd"))


def settle(condition: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Wait for ``condition`` (e.g. the server closing its side lazily)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def endless_stream(conn: StreamConnection) -> None:
    """A route handler sending numbered events every millisecond until the client leaves."""
    conn.send_headers()
    n = 0
    while not conn.closed_by_peer():
        conn.event(str(n))
        n += 1
        conn.pause(0.001)


@contextmanager
def watchdog(source: EventSource, seconds: float) -> Iterator[None]:
    """Close ``source`` after ``seconds``, so a stuck iteration ends and its test fails."""
    timer = threading.Timer(seconds, source.close)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


class Collector:
    """Records calls (from any thread) and lets a test wait for a count of them."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self._cond = threading.Condition()

    def __call__(self, *args: Any) -> None:
        with self._cond:
            self.items.append(args[0] if len(args) == 1 else args)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[Any]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


def closed_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def cli_env(extra: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The child's environment: this checkout first on the path, UTF-8 output.

    The machine's proxy settings are left out (the command honours them, and
    the tests talk to loopback servers); ``extra`` adds variables back.
    """
    env = {name: value for name, value in os.environ.items() if name not in PROXY_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra or {})
    return env


#: The bound on a command-line run: a fresh interpreter on a loaded 2-core
#: machine can take many seconds just to start. Bounded, not timed.
CLI_WAIT = 60.0


def run_cli(
    *args: str, timeout: float = CLI_WAIT, env: Optional[Mapping[str, str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ssesync ARGS`` to its end; ``env`` adds environment variables."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        cwd=ROOT,
        env=cli_env(env),
        stdin=subprocess.DEVNULL,
    )


class RawServer:
    """A loopback server that answers every connection with exact bytes, then closes.

    For response heads that :class:`~ssesync.testing.SSEServer` will not write:
    garbage status lines, oversized headers, conflicting lengths.
    """

    def __init__(
        self, payload: Union[bytes, list[bytes]], pause: float = 0.0, hold: float = 0.0
    ) -> None:
        #: The pieces to write, each with its own ``sendall`` (``pause`` apart).
        self.pieces = [payload] if isinstance(payload, bytes) else payload
        self.pause = pause
        #: How long the connection stays open after the last piece.
        self.hold = hold
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="raw-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/s"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(WAIT)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            self.connections += 1
            with sock:
                sock.settimeout(WAIT)
                try:
                    head = b""
                    while b"\r\n\r\n" not in head:
                        piece = sock.recv(65536)
                        if not piece:
                            break
                        head += piece
                    for number, piece in enumerate(self.pieces):
                        if number and self.pause:
                            self._stop.wait(self.pause)
                        sock.sendall(piece)
                    if self.hold:
                        self._stop.wait(self.hold)
                except OSError:
                    pass


def events_then_stall(*data: str) -> Callable[[StreamConnection], None]:
    """A route handler sending one event per item of ``data``, then silence."""

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        for item in data:
            conn.event(item)
        conn.stall()

    return handler


class ScriptedServer:
    """A loopback server running ``answer(conn, number)`` for each connection, in its own thread.

    ``number`` counts connections from 1. For tests that script a
    conversation over raw sockets: which requests arrive on which
    connection, answers held back, silence. Leaving the block shuts every
    connection down (a script blocked in ``recv`` returns) and joins.
    """

    def __init__(self, answer: Callable[[socket.socket, int], None]) -> None:
        self._answer = answer
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._serve, name="scripted", daemon=True)]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def __enter__(self) -> ScriptedServer:
        self._threads[0].start()
        return self

    def _serve(self) -> None:
        number = 0
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except socket.timeout:
                continue
            number += 1
            conn.settimeout(WAIT)
            self._held.append(conn)
            thread = threading.Thread(target=self._run, args=(conn, number), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket, number: int) -> None:
        try:
            self._answer(conn, number)
        except OSError:
            pass

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for conn in self._held:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            if thread.ident is not None:
                thread.join(WAIT)
        for conn in self._held:
            conn.close()
        self._listener.close()


def request_heads(conn: socket.socket) -> Iterator[bytes]:
    """The request heads arriving on ``conn``, without their blank line (GETs: no bodies)."""
    buffer = b""
    while True:
        while b"\r\n\r\n" not in buffer:
            data = conn.recv(65536)
            if not data:
                return
            buffer += data
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        yield head


def request_lines(conn: socket.socket) -> Iterator[bytes]:
    """The request lines arriving on ``conn``, one per request head."""
    for head in request_heads(conn):
        yield head.split(b"\r\n", 1)[0]
