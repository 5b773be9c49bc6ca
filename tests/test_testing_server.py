"""Tests of ssesync.testing.SSEServer, driven by stdlib clients only.

The ssesync client is what this server exists to test, so these tests talk to
it with raw sockets and http.client; every socket has a timeout so a broken
server fails a test instead of hanging the suite.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ssesync.testing import EventSpec, SSEServer, StreamConnection, format_event

TIMEOUT = 5.0


def connect(server: SSEServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)


def get(server: SSEServer, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = connect(server)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def raw_get(server: SSEServer, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        piece = sock.recv(65536)
        assert piece, f"EOF before {marker!r}; got {data!r}"
        data += piece
    return data


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while piece := sock.recv(65536):
        data += piece
    return data


def split_response(data: bytes) -> tuple[str, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def server_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("ssesync-testserver")]


# -- format_event -------------------------------------------------------------


def test_format_event_orders_fields_and_splits_data() -> None:
    encoded = format_event("a\nb", event="x", id="7", retry=1500, comment="hi")
    assert encoded == b": hi\nevent: x\nid: 7\nretry: 1500\ndata: a\ndata: b\n\n"


def test_format_event_empty_values_and_line_breaks() -> None:
    assert format_event("") == b"data:\n\n"
    assert format_event(comment="") == b":\n\n"
    assert format_event("a\r\nb\rc", comment="x\ny") == b": x\n: y\ndata: a\ndata: b\ndata: c\n\n"
    assert format_event("é") == "data: é\n\n".encode()


def test_format_event_rejects_line_break_in_single_line_fields() -> None:
    with pytest.raises(ValueError, match="id"):
        format_event("a", id="1\n2")
    with pytest.raises(ValueError, match="event"):
        format_event("a", event="x\ry")


# -- responses ----------------------------------------------------------------


def test_events_are_sent_as_chunked_event_stream(sse_server: SSEServer) -> None:
    sse_server.route(
        "/ev", sse_server.events([{"data": "a", "id": "1"}, {"event": "x", "data": "b"}])
    )
    conn = connect(sse_server)
    conn.request("GET", "/ev")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/event-stream"
    assert response.getheader("Cache-Control") == "no-cache"
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"id: 1\ndata: a\n\nevent: x\ndata: b\n\n"
    conn.close()
    assert sse_server.errors == []


def test_unchunked_events_end_when_the_socket_closes(sse_server: SSEServer) -> None:
    sse_server.route("/ev", sse_server.events([{"data": "a"}], chunked=False))
    with raw_get(sse_server, "/ev") as sock:
        head, body = split_response(read_to_eof(sock))
    assert head.startswith("HTTP/1.1 200 OK\r\n")
    assert "Connection: close" in head
    assert "Transfer-Encoding" not in head
    assert "Content-Length" not in head
    assert body == b"data: a\n\n"


def test_each_send_is_its_own_chunk(sse_server: SSEServer) -> None:
    sse_server.route("/raw", sse_server.raw([b"data: a\r", b"\n\n"], chunked=True))
    with raw_get(sse_server, "/raw") as sock:
        _, body = split_response(read_to_eof(sock))
    assert body == b"8\r\ndata: a\r\r\n2\r\n\n\n\r\n0\r\n\r\n"


def test_raw_pieces_arrive_as_separate_reads_when_paused(sse_server: SSEServer) -> None:
    sse_server.route("/raw", sse_server.raw([b"data: a\r", b"\n\n"], pause=0.2))
    with raw_get(sse_server, "/raw") as sock:
        first = read_until(sock, b"data: a\r")
        assert first.endswith(b"\r\n\r\ndata: a\r")
        assert sock.recv(65536) == b"\n\n"
        assert sock.recv(65536) == b""


def test_status_shortcut_and_unknown_path(sse_server: SSEServer) -> None:
    sse_server.route(
        "/gone", sse_server.status(404, body=b"nope", headers={"Content-Type": "text/plain"})
    )
    conn = connect(sse_server)
    conn.request("GET", "/gone")
    response = conn.getresponse()
    assert (response.status, response.getheader("Content-Type")) == (404, "text/plain")
    assert response.getheader("Content-Length") == "4"
    assert response.read() == b"nope"
    conn.close()
    status, _ = get(sse_server, "/nowhere")
    assert status == 404


def test_redirect_location_variants(sse_server: SSEServer) -> None:
    sse_server.route("/r", sse_server.redirect("/target", code=307))
    sse_server.route("/none", sse_server.redirect(None))
    sse_server.route("/empty", sse_server.redirect(""))
    locations = {}
    for path in ("/r", "/none", "/empty"):
        conn = connect(sse_server)
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        locations[path] = (response.status, response.getheader("Location"))
        conn.close()
    assert locations == {"/r": (307, "/target"), "/none": (302, None), "/empty": (302, "")}


def test_handler_without_response_gets_500(sse_server: SSEServer) -> None:
    sse_server.route("/lazy", lambda conn: None)
    status, body = get(sse_server, "/lazy")
    assert status == 500
    assert b"without sending a response" in body


def test_malformed_request_gets_400(sse_server: SSEServer) -> None:
    with socket.create_connection(("127.0.0.1", sse_server.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"nonsense\r\n\r\n")
        head, _ = split_response(read_to_eof(sock))
    assert head.startswith("HTTP/1.1 400 ")
    assert sse_server.requests == []


def test_shortcuts_reject_bad_arguments_when_built(sse_server: SSEServer) -> None:
    with pytest.raises(ValueError, match="unknown event keys"):
        sse_server.events([{"dat": "typo"}])
    with pytest.raises(ValueError, match="then"):
        sse_server.raw([], then="explode")  # type: ignore[arg-type]


# -- recording and routing ----------------------------------------------------


def test_requests_are_recorded(sse_server: SSEServer) -> None:
    sse_server.route("/stream", sse_server.status(204))
    conn = connect(sse_server)
    conn.request(
        "POST",
        "/stream?a=1&a=2&b=",
        body=b"payload",
        headers={"last-event-id": "42", "X-Custom": "yes"},
    )
    conn.getresponse().read()
    conn.close()
    get(sse_server, "/other")

    assert [r.path for r in sse_server.requests] == ["/stream", "/other"]
    (request,) = sse_server.requests_for("/stream")
    assert request.method == "POST"
    assert request.target == "/stream?a=1&a=2&b="
    assert request.query == {"a": ["1", "2"], "b": [""]}
    assert request.body == b"payload"
    assert request.headers.get("x-custom") == "yes"
    assert request.headers["LAST-EVENT-ID"] == "42"
    assert "Last-Event-Id" in request.headers
    assert request.last_event_id == "42"
    assert sse_server.requests_for("/other")[0].last_event_id is None


def test_chunked_request_body_is_decoded(sse_server: SSEServer) -> None:
    sse_server.route("/up", sse_server.status(200))
    conn = connect(sse_server)
    conn.request("POST", "/up", body=iter([b"ab", b"cde"]), encode_chunked=True)
    conn.getresponse().read()
    conn.close()
    assert sse_server.requests[0].body == b"abcde"


def test_resume_starts_after_last_event_id(sse_server: SSEServer) -> None:
    events: list[EventSpec] = [
        {"id": "1", "data": "a"},
        {"id": "2", "data": "b"},
        {"id": "3", "data": "c"},
    ]
    sse_server.route("/ev", sse_server.events(events, resume=True))
    assert get(sse_server, "/ev", {"Last-Event-ID": "2"})[1] == b"id: 3\ndata: c\n\n"
    assert get(sse_server, "/ev", {"Last-Event-ID": "3"})[1] == b""
    everything = b"id: 1\ndata: a\n\nid: 2\ndata: b\n\nid: 3\ndata: c\n\n"
    assert get(sse_server, "/ev", {"Last-Event-ID": "unknown"})[1] == everything
    assert get(sse_server, "/ev")[1] == everything


def test_route_handlers_are_used_in_order_and_the_last_repeats(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(500), sse_server.status(503), sse_server.status(204))
    statuses = [get(sse_server, "/s")[0] for _ in range(4)]
    assert statuses == [500, 503, 204, 204]
    assert sse_server.connection_count == 4


def test_wait_for_requests(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(204))
    threading.Timer(0.05, get, (sse_server, "/s")).start()
    assert sse_server.wait_for_requests(1, timeout=TIMEOUT)
    assert not sse_server.wait_for_requests(2, timeout=0.05)


# -- connection endings -------------------------------------------------------


def test_drop_resets_the_connection(sse_server: SSEServer) -> None:
    def handler(conn: StreamConnection) -> None:
        conn.event("a")
        conn.drop()

    sse_server.route("/drop", handler)
    conn = connect(sse_server)
    conn.request("GET", "/drop")
    response = conn.getresponse()
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    conn.close()

    with raw_get(sse_server, "/drop") as sock, pytest.raises(ConnectionResetError):
        read_to_eof(sock)
    assert sse_server.errors == []


def test_half_close_gives_eof_and_waits_for_the_client(sse_server: SSEServer) -> None:
    returned = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.event("a")
        conn.half_close()
        returned.set()

    sse_server.route("/half", handler)
    with raw_get(sse_server, "/half") as sock:
        _, body = split_response(read_to_eof(sock))
        assert body == b"9\r\ndata: a\n\n\r\n"  # one chunk, no terminator
        assert not returned.wait(0.05)
    assert returned.wait(TIMEOUT)


def test_stall_returns_when_the_client_closes(sse_server: SSEServer) -> None:
    returned = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.event("a")
        conn.stall()
        returned.set()

    sse_server.route("/stall", handler)
    with raw_get(sse_server, "/stall") as sock:
        read_until(sock, b"data: a\n\n")
        assert not returned.wait(0.05)
    assert returned.wait(TIMEOUT)
    assert sse_server.errors == []


def test_closed_by_peer(sse_server: SSEServer) -> None:
    seen = []
    checked, noticed = threading.Event(), threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        seen.append(conn.closed_by_peer())
        checked.set()
        while not conn.closed_by_peer():
            conn.pause(0.01)
        noticed.set()

    sse_server.route("/s", handler)
    with raw_get(sse_server, "/s") as sock:
        read_until(sock, b"\r\n\r\n")
        assert checked.wait(TIMEOUT)
    assert noticed.wait(TIMEOUT)
    assert seen == [False]


def test_handler_exception_is_recorded_and_connection_dropped(sse_server: SSEServer) -> None:
    def handler(conn: StreamConnection) -> None:
        conn.event("a")
        raise ValueError("boom")

    sse_server.route("/bug", handler)
    with raw_get(sse_server, "/bug") as sock, pytest.raises(ConnectionResetError):
        read_to_eof(sock)
    assert [str(e) for e in sse_server.errors] == ["boom"]


# -- lifecycle ----------------------------------------------------------------


def test_url_and_url_for(sse_server: SSEServer) -> None:
    assert sse_server.url == f"http://127.0.0.1:{sse_server.port}"
    assert sse_server.url_for("/stream") == sse_server.url + "/stream"
    assert sse_server.url_for("stream") == sse_server.url + "/stream"


def test_stop_joins_all_threads_while_handlers_wait() -> None:
    server = SSEServer().start()
    server.route("/stall", server.events([{"data": "a"}], then="stall"))
    server.route("/pause", lambda conn: conn.pause(30))
    stalled = raw_get(server, "/stall")
    paused = raw_get(server, "/pause")
    try:
        read_until(stalled, b"data: a\n\n")
        assert server.wait_for_requests(2, timeout=TIMEOUT)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 1.0
        assert server_threads() == []
        assert stalled.recv(65536) in (b"", b"0\r\n\r\n")
        assert server.errors == []
    finally:
        stalled.close()
        paused.close()
    server.stop()  # idempotent


def test_a_handler_may_stop_the_server() -> None:
    server = SSEServer().start()

    def handler(conn: StreamConnection) -> None:
        conn.event("a")
        server.stop()
        conn.event("never sent")

    server.route("/s", handler)
    with raw_get(server, "/s") as sock:
        _, body = split_response(read_to_eof(sock))
    assert body == b"9\r\ndata: a\n\n\r\n"
    deadline = time.monotonic() + TIMEOUT
    while server_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server_threads() == []
    assert server.errors == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count sockets")
def test_stop_leaves_no_socket_open() -> None:
    def open_sockets() -> int:
        return sum(
            1 for fd in os.listdir("/proc/self/fd") if "socket" in _readlink(f"/proc/self/fd/{fd}")
        )

    before = open_sockets()
    with SSEServer() as server:
        server.route("/stall", server.events([], then="stall"))
        with raw_get(server, "/stall") as sock:
            read_until(sock, b"\r\n\r\n")
            assert open_sockets() > before
    assert open_sockets() == before


def _readlink(path: str) -> str:
    try:
        return os.readlink(path)
    except OSError:  # the descriptor used by listdir itself is gone by now
        return ""


# -- TLS ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available to make a test certificate")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return cert, key


def test_https(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    client_context = ssl.create_default_context(cafile=str(cert))
    with SSEServer(ssl_context=server_context) as server:
        server.route("/ev", server.events([{"data": "secure"}]))
        assert server.url.startswith("https://127.0.0.1:")
        conn = http.client.HTTPSConnection(
            "127.0.0.1", server.port, timeout=TIMEOUT, context=client_context
        )
        conn.request("GET", "/ev")
        assert conn.getresponse().read() == b"data: secure\n\n"
        conn.close()

        # A client that rejects the certificate is not a handler error.
        with pytest.raises(ssl.SSLCertVerificationError):
            ssl.create_default_context().wrap_socket(
                socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT),
                server_hostname="127.0.0.1",
            )
        assert server.errors == []
        assert server.connection_count == 1
