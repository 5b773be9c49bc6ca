"""SSEClient / SSEConnection (API.md §3) and the transports: requests, TLS, proxies, redirects."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
import urllib3

from ssesync import (
    Event,
    EventSource,
    ReadyState,
    SSEClient,
    SSEConnection,
    SSEConnectionError,
)
from ssesync.testing import SSEServer, StreamConnection
from tests.forward_proxy import ForwardProxy
from tests.helpers import ScriptedServer, request_heads


def openai_style(conn: StreamConnection) -> None:
    """Stream JSON chunks of an answer to the posted prompt, then ``[DONE]``."""
    prompt = json.loads(conn.request.body)["messages"][-1]["content"]
    conn.send_headers()
    for word in f"you said {prompt}".split():
        conn.event(json.dumps({"choices": [{"delta": {"content": word + " "}}]}))
    conn.event("[DONE]")
    conn.end()


# -- the seed's usage patterns, synchronously ----------------------------------------------


def test_connect_returns_an_open_connection(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"event": "greet", "data": "hi"}]))
    client = SSEClient(reconnect=False)
    conn = client.connect(sse_server.url_for("/s"))
    assert isinstance(conn, SSEConnection)
    assert isinstance(conn, EventSource)
    assert conn.ready_state is ReadyState.OPEN
    assert sse_server.connection_count == 1  # connected before any iteration
    events = [(e["event"], e["data"]) for e in conn]
    conn.close()
    client.close()
    assert events == [("greet", "hi")]


def test_nested_with_blocks_clean_up(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}, {"data": "b"}], then="stall"))
    with SSEClient() as client:
        with client.connect(sse_server.url_for("/s")) as conn:
            got = []
            for event in conn:
                got.append(event["data"])
                if len(got) == 2:
                    break
        assert conn.ready_state is ReadyState.CLOSED
    assert got == ["a", "b"]


def test_post_json_with_authorization_openai_style(sse_server: SSEServer) -> None:
    sse_server.route("/v1/chat/completions", openai_style)
    body = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "stream": True}
    words = []
    with SSEClient() as client, client.connect(
        sse_server.url_for("/v1/chat/completions"),
        method="POST",
        json=body,
        headers={"Authorization": "Bearer t0ken"},
        reconnect=False,
    ) as conn:
        for event in conn:
            if event["data"] == "[DONE]":
                break
            words.append(event.json()["choices"][0]["delta"]["content"])
    assert "".join(words) == "you said hello "
    (request,) = sse_server.requests
    assert request.method == "POST"
    assert request.headers.get("authorization") == "Bearer t0ken"
    assert json.loads(request.body) == body


def test_connect_failure_raises_at_connect_without_reconnect(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(404))
    with SSEClient() as client, pytest.raises(SSEConnectionError) as info:
        client.connect(sse_server.url_for("/s"), reconnect=False)
    assert info.value.status == 404


def test_connect_retries_before_returning_with_reconnect(sse_server: SSEServer) -> None:
    sse_server.route("/t", sse_server.status(503), sse_server.events([{"data": "up"}]))
    with SSEClient(retry_delay=0) as client:
        conn = client.connect(sse_server.url_for("/t"))
        assert conn.ready_state is ReadyState.OPEN
        assert next(iter(conn)).data == "up"
    assert len(sse_server.requests_for("/t")) == 2


@pytest.mark.usefixtures("started_by")
def test_leaving_the_client_closes_its_connections_and_pool(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}], then="stall"))
    with SSEClient() as client:
        first = client.connect(sse_server.url_for("/s"))
        second = client.connect(sse_server.url_for("/s"))
        second.on("message", lambda e: None)
        second.start()
        pool_manager = client._transport.pool_manager  # type: ignore[attr-defined]
        assert len(pool_manager.pools) == 1
    assert first.ready_state is ReadyState.CLOSED
    assert second.ready_state is ReadyState.CLOSED
    assert second.join(5)
    assert len(pool_manager.pools) == 0
    with pytest.raises(RuntimeError, match="closed"):
        client.connect(sse_server.url_for("/s"))


def test_closing_an_unread_connection_releases_its_socket(sse_server: SSEServer) -> None:
    client_gone = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("never read")
        conn.stall()  # returns once the client has closed its side
        client_gone.set()

    sse_server.route("/s", handler)
    with SSEClient() as client:
        baseline = len(os.listdir("/proc/self/fd"))
        conn = client.connect(sse_server.url_for("/s"))
        conn.close()
        assert client_gone.wait(5)
        deadline = time.monotonic() + 5  # the server closes its side just after
        while len(os.listdir("/proc/self/fd")) > baseline and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(os.listdir("/proc/self/fd")) == baseline
        assert conn.ready_state is ReadyState.CLOSED


def test_client_defaults_apply_and_connect_overrides(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    with SSEClient(headers={"X-Default": "1"}, reconnect=False) as client:
        list(client.connect(sse_server.url_for("/s")))
        list(client.connect(sse_server.url_for("/s"), headers={"X-Other": "2"}))
    first, second = sse_server.requests
    assert first.headers.get("x-default") == "1"
    assert second.headers.get("x-default") is None
    assert second.headers.get("x-other") == "2"


def test_connect_transport_options_add_to_the_clients_proxy(sse_server: SSEServer) -> None:
    # connect(verify=False) used to build a transport of connect()'s options
    # alone: the request went direct, past the client's proxy.
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    with ForwardProxy() as proxy, SSEClient(proxy=proxy.url, reconnect=False) as client:
        assert [e.data for e in client.connect(sse_server.url_for("/s"), verify=False)] == ["x"]
        assert proxy.request_lines == [f"GET {sse_server.url_for('/s')} HTTP/1.1"]


def test_connect_transport_options_keep_the_clients_session(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer from-session"
        with SSEClient(session=session, reconnect=False) as client:
            list(client.connect(sse_server.url_for("/s"), verify=False))
    assert sse_server.requests[0].headers.get("authorization") == "Bearer from-session"


def test_connect_refuses_a_transport_that_contradicts_the_clients(sse_server: SSEServer) -> None:
    url = sse_server.url_for("/s")
    manager = urllib3.PoolManager()
    with requests.Session() as session:
        client = SSEClient(session=session)
        with pytest.raises(ValueError, match=r"connect\(pool_manager=\).*session="):
            client.connect(url, pool_manager=manager)
    client = SSEClient(pool_manager=manager)
    with pytest.raises(ValueError, match=r"connect\(proxy=\).*pool_manager=.*proxy="):
        client.connect(url, proxy="http://proxy.invalid:3128")
    assert sse_server.connection_count == 0


@pytest.mark.usefixtures("started_by")
def test_connection_supports_callbacks(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"event": "tick", "data": "1"}], then="stall"))
    got = threading.Event()
    received: list[Event] = []
    with SSEClient() as client:
        conn = client.connect(sse_server.url_for("/s"))
        conn.on("tick", lambda e: (received.append(e), got.set()))
        conn.start()
        assert got.wait(5)
    assert received[0].data == "1"
    assert conn.join(5)


def test_connect_answered_204_gives_a_finished_connection(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.status(204))
    with SSEClient() as client:
        conn = client.connect(sse_server.url_for("/s"))
        assert conn.ready_state is ReadyState.CLOSED
        assert list(conn) == []
    assert sse_server.connection_count == 1


# -- keep_connection -------------------------------------------------------------------------


@pytest.fixture
def keepalive_server() -> Iterator[tuple[str, list[str]]]:
    """A raw server answering several requests per connection with a finite stream."""
    log: list[str] = []

    def answer(conn: socket.socket, number: int) -> None:
        for head in request_heads(conn):
            log.append(f"connection {number}")
            body = f"data: request {len(log)} on connection {number}\n\n".encode()
            if b"connection: close" in head.lower():
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                    + b"Connection: close\r\n\r\n"
                    + body
                )
                conn.shutdown(socket.SHUT_WR)  # the end of this body
                return
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )

    with ScriptedServer(answer) as server:
        yield f"{server.base}/s", log


def test_keep_connection_reuses_the_socket(keepalive_server: tuple[str, list[str]]) -> None:
    url, _ = keepalive_server
    with SSEClient(retry_delay=0, keep_connection=True) as client, client.connect(url) as conn:
        got = []
        for event in conn:
            got.append(event.data)
            if len(got) == 2:
                break
    assert got == ["request 1 on connection 1", "request 2 on connection 1"]


def test_without_keep_connection_each_stream_gets_a_new_socket(
    keepalive_server: tuple[str, list[str]],
) -> None:
    url, _ = keepalive_server
    source = EventSource(url, retry_delay=0)
    got = []
    with source:
        for event in source:
            got.append(event.data)
            if len(got) == 2:
                break
    assert got == ["request 1 on connection 1", "request 2 on connection 2"]


# -- the requests transport ------------------------------------------------------------------


@responses.activate
def test_requests_session_with_mocked_stream() -> None:
    responses.add(
        responses.GET,
        "http://sse.test/stream",
        body=b"retry: 10\nid: 1\ndata: a\n\nevent: x\ndata: b\n\n",
        content_type="text/event-stream",
    )
    session = requests.Session()
    session.headers["X-Session"] = "yes"
    events = list(EventSource("http://sse.test/stream", session=session, reconnect=False))
    assert [(e.type, e.data, e.id) for e in events] == [("message", "a", "1"), ("x", "b", None)]
    (call,) = responses.calls
    assert call.request.headers["X-Session"] == "yes"
    assert call.request.headers["Accept"] == "text/event-stream"


@responses.activate
def test_requests_session_status_errors() -> None:
    responses.add(responses.GET, "http://sse.test/missing", status=404)
    responses.add(responses.GET, "http://sse.test/html", body=b"<p>", content_type="text/html")
    with pytest.raises(SSEConnectionError) as info:
        list(EventSource("http://sse.test/missing", session=requests.Session()))
    assert info.value.status == 404
    with pytest.raises(SSEConnectionError, match="text/event-stream"):
        list(EventSource("http://sse.test/html", session=requests.Session()))


@responses.activate
def test_requests_session_connection_error_is_mapped() -> None:
    responses.add(
        responses.GET, "http://sse.test/down", body=requests.ConnectionError("refused")
    )
    with pytest.raises(SSEConnectionError):
        list(EventSource("http://sse.test/down", session=requests.Session(), reconnect=False))


def test_requests_session_over_loopback_reconnects(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.events([{"data": "b", "id": "2"}], resume=True),
    )
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer s"
        with SSEClient(session=session, retry_delay=0) as client, client.connect(
            sse_server.url_for("/s")
        ) as conn:
            got = []
            for event in conn:
                got.append(event.data)
                if len(got) == 2:
                    break
    assert got == ["a", "b"]
    _, second = sse_server.requests
    assert second.last_event_id == "1"
    assert second.headers.get("authorization") == "Bearer s"


def test_requests_session_latency_event_before_more_bytes(sse_server: SSEServer) -> None:
    delivered = threading.Event()
    outcome: dict[str, bool] = {}

    def handler(conn: StreamConnection) -> None:
        conn.send_headers(chunked=False)
        conn.send(b"data: now\n\n")
        outcome["ok"] = delivered.wait(10)
        conn.end()

    sse_server.route("/s", handler)
    with requests.Session() as session:
        source = EventSource(sse_server.url_for("/s"), session=session, reconnect=False)
        assert next(iter(source)).data == "now"
        delivered.set()
        source.close()
    sse_server.wait_for_requests(1)
    assert outcome.get("ok", True)


# -- TLS ----------------------------------------------------------------------------------------


def test_tls_verification_is_on_by_default(tls_server: SSEServer) -> None:
    with pytest.raises(SSEConnectionError, match=r"TLS|certificate") as info:
        list(EventSource(tls_server.url_for("/s")))  # reconnect=True: still not retried
    assert not info.value.retryable
    assert tls_server.url_for("/s").startswith("https://")


@pytest.mark.parametrize("how", ["verify", "ca_certs", "ssl_context"])
def test_tls_with_trusted_ca(tls_server: SSEServer, tls: dict[str, Any], how: str) -> None:
    options: dict[str, Any] = {"reconnect": False}
    if how == "verify":
        options["verify"] = tls["ca_path"]
    elif how == "ca_certs":
        options["ca_certs"] = tls["ca_path"]
    else:
        context = ssl.create_default_context()
        tls["ca"].configure_trust(context)
        options["ssl_context"] = context
    assert [e.data for e in EventSource(tls_server.url_for("/s"), **options)] == ["secure"]


def test_tls_verify_false_accepts_unknown_certificate(tls_server: SSEServer) -> None:
    with pytest.warns(urllib3.exceptions.InsecureRequestWarning):
        events = list(EventSource(tls_server.url_for("/s"), verify=False, reconnect=False))
    assert [e.data for e in events] == ["secure"]


def test_tls_with_requests_session(
    tls_server: SSEServer, tls: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these variables override session.verify; CI machines set them.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with requests.Session() as session:
        with pytest.raises(SSEConnectionError, match=r"TLS|certificate"):
            list(EventSource(tls_server.url_for("/s"), session=session))
        session.verify = tls["ca_path"]
        events = list(EventSource(tls_server.url_for("/s"), session=session, reconnect=False))
        assert [e.data for e in events] == ["secure"]


# -- proxies -------------------------------------------------------------------------------------


def test_http_stream_through_a_forwarding_proxy(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "via proxy", "id": "1"}]))
    with ForwardProxy() as proxy:
        events = list(EventSource(sse_server.url_for("/s"), proxy=proxy.url, reconnect=False))
    assert [e.data for e in events] == ["via proxy"]
    assert proxy.request_lines == [f"GET {sse_server.url_for('/s')} HTTP/1.1"]


def test_https_stream_through_a_proxy_tunnel(tls_server: SSEServer, tls: dict[str, Any]) -> None:
    with ForwardProxy() as proxy:
        events = list(
            EventSource(
                tls_server.url_for("/s"),
                proxy=proxy.url,
                verify=tls["ca_path"],
                reconnect=False,
            )
        )
    assert [e.data for e in events] == ["secure"]
    assert proxy.request_lines[0].startswith("CONNECT 127.0.0.1:")


@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_proxy_credentials_in_the_url_are_sent(
    sse_server: SSEServer, tls_server: SSEServer, transport: str
) -> None:
    # urllib3's ProxyManager ignores user-info in the proxy URL; ssesync sends it.
    sse_server.route("/s", sse_server.events([{"data": "via proxy"}]))
    expected = "Basic " + base64.b64encode(b"user:p@ss:word").decode()
    with ForwardProxy() as proxy:
        proxy_url = proxy.url.replace("://", "://user:p%40ss%3Aword@")
        options: dict[str, Any] = {"proxy": proxy_url, "reconnect": False}
        if transport == "requests":
            options["session"] = requests.Session()
        events = list(EventSource(sse_server.url_for("/s"), **options))
        with pytest.raises(SSEConnectionError, match=r"TLS|certificate"):  # CONNECT, then TLS
            list(EventSource(tls_server.url_for("/s"), **options))
    assert [e.data for e in events] == ["via proxy"]
    assert proxy.proxy_authorizations == [expected, expected]


@pytest.mark.parametrize(
    "option", [{"verify": False}, {"cert": "me.pem"}, {"proxy": "http://proxy.invalid:3128"},
               {"ca_certs": "ca.pem"}, {"ssl_context": ssl.create_default_context()}],
    ids=lambda option: next(iter(option)),
)  # fmt: skip
def test_pool_manager_refuses_the_options_it_would_ignore(
    sse_server: SSEServer, option: dict[str, Any]
) -> None:
    # They were silently ignored: the caller's manager's settings rule.
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    (name,) = option
    with pytest.raises(ValueError, match=rf"pool_manager= cannot be combined with {name}="):
        EventSource(sse_server.url_for("/s"), pool_manager=urllib3.PoolManager(), **option)
    assert sse_server.connection_count == 0


def test_session_takes_verify_cert_and_proxy_per_request(
    sse_server: SSEServer, tls_server: SSEServer, tls: dict[str, Any]
) -> None:
    # requests takes them with each request, so session= honours them ...
    sse_server.route("/s", sse_server.events([{"data": "via proxy"}]))
    with requests.Session() as session, ForwardProxy() as proxy:
        options: dict[str, Any] = {"session": session, "reconnect": False}
        events = list(EventSource(sse_server.url_for("/s"), proxy=proxy.url, **options))
        assert [e.data for e in events] == ["via proxy"]
        assert proxy.request_lines == [f"GET {sse_server.url_for('/s')} HTTP/1.1"]
        for trust in ({"verify": tls["ca_path"]}, {"ca_certs": tls["ca_path"]}):
            assert [e.data for e in EventSource(tls_server.url_for("/s"), **trust, **options)] == [
                "secure"
            ]
        # ... but no SSLContext: refused rather than ignored.
        with pytest.raises(ValueError, match="session= cannot use ssl_context="):
            EventSource(tls_server.url_for("/s"), ssl_context=ssl.create_default_context(),
                        **options)  # fmt: skip


def test_shared_proxy_manager(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    with ForwardProxy() as proxy:
        manager = urllib3.ProxyManager(proxy.url)
        with SSEClient(pool_manager=manager, reconnect=False) as client:
            assert [e.data for e in client.connect(sse_server.url_for("/s"))] == ["x"]
        assert proxy.request_lines
        # The caller's manager is the caller's: still usable after the client closed.
        assert manager.request("GET", sse_server.url_for("/missing")).status == 404


# -- redirects keep credentials at home -----------------------------------------------------------


@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_credentials_not_forwarded_to_another_host(sse_server: SSEServer, transport: str) -> None:
    with SSEServer() as other:
        other.route("/s", other.events([{"data": "elsewhere"}]))
        target = other.url_for("/s").replace("127.0.0.1", "localhost")
        sse_server.route("/s", sse_server.redirect(target, code=307))
        options: dict[str, Any] = {
            "reconnect": False,
            "headers": {"Authorization": "Bearer secret", "Cookie": "session=secret"},
        }
        if transport == "requests":
            options["session"] = requests.Session()
        events = list(EventSource(sse_server.url_for("/s"), **options))
        assert [e.data for e in events] == ["elsewhere"]
        (first,) = sse_server.requests
        (redirected,) = other.requests
    assert first.headers.get("authorization") == "Bearer secret"
    assert redirected.headers.get("authorization") is None
    assert redirected.headers.get("cookie") is None


def basic(credentials: bytes) -> str:
    return "Basic " + base64.b64encode(credentials).decode()


@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_url_userinfo_is_sent_as_basic_auth(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture, transport: str
) -> None:
    # As curl and requests do; the urllib3 transport used to drop it silently.
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    sse_server.route("/missing", sse_server.status(404))
    options: dict[str, Any] = {"reconnect": False}
    if transport == "requests":
        options["session"] = requests.Session()
    caplog.set_level("DEBUG", logger="ssesync")
    with_userinfo = sse_server.url_for("/s").replace("://", "://alice:s3cr%40t@")
    assert [e.data for e in EventSource(with_userinfo, **options)] == ["x"]
    headers = {"Authorization": "Bearer mine"}
    list(EventSource(with_userinfo, headers=headers, **options))  # the caller's header wins
    with pytest.raises(SSEConnectionError, match="404") as info:
        list(EventSource(with_userinfo.replace("/s", "/missing"), **options))
    first, second = sse_server.requests_for("/s")
    assert first.headers.get("authorization") == basic(b"alice:s3cr@t")
    assert second.headers.get("authorization") == "Bearer mine"
    shown = str(info.value) + repr(info.value.__dict__) + caplog.text
    for secret in ("s3cr", basic(b"alice:s3cr@t")[6:]):
        assert secret not in shown


def test_url_userinfo_is_not_forwarded_to_another_host(sse_server: SSEServer) -> None:
    with SSEServer() as other:
        other.route("/s", other.events([{"data": "elsewhere"}]))
        target = other.url_for("/s").replace("127.0.0.1", "localhost")
        sse_server.route("/s", sse_server.redirect(target, code=307))
        url = sse_server.url_for("/s").replace("://", "://alice:s3cret@")
        assert [e.data for e in EventSource(url, reconnect=False)] == ["elsewhere"]
        (first,) = sse_server.requests
        (redirected,) = other.requests
    assert first.headers.get("authorization") == basic(b"alice:s3cret")
    assert redirected.headers.get("authorization") is None


def test_credentials_kept_on_same_host_redirect(sse_server: SSEServer) -> None:
    sse_server.route("/old", sse_server.redirect("/new", code=307))
    sse_server.route("/new", sse_server.events([{"data": "x"}]))
    list(EventSource(sse_server.url_for("/old"), reconnect=False,
                     headers={"Authorization": "Bearer mine"}))
    assert sse_server.requests_for("/new")[0].headers.get("authorization") == "Bearer mine"

