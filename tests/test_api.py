"""The public surface of API.md: names, Event, ReadyState, exceptions, and options."""

from __future__ import annotations

import copy
import json
import pickle
import ssl
import subprocess
import sys
from collections.abc import Iterator, Mapping

import pytest
import trustme

import ssesync
from ssesync import (
    Event,
    EventSource,
    ReadyState,
    SSEConnectionError,
    SSEError,
    SSEParsingError,
)
from ssesync.testing import SSEServer


def test_public_names_are_exported_once() -> None:
    assert set(ssesync.__all__) == {
        "Comment",
        "Event",
        "EventSource",
        "Hub",
        "ReadyState",
        "SSEClient",
        "SSEConnection",
        "SSEConnectionError",
        "SSEError",
        "SSEParsingError",
        "__version__",
    }
    for name in ssesync.__all__:
        assert getattr(ssesync, name) is not None
    assert set(ssesync.__all__) <= set(dir(ssesync))
    with pytest.raises(AttributeError, match="no attribute 'Hubb'"):
        ssesync.Hubb  # noqa: B018


def test_the_hub_is_loaded_only_when_asked_for() -> None:
    # A program that makes no Hub does not pay for its modules; one that
    # names it, by any spelling, gets it.
    check = (
        "import sys, ssesync\n"
        "assert 'ssesync._hub' not in sys.modules, 'loaded early'\n"
        "source = ssesync.EventSource('http://127.0.0.1:9/')\n"
        "assert 'ssesync._hub' not in sys.modules, 'loaded by a source'\n"
        "from ssesync import Hub\n"
        "from ssesync._hub import Hub as Defined\n"
        "assert Hub is ssesync.Hub is Defined\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_exceptions_form_a_hierarchy_importable_from_their_module() -> None:
    from ssesync.exceptions import SSEConnectionError as ConnectionErrorFromModule
    from ssesync.exceptions import SSEError as ErrorFromModule
    from ssesync.exceptions import SSEParsingError as ParsingErrorFromModule

    assert ConnectionErrorFromModule is SSEConnectionError
    assert ParsingErrorFromModule is SSEParsingError
    assert ErrorFromModule is SSEError
    assert issubclass(SSEConnectionError, SSEError)
    assert issubclass(SSEParsingError, SSEError)
    assert issubclass(SSEError, Exception)


def test_connection_error_keeps_its_context_through_pickle() -> None:
    error = SSEConnectionError(
        "HTTP 503 from http://h/s",
        status=503,
        headers={"Retry-After": "5"},
        url="http://h/s",
        retryable=True,
        retry_after=5.0,
    )
    again = pickle.loads(pickle.dumps(error))
    assert (again.status, again.headers, again.url, again.retryable, again.retry_after) == (
        503,
        {"Retry-After": "5"},
        "http://h/s",
        True,
        5.0,
    )
    assert str(again) == "HTTP 503 from http://h/s"


def test_ready_state_has_the_browser_values() -> None:
    assert [int(s) for s in (ReadyState.CONNECTING, ReadyState.OPEN, ReadyState.CLOSED)] == [
        0,
        1,
        2,
    ]


# -- Event --------------------------------------------------------------------------------


def test_event_attributes_and_type() -> None:
    event = Event("a\nb", "update", "7", 1500, "7")
    assert (event.data, event.event, event.id, event.retry, event.last_event_id) == (
        "a\nb",
        "update",
        "7",
        1500,
        "7",
    )
    assert event.type == "update"
    assert Event("x").type == "message"
    assert Event("x", event="").type == "message"


def test_event_is_a_read_only_mapping_of_four_keys() -> None:
    event = Event("x", "update", "7", None, "7")
    assert isinstance(event, Mapping)
    assert dict(event) == {"data": "x", "event": "update", "id": "7", "retry": None}
    assert event["data"] == "x"
    assert event["event"] == "update"
    assert event.get("id") == "7"
    assert event.get("missing", "default") == "default"
    assert "data" in event
    assert "last_event_id" not in event
    assert len(event) == 4
    assert list(event) == ["data", "event", "id", "retry"]
    with pytest.raises(KeyError):
        event["nope"]


def test_event_is_immutable_hashable_and_picklable() -> None:
    event = Event("x", "update", "7", 10, "7")
    with pytest.raises(AttributeError):
        event.data = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        event["data"] = "changed"  # type: ignore[index]
    assert {event: 1}[Event("x", "update", "7", 10, "7")] == 1
    assert pickle.loads(pickle.dumps(event)) == event
    assert copy.copy(event) == event
    assert "update" in repr(event)


def test_event_json_parses_its_data() -> None:
    assert Event('{"a": [1, 2]}').json() == {"a": [1, 2]}
    with pytest.raises(json.JSONDecodeError):
        Event("not json").json()


# -- EventSource attributes and options -----------------------------------------------


def test_url_and_mutable_headers() -> None:
    source = EventSource("http://127.0.0.1:1/s", headers={"X-A": "1"})
    assert source.url == "http://127.0.0.1:1/s"
    source.headers["x-a"] = "2"  # names are case-insensitive: this replaces X-A
    assert len(source.headers) == 1
    assert source.headers["X-A"] == "2"
    assert source.ready_state is ReadyState.CONNECTING
    assert source.last_event_id == ""


def test_a_float_timeout_applies_to_connect_and_read(sse_server: SSEServer) -> None:
    def stall(conn: object) -> None:
        conn.send_headers()  # type: ignore[attr-defined]
        conn.stall()  # type: ignore[attr-defined]

    sse_server.route("/s", stall)
    with pytest.raises(SSEConnectionError, match="timed out"):
        list(EventSource(sse_server.url_for("/s"), timeout=0.2, reconnect=False))


# -- client certificates ------------------------------------------------------------------


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    folder = tmp_path_factory.mktemp("mtls")
    client = ca.issue_cert("client@example.com")
    paths = {"ca": str(folder / "ca.pem"), "both": str(folder / "client.pem"),
             "cert": str(folder / "cert.pem"), "key": str(folder / "key.pem")}
    ca.cert_pem.write_to_path(paths["ca"])
    client.private_key_and_cert_chain_pem.write_to_path(paths["both"])
    client.cert_chain_pems[0].write_to_path(paths["cert"])
    client.private_key_pem.write_to_path(paths["key"])
    with SSEServer(ssl_context=server_context) as server:
        server.route("/s", server.events([{"data": "hello, client"}]))
        paths["url"] = server.url_for("/s")
        yield paths


def test_client_certificate_as_one_file(mutual_tls: dict[str, str]) -> None:
    source = EventSource(mutual_tls["url"], verify=mutual_tls["ca"], cert=mutual_tls["both"],
                         reconnect=False)
    assert [e.data for e in source] == ["hello, client"]


def test_client_certificate_as_cert_and_key(mutual_tls: dict[str, str]) -> None:
    source = EventSource(mutual_tls["url"], verify=mutual_tls["ca"],
                         cert=(mutual_tls["cert"], mutual_tls["key"]), reconnect=False)
    assert [e.data for e in source] == ["hello, client"]


def test_server_requiring_a_client_certificate_refuses_none(mutual_tls: dict[str, str]) -> None:
    with pytest.raises(SSEConnectionError):
        list(EventSource(mutual_tls["url"], verify=mutual_tls["ca"], reconnect=False))
