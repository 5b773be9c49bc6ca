"""The scenario's routes with sse-starlette, run on uvicorn in a process of its own.

``python -m tests.servers.apps.starlette_app`` (from the repository root)
binds a free port on ``127.0.0.1``, prints ``PORT <n>`` once it listens and
serves until it is terminated or its standard input closes. Events go out as sse-starlette's own
``ServerSentEvent`` objects (``\\r\\n`` line ends, its default); the pings of
``/gap`` are raw bytes, since a lone comment line is exactly what the route
must send. A generator that raises makes uvicorn close the connection
without the body's last chunk: the ``drop`` of a sequence.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator
from typing import Any, Optional, Union

import uvicorn
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .common import CUT_EVENT, GAP, PLAIN, missed_ack, next_batch

__all__ = ["app", "main"]

_log: dict[str, list[dict[str, Optional[str]]]] = {}
_acks: dict[tuple[str, int], asyncio.Event] = {}


class DropStream(Exception):
    """Raised by a stream generator to drop its connection on purpose."""


def _ack_event(key: str, n: int) -> asyncio.Event:
    return _acks.setdefault((key, n), asyncio.Event())


async def _wait_ack(key: str, n: int, wait: float) -> bool:
    try:
        await asyncio.wait_for(_ack_event(key, n).wait(), wait)
    except asyncio.TimeoutError:
        return False
    return True


def _sse(event: dict[str, str]) -> ServerSentEvent:
    return ServerSentEvent(
        data=event["data"], event=event.get("event"), id=event.get("id"),
        comment=event.get("comment"),
    )


def _record(request: Request, path: str) -> Optional[str]:
    last_event_id = request.headers.get("last-event-id")
    key = request.query_params.get("k")
    if key is not None:
        entry = {"path": path, "last_event_id": last_event_id, "content_encoding": None}
        _log.setdefault(key, []).append(entry)
    return last_event_id


async def ready(request: Request) -> Response:
    return PlainTextResponse("ok")


async def log(request: Request) -> Response:
    return JSONResponse(_log.get(request.query_params["k"], []))


async def ack(request: Request) -> Response:
    _ack_event(request.query_params["k"], int(request.query_params["n"])).set()
    return PlainTextResponse("ok")


async def plain(request: Request) -> Response:
    async def body() -> AsyncIterator[ServerSentEvent]:
        for event in PLAIN:
            yield _sse(event)

    return EventSourceResponse(body())


def _sequence(path: str) -> Any:
    async def route(request: Request) -> Response:
        batch, how = next_batch(path, _record(request, path))
        if not batch:
            return Response(status_code=204)

        async def body() -> AsyncIterator[Union[ServerSentEvent, bytes]]:
            for event in batch:
                yield _sse(event)
            if how == "drop":
                yield CUT_EVENT.encode("utf-8")
                raise DropStream("the scenario drops this connection")

        return EventSourceResponse(body())

    return route


async def gap(request: Request) -> Response:
    key = request.query_params["k"]
    wait = float(request.query_params["wait"])
    _record(request, "/gap")

    async def body() -> AsyncIterator[Union[ServerSentEvent, bytes]]:
        yield _sse(GAP["before"])
        for n, ping in enumerate(GAP["pings"], 1):
            yield f": {ping}\r\n".encode()
            if not await _wait_ack(key, n, wait):
                yield _sse(missed_ack("ping", n, wait))
                return
        yield _sse(GAP["after"])

    # This route's keep-alive comments are the scenario's own, sent as the
    # client acknowledges them: the built-in timed ping is pushed out of the way.
    return EventSourceResponse(body(), ping=3600)


app = Starlette(
    routes=[
        Route("/_ready", ready),
        Route("/_log", log),
        Route("/_ack", ack),
        Route("/plain", plain),
        Route("/resume", _sequence("/resume")),
        Route("/end", _sequence("/end")),
        Route("/gap", gap),
    ]
)


def _exit_when_stdin_closes() -> None:
    """The test process holds our stdin: when it goes away, so do we (uvicorn's SIGTERM)."""
    sys.stdin.buffer.read()
    os.kill(os.getpid(), signal.SIGTERM)


def main() -> None:
    threading.Thread(target=_exit_when_stdin_closes, daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1
    )
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    sys.exit(0)


if __name__ == "__main__":
    main()
