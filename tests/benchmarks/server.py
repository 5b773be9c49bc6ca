"""The benchmark's loopback SSE server, run in its own process.

``python -m tests.benchmarks.server [--quick] [--workloads a,b]`` generates
every body it may be asked for once, up front, binds an ephemeral loopback
port, prints one JSON line (the port and, per workload, the expected event
count, CRC and stream size) and serves until its stdin closes.

Routes: ``GET /<workload>/<body>``, body ``chunked`` or ``close``.

So that the server is never what is measured, a throughput body is a list of
ready-made blocks of about 1 MiB (the 1 MiB events are sent straight from one
shared buffer), each written with one ``sendall``: a connection costs the
server a few dozen system calls and no Python work per event. Timed workloads
(``latency``, ``concurrent``) write one pre-framed event per ``sendall`` with
``TCP_NODELAY`` set. All the ``concurrent`` streams share one scheduler thread
(a heap of due times) instead of a sleeping thread each.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterable
from typing import Optional, Union

from .workloads import (
    WORKLOADS,
    Tally,
    concurrent_data,
    latency_data,
    raise_file_limit,
    throughput_event,
)

Buffer = Union[bytes, memoryview]

#: Parts at least this large are sent from their own buffer, never copied.
_BIG_PART = 64 * 1024
#: Small parts are joined into blocks of about this size.
_BLOCK = 1 << 20

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
HEADERS = {
    "chunked": _HEAD + b"Transfer-Encoding: chunked\r\n\r\n",
    "close": _HEAD + b"Connection: close\r\n\r\n",
}
_LAST_CHUNK = b"0\r\n\r\n"
_NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def frame(body: str, block: bytes) -> bytes:
    """One event block as written on a ``body`` stream (one chunk if chunked)."""
    if body == "chunked":
        return b"%x\r\n%s\r\n" % (len(block), block)
    return block


def _coalesce(parts: Iterable[Buffer]) -> list[Buffer]:
    """Join small parts into ~1 MiB blocks; keep big (shared) parts as they are."""
    blocks: list[Buffer] = []
    pending: list[Buffer] = []
    size = 0
    for part in parts:
        if len(part) >= _BIG_PART:
            if pending:
                blocks.append(b"".join(pending))
                pending, size = [], 0
            blocks.append(memoryview(part))
            continue
        pending.append(part)
        size += len(part)
        if size >= _BLOCK:
            blocks.append(b"".join(pending))
            pending, size = [], 0
    if pending:
        blocks.append(b"".join(pending))
    return blocks


def build_throughput(name: str, count: int) -> tuple[dict[str, list[Buffer]], dict[str, int]]:
    """Both bodies of a throughput workload, and its expected tally."""
    tally = Tally()
    close_parts: list[bytes] = []
    chunked_parts: list[bytes] = []
    stream_bytes = 0
    for i in range(count):
        wire, check = throughput_event(name, i)
        tally.fold_parts(check)
        size = sum(map(len, wire))
        stream_bytes += size
        close_parts.extend(wire)
        chunked_parts.append(b"%x\r\n" % size)
        chunked_parts.extend(wire)
        chunked_parts.append(b"\r\n")
    chunked_parts.append(_LAST_CHUNK)
    bodies = {"close": _coalesce(close_parts), "chunked": _coalesce(chunked_parts)}
    expected = {"count": tally.count, "crc": tally.crc, "stream_bytes": stream_bytes}
    return bodies, expected


class _Ticker:
    """Sends the ``concurrent`` streams: one thread, a heap of due times."""

    def __init__(self, count: int, interval: float) -> None:
        self.count = count
        self.interval = interval
        self._heap: list[tuple[float, int, socket.socket, str, int]] = []
        self._seq = 0
        self._cond = threading.Condition()
        self._frames = {
            body: [frame(body, concurrent_data(i)) for i in range(count)]
            for body in ("chunked", "close")
        }
        threading.Thread(target=self._run, name="ticker", daemon=True).start()

    def add(self, conn: socket.socket, body: str) -> None:
        with self._cond:
            self._seq += 1
            heapq.heappush(self._heap, (time.monotonic(), self._seq, conn, body, 0))
            self._cond.notify()

    def _run(self) -> None:
        frames = self._frames
        while True:
            with self._cond:
                while not self._heap:
                    self._cond.wait()
                due = self._heap[0][0]
                delay = due - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                _, seq, conn, body, index = heapq.heappop(self._heap)
            try:
                conn.sendall(frames[body][index])
                index += 1
                if index < self.count:
                    with self._cond:
                        heapq.heappush(self._heap, (due + self.interval, seq, conn, body, index))
                    continue
                if body == "chunked":
                    conn.sendall(_LAST_CHUNK)
            except OSError:
                pass
            _finish(conn)


def _finish(conn: socket.socket) -> None:
    """End the response: FIN after everything queued has been sent."""
    try:
        conn.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    conn.close()


class Server:
    def __init__(self, names: list[str], quick: bool) -> None:
        self.bodies: dict[tuple[str, str], list[Buffer]] = {}
        self.expected: dict[str, dict[str, int]] = {}
        self.latency: Optional[tuple[int, float]] = None
        self.tickers: dict[str, _Ticker] = {}
        #: Why a workload cannot be served (the file limit), by name.
        self.unavailable: dict[str, str] = {}
        for name in names:
            workload = WORKLOADS[name]
            count, _, _ = workload.scaled(quick)
            if workload.kind == "throughput":
                bodies, expected = build_throughput(name, count)
                for body, blocks in bodies.items():
                    self.bodies[(name, body)] = blocks
                self.expected[name] = expected
            elif workload.kind == "latency":
                self.latency = (count, workload.interval)
            else:
                _, sources, _ = workload.scaled(quick)
                enough, soft, hard = raise_file_limit(sources)
                if not enough:
                    self.unavailable[name] = (
                        f"the server may open {soft} files (hard limit {hard}), "
                        f"{sources} streams need more"
                    )
                self.tickers[name] = _Ticker(count, workload.interval)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port: int = self.sock.getsockname()[1]

    def serve_forever(self) -> None:
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            request = b""
            while b"\r\n\r\n" not in request:
                data = conn.recv(65536)
                if not data or len(request) > 65536:
                    conn.close()
                    return
                request += data
            target = request.split(b" ", 2)[1].decode("latin-1")
            name, _, body = target.strip("/").partition("/")
            body = body.partition("?")[0]
            if body not in HEADERS:
                conn.sendall(_NOT_FOUND)
            elif (name, body) in self.bodies:
                conn.sendall(HEADERS[body])
                for block in self.bodies[(name, body)]:
                    conn.sendall(block)
            elif name == "latency" and self.latency is not None:
                conn.sendall(HEADERS[body])
                self._send_latency(conn, body, *self.latency)
            elif name in self.tickers:
                conn.sendall(HEADERS[body])
                self.tickers[name].add(conn, body)
                return  # the ticker ends the response
            else:
                conn.sendall(_NOT_FOUND)
        except OSError:
            pass
        _finish(conn)

    @staticmethod
    def _send_latency(conn: socket.socket, body: str, count: int, interval: float) -> None:
        # Events follow a fixed schedule from the first one (no drift); each
        # carries the CLOCK_MONOTONIC stamp taken just before its sendall.
        start = time.monotonic()
        for seq in range(count):
            delay = start + seq * interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            conn.sendall(frame(body, latency_data(seq, time.monotonic_ns())))
        if body == "chunked":
            conn.sendall(_LAST_CHUNK)


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.server")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    server = Server(args.workloads.split(","), args.quick)
    info = {
        "port": server.port,
        "pid": os.getpid(),
        "expected": server.expected,
        "unavailable": server.unavailable,
        "setup_s": round(time.perf_counter() - started, 3),
    }
    print(json.dumps(info), flush=True)

    def watch_stdin() -> None:
        # The parent closes our stdin (or dies): stop at once.
        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main()
