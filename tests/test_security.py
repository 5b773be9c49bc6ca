"""Security: no header injection through event ids, no leaked credentials.

A server controls the ids that ssesync sends back in ``Last-Event-ID``, and a
caller controls the ``last_event_id`` option: neither may ever smuggle another
request header in. Request header values (tokens, cookies), URL user-info
(the request's, a redirect target's, a proxy's) and credential query values
(``?token=``) must never reach a log record, the text or traceback of an
exception, or the command line's output, whatever goes wrong along the way,
also where urllib3 or requests quote them in their own messages.

(TLS verification by default and credentials dropped on a redirect to another
host are tested in ``test_client.py``.)
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any, Callable

import pytest
import requests

from ssesync import EventSource, SSEConnectionError
from ssesync.testing import SSEServer, StreamConnection
from tests.helpers import WAIT, closed_port, fast, run_cli, take

TOKEN = "tok-7f3a9c1e"
COOKIE = "cookie-51d0b2aa"
API_KEY = "key-c4e8d6f2"
QUERY = "query-9b7e2d4c"
PASSWORD = "pw-3e1f8a6b"
LOCATION_PASSWORD = "locpw-5a8e1c3d"
LOCATION_TOKEN = "loctok-2b9f7e41"
PROXY_PASSWORD = "proxypw-8c4d2a6f"
SECRETS = (
    TOKEN, COOKIE, API_KEY, QUERY, PASSWORD, LOCATION_PASSWORD, LOCATION_TOKEN, PROXY_PASSWORD
)
SECRET_HEADERS = {
    "Authorization": f"Bearer {TOKEN}",
    "Cookie": f"session={COOKIE}",
    "X-Api-Key": API_KEY,
}


def header_names(server: SSEServer, index: int) -> set[str]:
    return {name.lower() for name in server.requests[index].headers}


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into: {text!r}"


def everything_about(exc: BaseException) -> str:
    """An exception's str, repr and full printed traceback, causes included."""
    printed = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return "\n".join([str(exc), repr(exc), printed])


# -- ids from the server cannot inject request headers ---------------------------------------


def test_server_id_with_nul_is_ignored_and_never_sent(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.raw([b"id: 1\ndata: a\n\nid: 1\x00X-Evil: 1\ndata: b\n\n"], then="drop"),
        sse_server.events([{"data": "c"}], then="stall"),
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 3)
    assert [(e.data, e.id, e.last_event_id) for e in got] == [
        ("a", "1", "1"),
        ("b", None, "1"),
        ("c", None, "1"),
    ]
    assert sse_server.requests[1].last_event_id == "1"
    assert "x-evil" not in header_names(sse_server, 1)


@pytest.mark.parametrize("newline", [b"\r", b"\n", b"\r\n"], ids=["cr", "lf", "crlf"])
def test_server_id_cannot_carry_a_line_break_into_the_request(
    sse_server: SSEServer, newline: bytes
) -> None:
    # The line break ends the id line: "X-Evil: 1" becomes an unknown field.
    block = b"id: 2" + newline + b"X-Evil: 1" + newline + b"data: a" + newline + newline
    sse_server.route(
        "/s",
        sse_server.raw([block], then="drop"),
        sse_server.events([{"data": "b"}], then="stall"),
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 2)
    assert got[0].id == "2"
    assert sse_server.requests[1].last_event_id == "2"
    assert "x-evil" not in header_names(sse_server, 1)


@pytest.mark.parametrize("separator", ["\u2028", "\x85", "\x0b", "\x0c", "\t"])
def test_server_id_with_other_separators_stays_one_header_value(
    sse_server: SSEServer, separator: str
) -> None:
    server_id = f"3{separator}X-Evil: 1"
    sse_server.route(
        "/s",
        sse_server.raw([f"id: {server_id}\ndata: a\n\n".encode()], then="drop"),
        sse_server.events([{"data": "b"}], then="stall"),
    )
    with fast(sse_server.url_for("/s")) as source:
        got = take(source, 2)
    assert got[0].id == server_id
    assert "x-evil" not in header_names(sse_server, 1)
    assert sse_server.requests[1].last_event_id == server_id.strip()


