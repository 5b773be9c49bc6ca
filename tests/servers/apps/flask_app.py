"""The scenario's routes as a Flask app, served by werkzeug's threaded server.

Each stream is a generator returned as a ``text/event-stream`` response:
werkzeug sends every ``yield`` as one chunk of a chunked body and ends the
body with the zero-size chunk when the generator returns. A generator that
raises makes werkzeug close the connection without that last chunk: the
``drop`` of a sequence.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Optional

from flask import Flask, Response, jsonify, request

from .common import CUT_EVENT, GAP, PLAIN, Board, format_event, missed_ack, next_batch

__all__ = ["DropStream", "create_app"]


class DropStream(Exception):
    """Raised by a stream generator to drop its connection on purpose."""


def _stream(body: Iterator[bytes], headers: Optional[dict[str, str]] = None) -> Response:
    return Response(
        body, mimetype="text/event-stream", headers={"Cache-Control": "no-cache", **(headers or {})}
    )


def create_app(board: Board) -> Flask:
    app = Flask(__name__)

    @app.get("/_ready")
    def ready() -> str:
        return "ok"

    @app.get("/_log")
    def log() -> Response:
        return jsonify(board.log(request.args["k"]))

    @app.get("/_ack")
    def ack() -> str:
        board.ack(request.args["k"], int(request.args["n"]))
        return "ok"

    @app.get("/plain")
    def plain() -> Response:
        return _stream(format_event(event) for event in PLAIN)

    def sequence(path: str) -> Response:
        last_event_id = request.headers.get("Last-Event-ID")
        board.record(request.args.get("k"), path, last_event_id)
        batch, how = next_batch(path, last_event_id)
        if not batch:
            return Response(status=204)

        def body() -> Iterator[bytes]:
            for event in batch:
                yield format_event(event)
            if how == "drop":
                yield CUT_EVENT.encode("utf-8")
                raise DropStream("the scenario drops this connection")

        return _stream(body())

    app.add_url_rule("/resume", "resume", lambda: sequence("/resume"))
    app.add_url_rule("/end", "end", lambda: sequence("/end"))

    @app.get("/gap")
    def gap() -> Response:
        key = request.args["k"]
        wait = float(request.args["wait"])
        board.record(key, "/gap", request.headers.get("Last-Event-ID"))

        def body() -> Iterator[bytes]:
            yield format_event(GAP["before"])
            for n, ping in enumerate(GAP["pings"], 1):
                yield f": {ping}\n".encode()
                if not board.wait_ack(key, n, wait):
                    yield format_event(missed_ack("ping", n, wait))
                    return
            yield format_event(GAP["after"])

        return _stream(body())

    @app.get("/gzip")
    def gzip() -> Response:
        key = request.args["k"]
        wait = float(request.args["wait"])
        compress = "gzip" in request.headers.get("Accept-Encoding", "")
        encoding = "gzip" if compress else None
        board.record(key, "/gzip", request.headers.get("Last-Event-ID"), encoding)
        compressor = zlib.compressobj(wbits=31)

        def encode(data: bytes) -> bytes:
            if not compress:
                return data
            return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)

        def body() -> Iterator[bytes]:
            for n, event in enumerate(PLAIN, 1):
                yield encode(format_event(event))
                if not board.wait_ack(key, n, wait):
                    yield encode(format_event(missed_ack("event", n, wait)))
                    break
            if compress:
                yield compressor.flush()

        return _stream(body(), {"Content-Encoding": encoding} if encoding else None)

    return app

