"""Shared pytest fixtures for the ssesync test suite."""

from __future__ import annotations

import os
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping
from typing import Any, Callable, Optional

import pytest
import trustme
from hypothesis import settings

from ssesync import EventSource, Hub
from ssesync._transport import Urllib3Transport
from ssesync.cli import main
from ssesync.testing import SSEServer
from tests.helpers import PROXY_VARIABLES, WAIT, settle, ssesync_threads

# CI runs a fixed set of examples so a run is reproducible; local runs explore.
# So does a mutation run (mutmut sets MUTANT_UNDER_TEST): a mutant must be
# caught or missed the same way every time (docs/development.rst).
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") or "MUTANT_UNDER_TEST" in os.environ:
    settings.load_profile("ci")


@pytest.fixture
def sse_server() -> Iterator[SSEServer]:
    """A started loopback SSE server, stopped (and its threads joined) after the test."""
    with SSEServer() as server:
        yield server


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A test CA (``ca``, its PEM file ``ca_path``) and a server context it signed."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    ca_path = tmp_path_factory.mktemp("tls") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return {"ca": ca, "server_context": server_context, "ca_path": str(ca_path)}


@pytest.fixture
def tls_server(tls: dict[str, Any]) -> Iterator[SSEServer]:
    """A loopback HTTPS server with the test CA's certificate; ``/s`` sends one event."""
    with SSEServer(ssl_context=tls["server_context"]) as server:
        server.route("/s", server.events([{"data": "secure"}]))
        yield server


@pytest.fixture
def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., tuple[int, str, str]]:
    """Run the command line in this process: ``cli(*args, env={...})`` -> (status, out, err).

    Much cheaper than a child process, for tests about what the command does
    rather than how a process behaves; the machine's proxy settings are left
    out of the environment, ``env`` adds variables.
    """

    def run(*args: str, env: Optional[Mapping[str, str]] = None) -> tuple[int, str, str]:
        for name in PROXY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        status = main(list(args))
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture(autouse=True)
def no_reader_thread_left() -> Iterator[None]:
    """Every test must leave no source thread running behind it."""
    yield
    assert settle(lambda: not ssesync_threads()), ssesync_threads()


@pytest.fixture(params=["thread", "hub"])
def started_by(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test of started sources twice: a thread per source, then a hub's thread.

    In the hub run, ``start()`` of a source that could join a hub (no hub of
    its own, a urllib3 transport) makes it join the test's hub first, so the
    same test pins the same behaviour on the hub (API.md section 6).
    """
    if request.param == "thread":
        yield "thread"
        return
    hub = Hub()
    start = EventSource.start

    def start_on_the_hub(source: EventSource) -> EventSource:
        if source._hub is None and isinstance(source._transport, Urllib3Transport):
            source._hub = hub
        return start(source)

    monkeypatch.setattr(EventSource, "start", start_on_the_hub)
    yield "hub"
    assert hub.close(timeout=WAIT)


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A URL whose TCP connect hangs: a listener with a full backlog that never accepts.

    Linux drops the SYNs of further connection attempts, so ``connect()``
    blocks until its timeout, like a server behind a firewall that drops
    packets. Skipped where the platform answers instead.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    probe = socket.socket()
    probe.settimeout(0.3)
    try:
        probe.connect(("127.0.0.1", port))
        hangs = False
    except (socket.timeout, TimeoutError):
        hangs = True
    except OSError:
        hangs = False
    finally:
        probe.close()
    try:
        if not hangs:
            pytest.skip("this platform does not leave a connect to a full backlog hanging")
        yield f"http://127.0.0.1:{port}/s"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.fixture
def silent_tls() -> Iterator[str]:
    """An ``https://`` URL whose server accepts the TCP connection and never says a word.

    The TLS handshake then waits for a ServerHello that never comes.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    stop = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except socket.timeout:
                continue

    thread = threading.Thread(target=accept, name="silent-tls", daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/s"
    finally:
        stop.set()
        thread.join(WAIT)
        for sock in held:
            sock.close()
        listener.close()


@pytest.fixture
def lean_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The URLs a hub opened on its own thread (to be sure its lean path ran)."""
    from ssesync._transport import _lean

    opened: list[str] = []
    start = _lean.LeanConnect.start

    def counting(self: _lean.LeanConnect) -> None:
        opened.append(self._request.url)
        start(self)

    monkeypatch.setattr(_lean.LeanConnect, "start", counting)
    return opened