@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_non_ascii_server_id_is_sent_back_as_utf8(sse_server: SSEServer, transport: str) -> None:
    sse_server.route(
        "/s",
        sse_server.raw(["id: é🎉\ndata: a\n\n"], then="drop"),
        sse_server.events([{"data": "b"}], then="stall"),
    )
    options: dict[str, Any] = {}
    if transport == "requests":
        options["session"] = requests.Session()
    with fast(sse_server.url_for("/s"), **options) as source:
        got = take(source, 2)
    assert [e.last_event_id for e in got] == ["é🎉", "é🎉"]
    # RecordedRequest decodes a header as UTF-8 only when it is valid UTF-8.
    assert sse_server.requests[1].last_event_id == "é🎉"


def test_non_ascii_last_event_id_option_is_sent_as_utf8(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]))
    list(fast(sse_server.url_for("/s"), reconnect=False, last_event_id="ünï-42"))
    assert sse_server.requests[0].last_event_id == "ünï-42"


# -- the last_event_id option is checked --------------------------------------------------------


@pytest.mark.parametrize("bad", ["1\rX-Evil: 1", "1\nX-Evil: 1", "1\x00X-Evil: 1", "\r\n"])
@pytest.mark.parametrize("given_as", ["option", "header"])
def test_last_event_id_with_cr_lf_or_nul_is_refused(bad: str, given_as: str) -> None:
    options: dict[str, Any]
    if given_as == "option":
        options = {"last_event_id": bad}
    else:
        options = {"headers": {"Last-Event-ID": bad}}
    with pytest.raises(ValueError, match="CR, LF or NUL") as info:
        EventSource("http://127.0.0.1:1/s", **options)
    assert "X-Evil" not in str(info.value)


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("mode", ["iteration", "thread"])
def test_header_value_with_a_newline_is_refused_without_echoing_it(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]))
    caplog.set_level(logging.DEBUG, logger="ssesync")
    headers = {"Authorization": f"Bearer {TOKEN}\n"}
    errors: list[BaseException] = []
    try:
        source = fast(sse_server.url_for("/s"), reconnect=False, headers=headers)
        source.on_error(lambda src, exc: errors.append(exc))
        if mode == "thread":
            source.start()
            assert source.join(WAIT)
        else:
            list(source)
    except ValueError as raised:
        errors.append(raised)
    assert errors
    for error in errors:
        assert isinstance(error, ValueError)
        assert_no_secret(everything_about(error))
    assert_no_secret(caplog.text)
    assert sse_server.connection_count == 0


# -- credentials stay out of logs and exceptions -------------------------------------------------


def _scenario(server: SSEServer) -> None:
    """Routes that walk a source through every kind of connect, reconnect and failure."""

    def stall(conn: StreamConnection) -> None:
        conn.send_headers()
        conn.event("before a stall", id="2")
        conn.stall()

    server.route(
        "/s",
        server.events([{"data": "a", "id": "1"}], then="drop"),  # connect, then a reset
        server.status(503, headers={"Retry-After": "0"}),  # a retried status
        stall,  # a read timeout
        server.raw([b"data: " + b"x" * 300], then="stall"),  # a parse error
        server.raw([b"data: a\n\n"], content_type="text/plain"),  # wrong type: the end
    )


@pytest.mark.usefixtures("started_by")
@pytest.mark.parametrize("mode", ["iteration", "thread"])
@pytest.mark.parametrize("transport", ["urllib3", "requests"])
def test_secrets_never_reach_logs_or_exceptions(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture, mode: str, transport: str
) -> None:
    _scenario(sse_server)
    caplog.set_level(logging.DEBUG, logger="ssesync")
    url = sse_server.url_for(f"/s?token={QUERY}")
    options: dict[str, Any] = {
        "headers": SECRET_HEADERS,
        "timeout": (5, 1.0),  # a read timeout, and room for each head on a busy machine
        "max_event_size": 100,
    }
    if transport == "requests":
        options["session"] = requests.Session()
    source = fast(url, **options)
    errors: list[BaseException] = []
    source.on_error(lambda src, exc: errors.append(exc))
    thread_names: set[str] = set()
    source.on_open(lambda src: thread_names.add(threading.current_thread().name))
    if mode == "thread":
        source.start()
        assert source.join(WAIT)
    else:
        with pytest.raises(SSEConnectionError) as info:
            list(source)
        errors.append(info.value)
    # Every stage happened, with the credentials on every request.
    assert sse_server.connection_count == 5
    for request in sse_server.requests:
        assert request.headers.get("authorization") == f"Bearer {TOKEN}"
    assert len(errors) >= 5
    records = [r for r in caplog.records if r.name.startswith("ssesync")]
    assert any("connected to" in r.getMessage() for r in records)
    # ssesync's own log records (urllib3 logs on its own logger, by its own rules):
    logged = "\n".join(logging.Formatter().format(record) for record in records)
    assert_no_secret(logged)
    for exc in errors:
        assert_no_secret(str(exc) + repr(exc) + repr(getattr(exc, "__dict__", {})))
    assert_no_secret(repr(source))
    assert_no_secret(" ".join(thread_names))


