"""Options and requests (``ssesync._request``): checked up front, built per attempt.

Every option is checked in the constructor with an error that names it; the
headers of each attempt are those of the moment (a callable is called before
every connection).
"""

from __future__ import annotations

from typing import Any

import pytest

from ssesync import EventSource, SSEClient, SSEConnectionError
from ssesync.testing import SSEServer
from tests.helpers import WAIT, fast


@pytest.mark.parametrize(
    ("options", "error", "names"),
    [
        ({"timeout": -1}, ValueError, "timeout"),
        ({"timeout": (1, 2, 3)}, ValueError, "timeout"),
        ({"timeout": "soon"}, TypeError, "timeout"),
        ({"timeout": (1, -2)}, ValueError, "timeout"),
        ({"retry_delay": -1}, ValueError, "retry_delay"),
        ({"retry_delay": "3s"}, TypeError, "retry_delay"),
        ({"max_retry_delay": float("nan")}, ValueError, "max_retry_delay"),
        ({"max_retries": -1}, ValueError, "max_retries"),
        ({"max_retries": 1.5}, TypeError, "max_retries"),
        ({"max_event_size": 0}, ValueError, "max_event_size"),
        ({"max_event_size": "big"}, TypeError, "max_event_size"),
        ({"method": "GE T"}, ValueError, "method"),
        ({"method": 5}, TypeError, "method"),
        ({"headers": 5}, TypeError, "headers"),
        ({"params": 5}, TypeError, "params"),
        ({"data": 5}, TypeError, "data"),
        ({"data": b"x", "json": {}}, ValueError, "json"),
        ({"last_event_id": 7}, TypeError, "last_event_id"),
        ({"last_event_id": "a\nb"}, ValueError, "last_event_id"),
        ({"reconnect": "yes"}, TypeError, "reconnect"),
        ({"dedupe": 1}, TypeError, "dedupe"),
        ({"strict": None}, TypeError, "strict"),
        ({"keep_connection": "no"}, TypeError, "keep_connection"),
        ({"verify": 1}, TypeError, "verify"),
        ({"cert": 5}, TypeError, "cert"),
        ({"proxy": "ftp://proxy"}, ValueError, "proxy"),
        ({"pool_manager": object()}, TypeError, "pool_manager"),
        ({"dispatcher": 5}, TypeError, "dispatcher"),
    ],
)
def test_every_option_is_checked_in_the_constructor(
    options: dict[str, Any], error: type[Exception], names: str
) -> None:
    with pytest.raises(error, match=names):
        EventSource("http://127.0.0.1:9/", **options)


@pytest.mark.parametrize(
    "options",
    [{"max_retries": 0}, {"max_retry_delay": 0}, {"retry_delay": 0, "max_retry_delay": 0}],
)
def test_zero_retries_and_a_zero_backoff_cap_are_accepted(options: dict[str, Any]) -> None:
    # max_retries=0: give up at the first failure; max_retry_delay=0: no
    # backoff beyond the reconnection time (tests/test_retry.py, test_loop.py).
    source = EventSource("http://127.0.0.1:9/", **options)
    source.close()


def test_an_unknown_option_is_refused_by_sseclient_at_once() -> None:
    # It used to be accepted and to fail only at connect().
    with pytest.raises(TypeError, match="retries"):
        SSEClient(retries=3)
    with pytest.raises(TypeError, match="retries"):
        EventSource("http://127.0.0.1:9/", retries=3)  # type: ignore[call-arg]
    with SSEClient() as client, pytest.raises(ValueError, match="timeout"):
        client.connect("http://127.0.0.1:9/", timeout=-1)


def test_callable_headers_are_called_before_every_connection(sse_server: SSEServer) -> None:
    sse_server.route(
        "/s",
        sse_server.events([{"id": "1", "data": "a"}]),
        sse_server.events([{"id": "2", "data": "b"}]),
        sse_server.status(204),
    )
    tokens = iter(["t1", "t2", "t3"])
    url = sse_server.url_for("/s")
    source = fast(url, headers=lambda: {"Authorization": f"Bearer {next(tokens)}"})
    with source:
        assert [e.data for e in source] == ["a", "b"]
    sent = [r.headers["Authorization"] for r in sse_server.requests_for("/s")]
    assert sent == ["Bearer t1", "Bearer t2", "Bearer t3"]


def test_callable_headers_returning_a_bad_value_is_a_clear_error(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]))
    source = fast(sse_server.url_for("/s"), headers=lambda: {"X-Bad": "a\r\nb"})
    with source, pytest.raises(SSEConnectionError, match="X-Bad"):
        list(source)


# -- text that cannot go out as UTF-8 ------------------------------------------------------------

UNENCODABLE = "s3cret-caf\udce9"  # from bytes that were not UTF-8, decoded with surrogateescape


@pytest.mark.parametrize(
    "options",
    [{"headers": {"X-Token": UNENCODABLE}}, {"last_event_id": UNENCODABLE}],
    ids=["header", "last_event_id"],
)
def test_unencodable_text_is_refused_up_front_without_quoting_it(
    sse_server: SSEServer, options: dict[str, Any]
) -> None:
    # The constructor accepted it, and the reader later died of a UnicodeEncodeError.
    with pytest.raises(ValueError, match="UTF-8") as info:
        EventSource(sse_server.url_for("/s"), **options)
    assert "s3cret" not in str(info.value)
    source = EventSource(sse_server.url_for("/s"))
    with source, pytest.raises(ValueError, match=r"X-Token.*UTF-8"):
        source.headers = {"X-Token": UNENCODABLE}
    assert sse_server.connection_count == 0


def test_callable_headers_with_unencodable_text_are_a_clear_error(sse_server: SSEServer) -> None:
    sse_server.route("/s", sse_server.events([{"data": "a"}]))
    url = sse_server.url_for("/s")
    source = fast(url, headers=lambda: {"X-Token": UNENCODABLE})  # reconnect=True: not retried
    with source, pytest.raises(SSEConnectionError, match=r"X-Token.*UTF-8") as info:
        list(source)
    assert "s3cret" not in str(info.value)
    assert not info.value.retryable
    errors: list[BaseException] = []
    started = fast(url, headers=lambda: {"X-Token": UNENCODABLE})
    started.on_error(lambda source, exc: errors.append(exc))
    with started:
        assert started.start().join(WAIT)
    assert [type(exc) for exc in errors] == [SSEConnectionError]
    assert sse_server.connection_count == 0
