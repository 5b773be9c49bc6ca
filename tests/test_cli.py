"""The ``ssesync`` command line, run for real in a subprocess against a loopback server.

A command line is mostly about what only a real process shows: exit
statuses, what reaches stdout and when (a line must arrive while the stream
is still open), what stderr says, how Ctrl-C and a closed pipe end it. So
most tests start ``python -m ssesync`` and talk to it through pipes; every
wait has a timeout, so a command that hangs fails its test instead of the
suite. Pure pieces (argument errors, the formatters, the demo's threads) are
tested in-process, which is much cheaper than a Python start-up.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import re
import shutil
import signal
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Callable

import pytest
import trustme

from ssesync import Event
from ssesync._console import _error, _LogFormatter, format_json, format_text
from ssesync.cli import main, proxy_for
from ssesync.testing import SSEServer, StreamConnection
from tests.forward_proxy import ForwardProxy
from tests.helpers import CLI, CLI_WAIT, ROOT, RawServer, cli_env, closed_port, run_cli

#: The ``cli`` fixture: runs the command in this process, returns (status, out, err).
Cli = Callable[..., tuple[int, str, str]]
#: The longest any single command may take before the test gives up on it.
TIMEOUT = CLI_WAIT
#: How long to wait for one line of output that should come at once (the
#: server holds the rest back until it is read, so a generous bound still
#: tells "at once" from "only at the end").
LINE_TIMEOUT = 30.0


@contextmanager
def spawn(*args: str, catch_sigint: bool = False) -> Iterator[subprocess.Popen[str]]:
    """Start the command with pipes; kill it on the way out if a test left it running.

    With ``catch_sigint`` the parent handles SIGINT while the child starts:
    a caught signal is reset to its default in the child, whereas an ignored
    one (the lot of background jobs in some shells and CI runners) would stay
    ignored, and the child would never see the Ctrl-C the test sends.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler) if catch_sigint else None
    try:
        proc = subprocess.Popen(
            [*CLI, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=ROOT,
            env=cli_env(),
        )
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(TIMEOUT)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


class LineReader:
    """Reads a pipe in a thread so that a test can wait for a line with a timeout."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                self._lines.put(line)
        except (OSError, ValueError):
            pass  # the test closed the pipe
        finally:
            self._lines.put(None)

    def next_line(self, timeout: float = LINE_TIMEOUT) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no output line within {timeout} s")
        assert line is not None, "the command closed its output early"
        return line

    def join(self) -> None:
        self._thread.join(TIMEOUT)


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


def assert_one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("ssesync: error: ")
    assert "Traceback" not in stderr
    return lines[0]


# -- output -------------------------------------------------------------------------


def test_prints_one_compact_json_object_per_event_in_order(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events(
            [
                {"data": "one", "id": "1"},
                {"event": "update", "data": "two\nlines", "retry": 1500},
                {"data": "grüße ✓"},
            ]
        ),
    )
    result = run_cli("--no-reconnect", sse_server.url_for("/s"))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.splitlines() == [
        '{"event":null,"data":"one","id":"1","retry":null}',
        '{"event":"update","data":"two\\nlines","id":null,"retry":1500}',
        '{"event":null,"data":"grüße ✓","id":null,"retry":null}',
    ]


def test_max_events_stops_cleanly(sse_server: SSEServer) -> None:
    # The stream stalls afterwards: only --max-events can end the command.
    events = [{"data": f"event {n}", "id": str(n)} for n in range(5)]
    sse_server.route("/s", sse_server.events(events, then="stall"))
    result = run_cli("--max-events", "2", sse_server.url_for("/s"))
    assert result.returncode == 0, result.stderr
    assert [line["data"] for line in json_lines(result.stdout)] == ["event 0", "event 1"]


def test_text_format_is_one_readable_line_per_event(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events(
            [
                {"event": "update", "id": "3", "data": "hello"},
                {"data": "first\nsecond", "retry": 500},
                {"event": "bell", "data": "ring \x07 \x1b[31m"},
            ]
        ),
    )
    result = run_cli("--no-reconnect", "--format", "text", sse_server.url_for("/s"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "[update] id=3 hello",
        "[message] retry=500 first",
        "    second",
        "[bell] ring \\x07 \\x1b[31m",
    ]


def test_formatters() -> None:
    event = Event("a\nb", "update", "7", 250)
    assert json.loads(format_json(event)) == {
        "event": "update",
        "data": "a\nb",
        "id": "7",
        "retry": 250,
    }
    assert list(json.loads(format_json(event))) == ["event", "data", "id", "retry"]
    assert format_text(event) == "[update] id=7 retry=250 a\n    b"
    assert format_text(Event("", None, "")) == '[message] id=""'


def test_events_are_flushed_one_at_a_time(sse_server: SSEServer) -> None:
    released = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.event("first", id="1")
        released.wait(TIMEOUT)  # the second event waits for the test to see the first
        conn.event("second", id="2")
        conn.end()

    sse_server.route("/s", handler)
    try:
        with spawn("--no-reconnect", sse_server.url_for("/s")) as proc:
            assert proc.stdout is not None
            reader = LineReader(proc.stdout)
            assert json.loads(reader.next_line())["data"] == "first"
            released.set()
            assert json.loads(reader.next_line())["data"] == "second"
            assert proc.wait(TIMEOUT) == 0
            reader.join()
    finally:
        released.set()


# -- server text stays inert ----------------------------------------------------------

#: Retitle the terminal, then clear the screen: what a hostile server would send.
ESCAPES = "\x1b]0;owned\x07\x1b[2J"
# What must never reach the terminal raw (line feeds between lines aside).
RAW_CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def run_cli_bytes(*args: str) -> subprocess.CompletedProcess[bytes]:
    """Like :func:`run_cli`, but the output as bytes: text mode would turn a CR into LF."""
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        timeout=TIMEOUT,
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )


def assert_inert(output: bytes) -> None:
    found = RAW_CONTROL.search(output)
    assert found is None, f"raw {found.group()!r} in {output!r}"


def test_a_garbage_status_line_is_escaped_in_the_warning_and_the_error() -> None:
    with RawServer(f"{ESCAPES}HTTP/1.1 200 OK\r\n\r\n".encode()) as server:
        result = run_cli_bytes("--max-retries", "1", "--retry-delay", "0", server.url)
    assert result.returncode == 1
    assert_inert(result.stderr)
    warning, error = result.stderr.decode().splitlines()
    assert warning.startswith("ssesync: warning: ")
    assert "reconnecting" in warning
    assert error.startswith("ssesync: error: gave up")
    assert "\\x1b]0;owned\\x07\\x1b[2J" in error


@pytest.mark.parametrize(
    ("output_format", "verbosity"), [("json", "-vv"), ("text", "-vv"), ("json", "-v")]
)
def test_comments_ids_and_data_are_escaped_in_every_format(
    sse_server: SSEServer, output_format: str, verbosity: str
) -> None:
    sse_server.route(
        "/s",
        sse_server.raw(
            [f": {ESCAPES}\n\nid: 7{ESCAPES}\ndata: a\x9b\u2028\x85\x7fb\r\n\n".encode()],
            then="end",  # not a reset, which may discard what the client has not read
        ),
        sse_server.events([{"data": "c"}], then="stall"),
    )
    result = run_cli_bytes(
        verbosity, "--format", output_format, "--retry-delay", "0", "--max-events", "2",
        sse_server.url_for("/s"),
    )
    assert result.returncode == 0, result.stderr
    assert_inert(result.stderr)
    assert_inert(result.stdout)
    stderr = result.stderr.decode()
    assert "Last-Event-ID: 7\\x1b]0;owned" in stderr  # -v says what it resumes with
    if verbosity == "-vv":
        assert "comment: \\x1b]0;owned\\x07\\x1b[2J" in stderr
    if output_format == "json":
        first = json.loads(result.stdout.decode().splitlines()[0])
        assert first == {"event": None, "data": "a\x9b\u2028\x85\x7fb", "id": f"7{ESCAPES}",
                         "retry": None}
    else:
        assert result.stdout.decode().splitlines()[0] == (
            "[message] id=7\\x1b]0;owned\\x07\\x1b[2J a\\x9b\\u2028\\x85\\x7fb"
        )


def test_json_escapes_what_json_dumps_leaves_raw() -> None:
    data = "del\x7f csi\x9b nel\x85 ls\u2028 ps\u2029 tab\t é✓"
    line = format_json(Event(data, "up\x9bdate", "1\x85"))
    assert not re.search("[\x7f\x85\x9b\u2028\u2029]", line)
    assert "\\u009b" in line
    assert "\\u2028" in line
    assert "é✓" in line  # printable text stays readable
    assert json.loads(line) == {"event": "up\x9bdate", "data": data, "id": "1\x85", "retry": None}
    assert format_text(Event("a\u2028b\x9bc")) == "[message] a\\u2028b\\x9bc"


def test_error_lines_and_log_records_are_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    _error(f"broke: {ESCAPES}\nssesync: forged line")
    err = capsys.readouterr().err
    assert err == "ssesync: error: broke: \\x1b]0;owned\\x07\\x1b[2J\\x0assesync: forged line\n"
    formatter = _LogFormatter()
    record = logging.LogRecord(
        "ssesync", logging.DEBUG, __file__, 1, "comment: %s", (ESCAPES,), None
    )
    assert formatter.format(record) == "ssesync: comment: \\x1b]0;owned\\x07\\x1b[2J"
    try:
        raise RuntimeError(ESCAPES)
    except RuntimeError:
        record = logging.LogRecord(
            "ssesync", logging.ERROR, __file__, 1, "hook raised", (), sys.exc_info()
        )
    lines = formatter.format(record).splitlines()
    assert lines[0] == "ssesync: error: hook raised"
    assert lines[-1] == "RuntimeError: \\x1b]0;owned\\x07\\x1b[2J"


# -- requests -----------------------------------------------------------------------


def test_headers_method_and_json_body_reach_the_server(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "ok"}]))
    result = run_cli(
        "--no-reconnect",
        "-H",
        "Authorization: Bearer s3cret",
        "-H",
        "X-Trace:abc",
        "-X",
        "put",
        "--json",
        '{"q": [1, 2]}',
        sse_server.url_for("/s"),
    )
    assert result.returncode == 0, result.stderr
    (request,) = sse_server.requests
    assert request.method == "PUT"
    assert request.headers["Authorization"] == "Bearer s3cret"
    assert request.headers["X-Trace"] == "abc"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "text/event-stream"
    assert json.loads(request.body) == {"q": [1, 2]}


def test_data_from_a_file_is_posted_as_given(sse_server: SSEServer, tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_bytes(b"a=1&b=\xff")
    sse_server.route("/s", sse_server.events([{"data": "ok"}]))
    result = run_cli("--no-reconnect", "-d", f"@{body}", sse_server.url_for("/s"))
    assert result.returncode == 0, result.stderr
    (request,) = sse_server.requests
    assert request.method == "POST"
    assert request.body == b"a=1&b=\xff"


def test_last_event_id_is_sent(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "ok"}]))
    result = run_cli("--no-reconnect", "--last-event-id", "41", sse_server.url_for("/s"))
    assert result.returncode == 0, result.stderr
    assert sse_server.requests[0].last_event_id == "41"


@pytest.mark.parametrize(
    "option",
    [("-H", "X-Name: caf\udce9"), ("--last-event-id", "\udcff7")],
    ids=["-H", "--last-event-id"],
)
def test_an_argument_that_is_not_utf8_is_a_one_line_error(
    sse_server: SSEServer, option: tuple[str, str]
) -> None:
    # On a Latin-1 terminal Python decodes the bytes with surrogateescape; the
    # run used to end with a UnicodeEncodeError traceback from the reader.
    sse_server.route("/s", sse_server.events([{"data": "ok"}]))
    result = run_cli_bytes("--no-reconnect", *option, sse_server.url_for("/s"))
    assert result.returncode == 2
    error = result.stderr.decode("utf-8", "replace").splitlines()[-1]
    assert error.startswith("ssesync: error: ")
    assert "UTF-8" in error
    assert b"Traceback" not in result.stderr
    assert b"caf" not in result.stderr
    assert b"\xff" not in result.stderr
    assert sse_server.connection_count == 0


def test_url_userinfo_is_sent_as_basic_auth_as_curl_does(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "ok"}]))
    url = sse_server.url_for("/s").replace("://", "://alice:s3cret@")
    result = run_cli("-vv", "--no-reconnect", url)
    assert result.returncode == 0, result.stderr
    expected = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    assert sse_server.requests[0].headers.get("authorization") == expected
    assert "s3cret" not in result.stdout + result.stderr
    assert expected[6:] not in result.stdout + result.stderr


def test_reconnects_with_last_event_id_and_logs_it_when_verbose(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}, {"data": "b", "id": "2"}], then="drop"),
        sse_server.events([{"data": "c", "id": "3"}], then="stall"),
    )
    result = run_cli(
        "-v",
        "-H",
        "Authorization: Bearer s3cret",
        "--retry-delay",
        "0",
        "--max-events",
        "3",
        sse_server.url_for("/s"),
    )
    assert result.returncode == 0, result.stderr
    assert [line["data"] for line in json_lines(result.stdout)] == ["a", "b", "c"]
    assert [r.last_event_id for r in sse_server.requests] == [None, "2"]
    assert "connected to " in result.stderr
    assert "Last-Event-ID: 2" in result.stderr
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_first_connection_is_retried_when_max_retries_is_given(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s", sse_server.status(503), sse_server.events([{"data": "finally"}], then="stall")
    )
    result = run_cli(
        "--max-retries", "3", "--retry-delay", "0", "--max-events", "1", sse_server.url_for("/s")
    )
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"] == "finally"
    assert sse_server.connection_count == 2


def test_giving_up_counts_and_words_the_attempts(cli: Cli, sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.events([], then="stall"),  # connects, then times out
        sse_server.status(503),
    )
    url = sse_server.url_for("/s")
    status, _out, err = cli("--max-retries", "1", "--timeout", "0.3", "--retry-delay", "0", url)
    assert status == 1
    assert err.splitlines()[-1].startswith(
        "ssesync: error: gave up after 1 reconnect attempt that opened the stream but "
        "delivered no event: read timed out on "
    )
    # The route now answers 503: a first connection that fails, retried twice.
    status, _out, err = cli("--max-retries", "2", "--retry-delay", "0", url)
    assert status == 1
    assert err.splitlines()[-1] == (
        f"ssesync: error: gave up after 2 failed retries: HTTP 503 from {url}"
    )


def test_read_timeout_without_reconnect_is_an_error(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}], then="stall"))
    result = run_cli("--no-reconnect", "--timeout", "0.3", sse_server.url_for("/s"))
    assert result.returncode == 1
    assert "timed out" in assert_one_error_line(result.stderr)


# -- TLS and proxies ----------------------------------------------------------------


def test_an_untrusted_certificate_fails_with_a_hint(cli: Cli, tls_server: SSEServer) -> None:
    status, _out, err = cli(tls_server.url_for("/s"))
    assert status == 1
    line = assert_one_error_line(err)
    assert "CERTIFICATE_VERIFY_FAILED" in line
    assert "--cacert FILE" in line
    assert "-k" in line


def test_cacert_trusts_a_private_ca(cli: Cli, tls_server: SSEServer, tls: dict[str, Any]) -> None:
    status, out, err = cli("--no-reconnect", "--cacert", tls["ca_path"], tls_server.url_for("/s"))
    assert status == 0, err
    assert json_lines(out)[0]["data"] == "secure"


def test_insecure_skips_verification_without_a_warning(cli: Cli, tls_server: SSEServer) -> None:
    status, out, err = cli("--no-reconnect", "-k", tls_server.url_for("/s"))
    assert status == 0, err
    assert json_lines(out)[0]["data"] == "secure"
    assert err == ""  # no InsecureRequestWarning per connection


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server that requires a client certificate of its CA, and such a certificate."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.configure_trust(context)
    context.verify_mode = ssl.CERT_REQUIRED
    client = ca.issue_cert("client@example.com")
    folder = tmp_path_factory.mktemp("mtls")
    files = {
        "ca": folder / "ca.pem",
        "both": folder / "client.pem",
        "cert": folder / "client.crt",
        "key": folder / "client.key",
    }
    ca.cert_pem.write_to_path(str(files["ca"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(files["both"]))
    files["cert"].write_bytes(b"".join(blob.bytes() for blob in client.cert_chain_pems))
    client.private_key_pem.write_to_path(str(files["key"]))
    with SSEServer(ssl_context=context) as server:
        server.route("/s", server.events([{"data": "mutual"}]))
        yield {"server": server, **{name: str(path) for name, path in files.items()}}


@pytest.mark.parametrize("form", ["FILE", "FILE:KEY"])
def test_cert_sends_a_client_certificate(cli: Cli, mutual_tls: dict[str, Any], form: str) -> None:
    cert = mutual_tls["both"] if form == "FILE" else f"{mutual_tls['cert']}:{mutual_tls['key']}"
    url = mutual_tls["server"].url_for("/s")
    status, out, err = cli("--no-reconnect", "--cacert", mutual_tls["ca"], "--cert", cert, url)
    assert status == 0, err
    assert json_lines(out)[0]["data"] == "mutual"
    refused, _, _ = cli("--no-reconnect", "--cacert", mutual_tls["ca"], url)  # no certificate
    assert refused == 1


@pytest.mark.parametrize(
    ("flag", "content", "message"),
    [
        ("--cacert", None, "--cacert: cannot read"),
        ("--cacert", b"not a certificate", "--cacert: no CA certificate found"),
        ("--cert", None, "--cert: cannot read"),
        ("--cert", b"not a certificate", "--cert: cannot use"),
    ],
)
def test_unusable_tls_files_are_usage_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, content: bytes | None,
    message: str,
) -> None:
    path = tmp_path / "file.pem"
    if content is not None:
        path.write_bytes(content)
    assert main([flag, str(path), "https://127.0.0.1:1/s"]) == 2
    assert message in capsys.readouterr().err


def test_proxy_flag_sends_requests_through_the_proxy(cli: Cli, sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "proxied"}]))
    with ForwardProxy() as proxy:
        address = proxy.url.split("://")[1]  # no scheme: http:// is assumed, as in curl
        status, out, err = cli(
            "-v", "--no-reconnect", "--proxy", f"u:p%40ss@{address}", sse_server.url_for("/s")
        )
    assert status == 0, err
    assert json_lines(out)[0]["data"] == "proxied"
    assert proxy.request_lines == [f"GET {sse_server.url_for('/s')} HTTP/1.1"]
    assert proxy.proxy_authorizations == ["Basic " + base64.b64encode(b"u:p@ss").decode()]
    assert f"using the proxy http://***@{address} (from --proxy)" in err
    assert "p%40ss" not in err


@pytest.mark.parametrize("variable", ["https_proxy", "HTTPS_PROXY"])
def test_https_proxy_from_the_environment_tunnels(
    cli: Cli, tls_server: SSEServer, tls: dict[str, Any], variable: str
) -> None:
    url = tls_server.url_for("/s")
    with ForwardProxy() as proxy:
        status, out, err = cli(
            "--no-reconnect", "--cacert", tls["ca_path"], url, env={variable: proxy.url}
        )
    assert status == 0, err
    assert json_lines(out)[0]["data"] == "secure"
    assert [line.rsplit(" ", 1)[0] for line in proxy.request_lines] == [
        f"CONNECT 127.0.0.1:{tls_server.port}"
    ]


@pytest.mark.parametrize(
    ("env", "proxied"),
    [
        ({"http_proxy": "{proxy}"}, True),
        ({"http_proxy": "{proxy}", "NO_PROXY": "localhost,127.0.0.0/8"}, False),
    ],
)
def test_http_proxy_from_the_environment(
    cli: Cli, sse_server: SSEServer, env: dict[str, str], proxied: bool
) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    with ForwardProxy() as proxy:
        filled = {name: value.format(proxy=proxy.url) for name, value in env.items()}
        status, _out, err = cli("-v", "--no-reconnect", sse_server.url_for("/s"), env=filled)
    assert status == 0, err
    assert len(proxy.request_lines) == (1 if proxied else 0)
    if proxied:
        assert f"using the proxy {proxy.url} (from http_proxy)" in err
    else:
        assert "no proxy for this host (NO_PROXY)" in err


P = "http://proxy:3128"


@pytest.mark.parametrize(
    ("url", "given", "env", "chosen"),
    [
        ("http://h/", None, {"http_proxy": P}, (P, "http_proxy")),
        ("http://h/", None, {"HTTP_PROXY": P}, (P, "HTTP_PROXY")),
        ("http://h/", None, {"http_proxy": P, "HTTP_PROXY": "http://other:1"}, (P, "http_proxy")),
        # In a CGI script HTTP_PROXY may come from a request's Proxy: header.
        ("http://h/", None, {"HTTP_PROXY": P, "REQUEST_METHOD": "GET"}, (None, "http_proxy")),
        ("http://h/", None, {"http_proxy": P, "REQUEST_METHOD": "GET"}, (P, "http_proxy")),
        ("http://h/", None, {"https_proxy": P}, (None, "HTTP_PROXY")),  # for https:// only
        ("https://h/", None, {"https_proxy": P}, (P, "https_proxy")),
        ("https://h/", None, {"HTTPS_PROXY": P}, (P, "HTTPS_PROXY")),
        ("https://h/", None, {"https_proxy": P, "HTTPS_PROXY": "http://other:1"},
         (P, "https_proxy")),
        ("https://h/", None, {"http_proxy": P}, (None, "HTTPS_PROXY")),
        ("HTTPS://h/", None, {"https_proxy": P}, (P, "https_proxy")),
        ("http://h/", None, {"http_proxy": "proxy:3128"}, (P, "http_proxy")),  # http:// assumed
        ("http://h/", None, {"http_proxy": P, "no_proxy": "h"}, (None, "no_proxy")),
        ("http://h/", None, {"http_proxy": P, "NO_PROXY": "h"}, (None, "NO_PROXY")),
        ("http://h/", None, {"http_proxy": P, "no_proxy": "", "NO_PROXY": "h"},
         (None, "NO_PROXY")),
        ("http://h/", None, {"http_proxy": P, "no_proxy": "other"}, (P, "http_proxy")),
        ("http://h/", "http://given:1", {"http_proxy": P}, ("http://given:1", "--proxy")),
        ("http://h/", "", {"http_proxy": P}, (None, "--proxy")),  # --proxy '': none
        # no_proxy applies to --proxy too, as in curl.
        ("http://h/", "http://given:1", {"no_proxy": "*"}, (None, "no_proxy")),
    ],
)
def test_proxy_choice_follows_curl(
    url: str, given: str | None, env: dict[str, str], chosen: tuple[str | None, str]
) -> None:
    assert proxy_for(url, given, env) == chosen


def test_proxy_flag_empty_ignores_the_environment(cli: Cli, sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "x"}]))
    closed = f"http://127.0.0.1:{closed_port()}"  # would fail if it were used
    status, _out, err = cli(
        "--no-reconnect", "--proxy", "", sse_server.url_for("/s"), env={"http_proxy": closed}
    )
    assert status == 0, err


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypass"),
    [
        ("example.com", "example.com", True),
        ("www.example.com", "example.com", True),
        ("www.example.com", ".example.com", True),
        ("notexample.com", "example.com", False),
        ("example.com.org", "example.com", False),
        ("Example.COM", " other.org , EXAMPLE.com ", True),
        ("example.com", "example.com:8080", True),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.33", "10.1.2.3", False),
        ("::1", "::1", True),
        ("::1", "[::1]", True),
        ("fd00::5", "fd00::/8", True),
        ("anything", "*", True),
        ("anything", "", False),
        ("anything", ",,", False),
    ],
)
def test_no_proxy_matching(host: str, no_proxy: str, bypass: bool) -> None:
    netloc = f"[{host}]" if ":" in host else host
    proxy, origin = proxy_for(f"http://{netloc}/", "http://proxy:3128", {"no_proxy": no_proxy})
    assert (proxy is None) == bypass
    assert origin == ("no_proxy" if bypass else "--proxy")


def test_invalid_proxy_from_the_environment_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:s3cret@proxy:31280x")
    assert main(["https://example.com/s"]) == 2
    err = capsys.readouterr().err
    assert "ssesync: error: HTTPS_PROXY: invalid proxy URL http://***@proxy:31280x" in err
    assert "s3cret" not in err


# -- errors ---------------------------------------------------------------------------


def test_404_is_one_error_line_and_status_1(sse_server: SSEServer) -> None:
    result = run_cli("-H", "Authorization: Bearer s3cret", sse_server.url_for("/missing"))
    assert result.returncode == 1
    line = assert_one_error_line(result.stderr)
    assert "404" in line
    assert "s3cret" not in line
    assert result.stdout == ""


def test_refused_connection_is_an_error_even_with_reconnects_on() -> None:
    # A first connection that fails ends the command at once, as in curl.
    result = run_cli(f"http://127.0.0.1:{closed_port()}/stream")
    assert result.returncode == 1
    assert "cannot connect" in assert_one_error_line(result.stderr)


def test_wrong_content_type_is_an_error(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.raw(["<html></html>"], content_type="text/html"))
    result = run_cli(sse_server.url_for("/s"))
    assert result.returncode == 1
    assert "text/html" in assert_one_error_line(result.stderr)


def test_usage_errors_exit_2_from_the_real_process() -> None:
    result = run_cli("--max-events", "many", "http://127.0.0.1:1/")
    assert result.returncode == 2
    assert "ssesync: error: argument --max-events" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the following arguments are required: URL"),
        (["--bogus", "http://x/"], "unrecognized arguments: --bogus"),
        (["--max-events", "0", "http://x/"], "1 or more"),
        (["--timeout", "-1", "http://x/"], "above 0"),
        (["--retry-delay", "soon", "http://x/"], "milliseconds"),
        (["-H", "Authorization Bearer s3cret", "http://x/"], "no colon"),
        (["-H", "Bad Name: s3cret", "http://x/"], "invalid header name 'Bad Name'"),
        (["-X", "GE T", "http://x/"], "invalid HTTP method"),
        (["--json", "{s3cret", "http://x/"], "not valid JSON"),
        (["-d", "a", "--json", "{}", "http://x/"], "not allowed with argument"),
        (["-d", "@/nonexistent/s3cret", "http://x/"], "cannot read"),
        (["ftp://example.com/stream"], "http:// or https://"),
        (["demo", "-H", "A: b"], "`demo` takes only"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("ssesync: error:")]
    assert len(error_lines) == 1, err
    assert message in error_lines[0]
    if "-H" in argv:
        assert "s3cret" not in err  # header values are often credentials


def test_help_and_version_return_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--max-events" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("ssesync ")


# -- ending -----------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a child on Windows")
def test_ctrl_c_exits_130_without_traceback(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "one"}], then="stall"))
    with spawn(sse_server.url_for("/s"), catch_sigint=True) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        reader = LineReader(proc.stdout)
        reader.next_line()  # it is now waiting on the stalled stream
        proc.send_signal(signal.SIGINT)
        assert proc.wait(TIMEOUT) == 130
        reader.join()
        stderr = proc.stderr.read()
    assert "Traceback" not in stderr
    assert stderr == ""


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipe semantics")
def test_closed_stdout_ends_quietly(sse_server: SSEServer) -> None:
    released = threading.Event()

    def handler(conn: StreamConnection) -> None:
        conn.event("one")
        released.wait(TIMEOUT)
        for _ in range(3):
            conn.event("more")
        conn.stall()

    sse_server.route("/s", handler)
    try:
        with spawn(sse_server.url_for("/s")) as proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            assert sse_server.wait_for_requests(1, TIMEOUT)
            proc.stdout.close()  # like `| head -1` exiting
            released.set()
            assert proc.wait(TIMEOUT) == 141
            stderr = proc.stderr.read()
    finally:
        released.set()
    assert stderr == ""


# -- the demo ---------------------------------------------------------------------------


def test_demo_shows_the_reconnect_with_last_event_id() -> None:
    proc = subprocess.run(
        [*CLI, "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # merged, to check the narration comes in order
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        cwd=ROOT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.splitlines()
    assert "Traceback" not in proc.stdout
    event_ids = [line.split()[1] for line in lines if line.startswith("[")]
    assert event_ids == [f"id={n}" for n in range(1, 7)]  # the replayed 4 is skipped
    reconnect = next(i for i, line in enumerate(lines) if "with Last-Event-ID: 4" in line)
    fourth = next(i for i, line in enumerate(lines) if line.startswith("[message] id=4"))
    fifth = next(i for i, line in enumerate(lines) if line.startswith("[update] id=5"))
    assert fourth < reconnect < fifth
    assert any(line.startswith("# server:") and "Last-Event-ID: 4" in line for line in lines)


def test_demo_in_process_prints_json_and_leaves_no_threads(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = set(threading.enumerate())
    assert main(["demo", "--format", "json"]) == 0
    assert set(threading.enumerate()) - before == set()
    out, err = capsys.readouterr()
    assert [line["id"] for line in json_lines(out)] == ["1", "2", "3", "4", "5", "6"]
    assert all(line.startswith("# ") for line in err.splitlines())


# -- the console script -----------------------------------------------------------------


def test_console_script(sse_server: SSEServer) -> None:
    script = shutil.which("ssesync")
    if script is None:
        pytest.skip("the ssesync console script is not installed")
    sse_server.route("/s", sse_server.events([{"data": "via the script"}]))
    result = subprocess.run(
        [script, "--no-reconnect", sse_server.url_for("/s")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        env=cli_env(),
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[0]["data"] == "via the script"


@pytest.mark.parametrize("mark", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f", "\u061c"])
def test_bidirectional_controls_are_escaped_so_text_cannot_be_reordered(mark: str) -> None:
    # A right-to-left override would make the terminal show the rest of the
    # line backwards ("Trojan Source"): it is shown as an escape instead.
    line = format_json(Event(f"pay {mark}0001$"))
    assert mark not in line
    assert json.loads(line)["data"] == f"pay {mark}0001$"
    assert mark not in format_text(Event(f"pay {mark}0001$"))