def test_query_and_credentials_stay_out_of_the_error_traceback(sse_server: SSEServer) -> None:
    # A program that logs the exception with its traceback prints its causes too.
    sse_server.route("/s", sse_server.status(401))
    url = sse_server.url_for(f"/s?token={QUERY}").replace("://", f"://user:{PASSWORD}@")
    with pytest.raises(SSEConnectionError) as info:
        list(fast(url, headers=SECRET_HEADERS))
    assert info.value.status == 401
    assert_no_secret(everything_about(info.value))


# -- backend text that quotes URLs, Locations and header values ------------------------------------
#
# urllib3 and requests put whatever they were given into their own messages:
# the whole URL in a parse error, a redirect's Location, a refused header
# value, a proxy URL. Each case below makes a backend say so; the error must
# still show none of it, nor its traceback, nor any log record.


def _broken_request(port: int) -> str:
    """A URL with credentials whose port has a typo."""
    return f"http://user:{PASSWORD}@127.0.0.1:{port}x/s?token={QUERY}"


def _location(target: str) -> str:
    return f"http://user:{LOCATION_PASSWORD}@{target}/next?access_token={LOCATION_TOKEN}&page=2"


def _proxy(target: str, scheme: str = "http") -> str:
    return f"{scheme}://user:{PROXY_PASSWORD}@{target}"


# name -> (URL path on the loopback server or a full URL, the Location it
# redirects to if any, EventSource options)
LEAK_CASES: dict[str, tuple[str, str | None, dict[str, Any]]] = {
    "request-port-typo": ("{broken}", None, {}),
    "request-port-out-of-range": (
        f"http://user:{PASSWORD}@127.0.0.1:99999/s?token={QUERY}", None, {}
    ),
    "redirect-port-typo": ("/r", _location("127.0.0.1:{port}x"), {}),
    "redirect-port-out-of-range": ("/r", _location("127.0.0.1:99999"), {}),
    "redirect-unknown-scheme": ("/r", _location("127.0.0.1").replace("http:", "ftp:"), {}),
    "redirect-refused": ("/r", _location("127.0.0.1:{closed}"), {}),
    "redirect-bad-ipv6": ("/r", _location("[::1"), {}),
    "header-with-leading-space": ("/ok", None, {"headers": {"Authorization": f" Bearer {TOKEN}"}}),
    "proxy-port-typo": ("/ok", None, {"proxy": _proxy("127.0.0.1:80x")}),
    "proxy-port-out-of-range": ("/ok", None, {"proxy": _proxy("127.0.0.1:99999")}),
    "proxy-unknown-scheme": ("/ok", None, {"proxy": _proxy("127.0.0.1:1", "socks5")}),
    "proxy-refused": ("/ok", None, {"proxy": _proxy("127.0.0.1:{closed}")}),
}


def _fill(text: str, server: SSEServer, closed: int) -> str:
    return text.format(port=server.port, closed=closed, broken=_broken_request(server.port))


def _leak_case(server: SSEServer, name: str) -> tuple[str, dict[str, Any]]:
    """The URL and options of a case, with its routes set up on ``server``."""
    target, location, options = LEAK_CASES[name]
    closed = closed_port()
    server.route("/ok", server.events([{"data": "fine"}]))
    if location is not None:
        server.route("/r", server.redirect(_fill(location, server, closed)))
    options = {
        key: _fill(value, server, closed) if isinstance(value, str) else value
        for key, value in options.items()
    }
    url = _fill(target, server, closed)
    return (url if "://" in url else server.url_for(url)), options


