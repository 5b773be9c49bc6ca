"""The scenario's routes on :mod:`http.server`: HTTP/1.0, bodies delimited by the close.

The handler writes no ``Content-Length`` and no chunked framing; the body
ends when the server closes the connection, as the oldest SSE servers (and
many hand-written ones) do. The socket file is unbuffered, so every write
is its own ``send``: events are written a line at a time to cut them into
many small reads. On such a body a dropped connection and a clean end look
the same on the wire; the ``drop`` of a sequence still cuts an event in the
middle, which the client must discard.
"""

from __future__ import annotations

import json
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

from .common import CUT_EVENT, GAP, PLAIN, Board, format_event, missed_ack, next_batch

__all__ = ["Http10Server"]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: Http10Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read the board, not the access log."""

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        self.query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        self.board = self.server.board
        route = {
            "/_ready": self._ready,
            "/_log": self._log,
            "/_ack": self._ack,
            "/plain": self._plain,
            "/resume": lambda: self._sequence("/resume"),
            "/end": lambda: self._sequence("/end"),
            "/gap": self._gap,
            "/gzip": self._gzip,
        }.get(parts.path)
        if route is None:
            self.send_error(404)
            return
        route()

    # -- small responses -------------------------------------------------------
    def _respond(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _ready(self) -> None:
        self._respond(200, b"ok")

    def _log(self) -> None:
        body = json.dumps(self.board.log(self.query["k"])).encode()
        self._respond(200, body, "application/json")

    def _ack(self) -> None:
        self.board.ack(self.query["k"], int(self.query["n"]))
        self._respond(200, b"ok")

    # -- streams ---------------------------------------------------------------
    def _start_stream(self, content_encoding: Optional[str] = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        if content_encoding:
            self.send_header("Content-Encoding", content_encoding)
        self.end_headers()

    def _write_event(self, event: dict[str, str]) -> None:
        for line in format_event(event).splitlines(keepends=True):
            self.wfile.write(line)

    def _record(self, path: str, content_encoding: Optional[str] = None) -> None:
        last_event_id = self.headers.get("Last-Event-ID")
        self.board.record(self.query.get("k"), path, last_event_id, content_encoding)

    def _plain(self) -> None:
        self._start_stream()
        for event in PLAIN:
            self._write_event(event)

    def _sequence(self, path: str) -> None:
        self._record(path)
        batch, how = next_batch(path, self.headers.get("Last-Event-ID"))
        if not batch:
            self._respond(204)
            return
        self._start_stream()
        for event in batch:
            self._write_event(event)
        if how == "drop":
            self.wfile.write(CUT_EVENT.encode("utf-8"))

    def _gap(self) -> None:
        key, wait = self.query["k"], float(self.query["wait"])
        self._record("/gap")
        self._start_stream()
        self._write_event(GAP["before"])
        for n, ping in enumerate(GAP["pings"], 1):
            self.wfile.write(f": {ping}\n".encode())
            if not self.board.wait_ack(key, n, wait):
                self._write_event(missed_ack("ping", n, wait))
                return
        self._write_event(GAP["after"])

    def _gzip(self) -> None:
        key, wait = self.query["k"], float(self.query["wait"])
        compress = "gzip" in self.headers.get("Accept-Encoding", "")
        self._record("/gzip", "gzip" if compress else None)
        self._start_stream("gzip" if compress else None)
        compressor = zlib.compressobj(wbits=31)
        encode: Callable[[bytes], bytes] = (
            (lambda data: compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))
            if compress
            else (lambda data: data)
        )
        for n, event in enumerate(PLAIN, 1):
            self.wfile.write(encode(format_event(event)))
            if not self.board.wait_ack(key, n, wait):
                self.wfile.write(encode(format_event(missed_ack("event", n, wait))))
                break
        if compress:
            self.wfile.write(compressor.flush())


class Http10Server(ThreadingHTTPServer):
    """A threading HTTP/1.0 server on ``127.0.0.1`` with a free port, serving the scenario."""

    daemon_threads = True

    def __init__(self) -> None:
        self.board = Board()
        super().__init__(("127.0.0.1", 0), _Handler)
