"""A relay in a real web framework under a real WSGI server (API.md section 2, Apps).

The documentation's own Flask and Django views (``docs/examples/``) relay an
upstream from ``ssesync.testing.SSEServer`` to a browser-like client, served
by werkzeug's threaded WSGI server. Every event and comment arrives as the
upstream sent it; and when the client leaves while the upstream is silent,
the relay's keep-alive write fails, the view's generator is closed, and the
upstream connection closes within ``idle`` + 1 s — a model that "thinks" for
a minute no longer holds a paid completion open for a minute.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest

from ssesync._parser import Parser
from ssesync._transport._chunked import ChunkedDecoder
from ssesync.testing import SSEServer, StreamConnection

werkzeug_serving = pytest.importorskip("werkzeug.serving", reason="needs the servers extra")

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
IDLE = 0.5
WAIT = 10.0


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / name
    spec = importlib.util.spec_from_file_location(f"docs_example_{path.stem}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flask_app(upstream: str) -> Any:
    pytest.importorskip("flask", reason="needs the servers extra (flask)")
    return load_example("flask_relay.py").create_app(upstream, idle=IDLE)


_django_module: list[ModuleType] = []


def django_app(upstream: str) -> Any:
    pytest.importorskip("django", reason="needs the servers extra (django)")
    import sys

    from django.conf import settings

    if not _django_module:
        module = load_example("django_relay.py")
        sys.modules[module.__name__] = module  # ROOT_URLCONF imports it by name
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], SECRET_KEY="relay-test",
            ROOT_URLCONF=module.__name__, SSE_IDLE=IDLE, SSE_UPSTREAM_URL="",
        )  # fmt: skip
        import django

        django.setup()
        _django_module.append(module)
    settings.SSE_UPSTREAM_URL = upstream
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


FRAMEWORKS: dict[str, Callable[[str], Any]] = {"flask": flask_app, "django": django_app}


@pytest.fixture(params=sorted(FRAMEWORKS))
def relay(request: pytest.FixtureRequest) -> Iterator[tuple[SSEServer, Callable[[str], str]]]:
    """The upstream server, and a function that serves a relay of one of its paths."""
    with SSEServer() as upstream:
        servers: list[Any] = []

        def serve(path: str) -> str:
            app = FRAMEWORKS[request.param](upstream.url_for(path))
            server = werkzeug_serving.make_server("127.0.0.1", 0, app, threaded=True)
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            servers.append((server, thread))
            return f"127.0.0.1:{server.server_port}"

        yield upstream, serve
        for server, thread in servers:
            server.shutdown()
            thread.join(WAIT)
            server.server_close()


def open_events(address: str) -> socket.socket:
    host, port = address.split(":")
    client = socket.create_connection((host, int(port)), timeout=WAIT)
    client.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
    return client


def read_until(client: socket.socket, marker: bytes) -> bytes:
    received = b""
    while marker not in received:
        data = client.recv(65536)
        assert data, received
        received += data
    return received


def test_the_relay_passes_every_event_and_comment_on(
    relay: tuple[SSEServer, Callable[[str], str]],
) -> None:
    upstream, serve = relay
    body = b": hello\n\nevent: tick\nid: 1\ndata: a\ndata: b\n\ndata: {\"k\": 1}\n\n"
    upstream.route("/s", upstream.raw([body], then="stall"))
    client = open_events(serve("/s"))
    with client:
        received = read_until(client, b'{"k": 1}')
    head, _, payload = received.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():  # werkzeug frames a streamed body in chunks
        payload = ChunkedDecoder().feed(payload)
    text = payload
    expected = Parser().feed(body)
    assert Parser().feed(text + b"\n\n")[: len(expected)] == expected


def test_a_client_that_leaves_a_silent_stream_closes_the_upstream_within_idle(
    relay: tuple[SSEServer, Callable[[str], str]],
) -> None:
    upstream, serve = relay
    left = threading.Event()
    left_at: list[float] = []

    def thinking(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("first token")
        conn.stall()  # the model "thinks": silent until the client leaves
        left_at.append(time.monotonic())
        left.set()

    upstream.route("/s", thinking)
    client = open_events(serve("/s"))
    read_until(client, b"first token")
    closed_at = time.monotonic()
    client.close()  # the browser tab is closed
    assert left.wait(WAIT), "the upstream connection stayed open"
    assert left_at[0] - closed_at <= IDLE + 1.0