def everything_shown(
    url: str, options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> tuple[str, list[BaseException]]:
    """All that a source that runs into trouble shows, and the errors themselves.

    Its exceptions (message, repr, printed traceback with causes) whether
    raised from the constructor, the iteration or given to ``on_error``, and
    every record of the ``ssesync`` loggers at DEBUG, formatted with their
    tracebacks.
    """
    caplog.clear()
    caplog.set_level(logging.DEBUG, logger="ssesync")
    errors: list[BaseException] = []
    try:
        source = fast(url, reconnect=False, **options)
        source.on_error(lambda src, exc: errors.append(exc))
        list(source)
    except (ValueError, SSEConnectionError) as exc:
        errors.append(exc)
    records = [r for r in caplog.records if r.name.startswith("ssesync")]
    shown = [everything_about(exc) for exc in errors]
    shown += [logging.Formatter().format(record) for record in records]
    return "\n".join(shown), errors


@pytest.mark.parametrize("transport", ["urllib3", "requests"])
@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_backend_text_never_shows_a_secret(
    sse_server: SSEServer, caplog: pytest.LogCaptureFixture, case: str, transport: str
) -> None:
    url, options = _leak_case(sse_server, case)
    if transport == "requests":
        options["session"] = requests.Session()
    shown, errors = everything_shown(url, options, caplog)
    if case == "header-with-leading-space" and transport == "urllib3":
        assert not errors  # http.client sends it; the server ignores the space
    else:
        assert errors, f"{case} did not fail"
    assert_no_secret(shown)


def test_a_refused_value_is_named_without_quoting_it(sse_server: SSEServer) -> None:
    sse_server.route("/ok", sse_server.events([{"data": "fine"}]))
    with requests.Session() as session:
        session.headers["X-Session-Secret"] = f" {TOKEN}"  # a header ssesync never sees
        source = fast(sse_server.url_for("/ok"), reconnect=False, session=session)
        with pytest.raises(SSEConnectionError, match="header value") as info:
            list(source)
    assert not info.value.retryable
    assert_no_secret(everything_about(info.value))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://u:p@h:8/s?a=1&token=t#frag", "http://***@h:8/s?a=1&token=***"),
        ("https://h/s?Access_Token=t;page=2&X-Amz-Signature=s", "https://h/s?Access_Token=***;"
         "page=2&X-Amz-Signature=***"),
        ("http://h/s?api%5Fkey=k&sk-live-123", "http://h/s?api%5Fkey=***&***"),
        ("http://h/s?=bare&q=", "http://h/s?=***&q="),
        ("http://user@127.0.0.1:80x/s", "http://***@127.0.0.1:80x/s"),
        ("http://[::1]:8080/s", "http://[::1]:8080/s"),
    ],
)
def test_redacted_urls_keep_what_tells_streams_apart(url: str, shown: str) -> None:
    from ssesync._transport import redact_url

    assert redact_url(url) == shown


# -- the command line ---------------------------------------------------------------------------


def test_cli_never_prints_credentials_even_with_debug_logging(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"data": "a", "id": "1"}], then="drop"),
        sse_server.status(503),
        sse_server.status(401),
    )
    url = sse_server.url_for(f"/s?token={QUERY}")
    result = run_cli(
        "-vv",
        "--retry-delay",
        "0",
        "-H",
        f"Authorization: Bearer {TOKEN}",
        "-H",
        f"Cookie: session={COOKIE}",
        "-H",
        f"X-Api-Key: {API_KEY}",
        url,
    )
    assert result.returncode == 1
    assert "401" in result.stderr.splitlines()[-1]
    assert "reconnecting" in result.stderr  # it did log the reconnects
    assert_no_secret(result.stderr)
    assert sse_server.requests[-1].headers.get("authorization") == f"Bearer {TOKEN}"


@pytest.mark.parametrize("case", list(LEAK_CASES))
def test_cli_never_prints_a_secret_from_backend_text(
    sse_server: SSEServer, cli: Callable[..., tuple[int, str, str]], case: str
) -> None:
    url, options = _leak_case(sse_server, case)
    args = ["-vv", "--no-reconnect"]
    for name, value in options.get("headers", {}).items():
        args += ["-H", f"{name}: {value}"]
    if "proxy" in options:
        args += ["--proxy", options["proxy"]]
    status, out, err = cli(*args, url)
    if case != "header-with-leading-space":
        assert status in (1, 2)
        assert "ssesync: error: " in err
    assert_no_secret(out + err)


@pytest.mark.parametrize(
    ("variable", "target"),
    [("HTTPS_PROXY", "127.0.0.1:{closed}"), ("https_proxy", "127.0.0.1:99999"),
     ("HTTPS_PROXY", "127.0.0.1:80x")],
)
def test_cli_never_prints_the_password_of_a_proxy_from_the_environment(
    cli: Callable[..., tuple[int, str, str]], variable: str, target: str
) -> None:
    proxy = _proxy(target.format(closed=closed_port()))
    status, out, err = cli("-vv", "https://127.0.0.1:1/s", env={variable: proxy})
    assert status in (1, 2)
    assert "ssesync: error: " in err
    assert_no_secret(out + err)
