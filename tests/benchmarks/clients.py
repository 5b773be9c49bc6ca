"""One benchmark client run: ``python -m tests.benchmarks.clients SPEC_JSON``.

The runner starts this module in a fresh interpreter for every run. It
imports the client's library first, then reads one workload from the server
and prints one JSON line: the tally (event count and CRC, see
``workloads.py``), the wall time and the CPU time of the measured part (from
just before the client is created to just after its last event), and, for the
timed workloads, latencies or per-source results. The runner validates it.

Every client reads with its library's documented, default-configured API;
what each needs to stop at the end of the stream is noted at its opener.
"""

from __future__ import annotations

import importlib
import json
import resource
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from itertools import islice
from operator import attrgetter
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from .workloads import FIELD_TYPES, Tally, raise_file_limit

Opener = Callable[[str], tuple[Iterable[Any], Callable[[], None]]]

#: What each client imports before the clock starts.
IMPORTS: dict[str, tuple[str, ...]] = {
    "raw": (),
    "ssesync-iter": ("ssesync",),
    "ssesync-callbacks": ("ssesync",),
    "launchdarkly": ("ld_eventsource", "ld_eventsource.config"),
    "sseclient-py": ("sseclient", "requests"),
    "requests-sse": ("requests_sse",),
    "httpx-sse": ("httpx", "httpx_sse"),
}
CLIENTS = tuple(IMPORTS)

#: ``(type, id, data)`` attribute names of each library's event object.
FIELDS: dict[str, tuple[str, str, str]] = {
    "ssesync-iter": ("type", "id", "data"),
    "ssesync-callbacks": ("type", "id", "data"),
    "launchdarkly": ("event", "id", "data"),
    "sseclient-py": ("event", "id", "data"),
    # requests-sse's MessageEvent has no per-event id; every event of the
    # fields workload carries one, so last_event_id is that id.
    "requests-sse": ("type", "last_event_id", "data"),
    "httpx-sse": ("event", "id", "data"),
}

#: Read timeout given to the peers that take one: far above any gap we send.
READ_TIMEOUT = 60.0


# -- openers: (events iterable, close) for one stream ---------------------------


def open_ssesync(url: str) -> tuple[Iterable[Any], Callable[[], None]]:
    # reconnect=False: the iterator ends when the server ends the stream.
    from ssesync import EventSource

    source = EventSource(url, reconnect=False)
    return source, source.close


def open_launchdarkly(url: str) -> tuple[Iterable[Any], Callable[[], None]]:
    # ErrorStrategy.always_fail() (also the default): when the stream ends,
    # `events` stops instead of reconnecting.
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy

    client = SSEClient(
        connect=ConnectStrategy.http(url), error_strategy=ErrorStrategy.always_fail()
    )
    return client.events, client.close


def open_sseclient_py(url: str) -> tuple[Iterable[Any], Callable[[], None]]:
    # The documented use: wrap a streaming requests response. It reads the
    # response by iterating it (128-byte reads) and stops at its end.
    import requests
    import sseclient

    response = requests.get(
        url, stream=True, headers={"Accept": "text/event-stream"}, timeout=READ_TIMEOUT
    )
    client = sseclient.SSEClient(response)
    return client.events(), client.close


def open_requests_sse(url: str) -> tuple[Iterable[Any], Callable[[], None]]:
    # requests-sse always reconnects when the stream ends (after sleeping
    # 2 x reconnection_time), so the caller stops after the expected count.
    from requests_sse import EventSource

    source = EventSource(url, timeout=READ_TIMEOUT)
    source.connect(source._max_connect_retry)  # what `with EventSource(...)` does
    return source, source.close


def open_httpx_sse(url: str) -> tuple[Iterable[Any], Callable[[], None]]:
    # iter_sse() ends with the response body. The httpx.Client is made before
    # the clock starts and shared by all sources (see prepare_httpx).
    from httpx_sse import connect_sse

    stack = ExitStack()
    source = stack.enter_context(connect_sse(SHARED["httpx"], "GET", url))
    return source.iter_sse(), stack.close


def prepare_httpx() -> None:
    # httpx.Client() builds an SSL context (tens of ms of CPU) even for http://
    # URLs: that is not streaming cost, so it happens before the clock, once,
    # like an application that keeps one client. No connection limit, so the
    # 200 concurrent streams all run (httpx allows 100 connections by default).
    import httpx

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    SHARED["httpx"] = httpx.Client(timeout=READ_TIMEOUT, limits=limits)


#: Objects a client makes before the clock starts (see prepare_httpx).
SHARED: dict[str, Any] = {}
PREPARE: dict[str, Callable[[], None]] = {"httpx-sse": prepare_httpx}


OPENERS: dict[str, Opener] = {
    "ssesync-iter": open_ssesync,
    "launchdarkly": open_launchdarkly,
    "sseclient-py": open_sseclient_py,
    "requests-sse": open_requests_sse,
    "httpx-sse": open_httpx_sse,
}
#: Clients that never end on their own: read exactly the expected count.
NEEDS_LIMIT = frozenset({"requests-sse"})


# -- the raw-socket baseline ----------------------------------------------------


class RawStream:
    """A bare HTTP/1.1 GET over a socket, cut into event blocks.

    No event objects and no line parsing: ``feed`` de-chunks what ``recv``
    returned (when the body is chunked), then splits it on ``b"\\n\\n"``; the
    blocks are byte strings without their blank line. A partial block is kept
    as a list of pieces and only searched again where new bytes arrived, so a
    1 MiB event costs linear time. This is the practical ceiling for a Python
    client; it assumes the benchmark server's framing (``\\n`` line ends).
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        self.sock = socket.create_connection((host, port))
        self.sock.sendall(
            b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
            b"Cache-Control: no-cache\r\n\r\n" % (parts.path.encode(), host.encode(), port)
        )
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed before the response head")
            head += data
        head, _, self.first = head.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 200 " not in status + b" ":
            raise ConnectionError(f"unexpected status {status!r}")
        self.chunked = b"\r\ntransfer-encoding: chunked" in head.lower()
        self.done = False
        self._pending: list[bytes] = []  # the partial block, in pieces
        self._ends_with_lf = False
        # De-chunking state: data bytes left in the current chunk, CRLF bytes
        # to skip after it, a partial chunk-size line.
        self._left = 0
        self._skip = 0
        self._size_line = b""

    def _dechunk(self, data: bytes) -> bytes:
        if self.done:  # the trailer (or junk) after the last chunk
            return b""
        out: list[bytes] = []
        if self._size_line:
            data = self._size_line + data
            self._size_line = b""
        i, n = 0, len(data)
        while i < n:
            if self._left:
                take = min(self._left, n - i)
                out.append(data[i : i + take])
                i += take
                self._left -= take
                if not self._left:
                    self._skip = 2
            elif self._skip:
                step = min(self._skip, n - i)
                i += step
                self._skip -= step
            else:
                j = data.find(b"\r\n", i)
                if j < 0:
                    self._size_line = data[i:]
                    break
                size = int(data[i:j], 16)
                i = j + 2
                if not size:
                    self.done = True
                    break
                end = i + size
                if end + 2 <= n:  # the whole chunk is here: the fast path
                    out.append(data[i:end])
                    i = end + 2
                else:
                    self._left = size
        return b"".join(out)

    def feed(self, data: bytes) -> list[bytes]:
        """Complete event blocks in ``data`` (plus what came before)."""
        if self.chunked:
            data = self._dechunk(data)
        if not data:
            return []
        pending = self._pending
        blocks: list[bytes] = []
        if self._ends_with_lf and data[:1] == b"\n":  # a blank line across reads
            blocks.append(b"".join(pending)[:-1])
            pending.clear()
            data = data[1:]
        # No line end at all (memchr-fast): a piece of a long block. Else only
        # the new bytes are split; the pending piece never holds b"\n\n".
        parts = data.split(b"\n\n") if b"\n" in data else [data]
        if len(parts) == 1:
            if data:
                pending.append(data)
            self._ends_with_lf = data[-1:] == b"\n"
            return blocks
        if pending:
            pending.append(parts[0])
            parts[0] = b"".join(pending)
            pending.clear()
        tail = parts.pop()
        if tail:
            pending.append(tail)
        self._ends_with_lf = tail[-1:] == b"\n"
        if blocks:
            return blocks + parts
        return parts

    def blocks(self, bufsize: int = 256 * 1024) -> Iterator[list[bytes]]:
        """Lists of complete blocks, one list per ``recv``, until the end."""
        recv = self.sock.recv
        data = self.first
        try:
            while True:
                if data:
                    blocks = self.feed(data)
                    if blocks:
                        yield blocks
                if self.done:
                    return
                data = recv(bufsize)
                if not data:
                    return
        finally:
            self.sock.close()


def _raw_fields(block: bytes) -> bytes:
    """The check string of a block with ``event:``, ``id:`` and ``data:`` lines."""
    kind, ident, data = b"message", b"", []
    for line in block.split(b"\n"):
        name, _, value = line.partition(b": ")
        if name == b"data":
            data.append(value)
        elif name == b"event":
            kind = value
        elif name == b"id":
            ident = value
    return b"%s\x1f%s\x1f%s" % (kind, ident, b"\n".join(data))


# -- the workloads --------------------------------------------------------------


def consume(events: Iterable[Any], tally: Tally, getter: Optional[Callable[[Any], Any]]) -> None:
    """Fold every event into the tally: the hot loop shared by the iterators."""
    batch = tally.batch
    append = batch.append
    flush = tally.flush
    every = tally.flush_every
    if getter is None:
        for event in events:
            append(event.data)
            if len(batch) >= every:
                flush()
    else:
        join = "\x1f".join
        for event in events:
            append(join(getter(event)))
            if len(batch) >= every:
                flush()
    flush()


def throughput(spec: dict[str, Any]) -> dict[str, Any]:
    client, url = spec["client"], spec["url"]
    tally = Tally(spec["flush_every"])
    fields = spec["fields"]
    if client == "raw":
        batch = tally.batch
        extend = batch.extend
        flush_bytes = tally.flush_bytes
        every = tally.flush_every
        for blocks in RawStream(url).blocks():
            if fields:
                extend([_raw_fields(block) for block in blocks])
            elif len(blocks) == 1:  # a big event: no copy of its data
                batch.append(memoryview(blocks[0])[6:])
            else:
                extend([block[6:] for block in blocks])  # b"data: " is 6 bytes
            if len(batch) >= every:
                flush_bytes()
        flush_bytes()
    elif client == "ssesync-callbacks":
        from ssesync import EventSource

        batch = tally.batch
        append = batch.append
        flush = tally.flush
        every = tally.flush_every
        errors: list[str] = []
        source = EventSource(url, reconnect=False)
        source.on_error(lambda _source, exc: errors.append(repr(exc)))
        if fields:
            join = "\x1f".join
            getter = attrgetter(*FIELDS[client])

            def handler(event: Any) -> None:
                append(join(getter(event)))
                if len(batch) >= every:
                    flush()

            for kind in FIELD_TYPES:
                source.on(kind, handler)
        else:

            def handler(event: Any) -> None:
                append(event.data)
                if len(batch) >= every:
                    flush()

            source.on("message", handler)
        source.start()
        source.join()
        source.close()
        flush()
        if errors:
            raise RuntimeError(f"on_error: {errors[:3]}")
    else:
        events, close = OPENERS[client](url)
        if client in NEEDS_LIMIT:
            events = islice(events, spec["events"])
        consume(events, tally, attrgetter(*FIELDS[client]) if fields else None)
        close()
    return {"count": tally.count, "crc": tally.crc}


def latency(spec: dict[str, Any]) -> dict[str, Any]:
    """Receive stamps of every event; the runner gets the percentiles."""
    client, url = spec["client"], spec["url"]
    now = time.monotonic_ns
    stamps: list[int] = []
    datas: list[Any] = []
    if client == "raw":
        for blocks in RawStream(url).blocks():
            stamp = now()
            for block in blocks:
                stamps.append(stamp)
                datas.append(block[6:].decode())
    elif client == "ssesync-callbacks":
        from ssesync import EventSource

        errors: list[str] = []
        source = EventSource(url, reconnect=False)
        source.on_error(lambda _source, exc: errors.append(repr(exc)))

        @source.on("message")
        def handler(event: Any) -> None:
            stamps.append(now())
            datas.append(event.data)

        source.start()
        source.join()
        source.close()
        if errors:
            raise RuntimeError(f"on_error: {errors[:3]}")
    else:
        events, close = OPENERS[client](url)
        if client in NEEDS_LIMIT:
            events = islice(events, spec["events"])
        for event in events:
            stamps.append(now())
            datas.append(event.data)
        close()
    in_order = True
    latencies_us: list[float] = []
    for expected, (stamp, data) in enumerate(zip(stamps, datas)):
        seq, _, sent = data.partition(" ")
        in_order = in_order and int(seq) == expected
        latencies_us.append((stamp - int(sent)) / 1000)
    return {"count": len(stamps), "in_order": in_order, "latencies_us": latencies_us}


def concurrent(spec: dict[str, Any]) -> dict[str, Any]:
    """Many sources at once; each must get events 0..count-1 in order."""
    client, url = spec["client"], spec["url"]
    sources, count = spec["sources"], spec["events"]
    enough, soft, hard = raise_file_limit(sources)
    if not enough:
        raise RuntimeError(f"{sources} sockets need more files than allowed ({soft}, hard {hard})")
    # results[k] = [events seen, events out of order, error or None]
    results: list[list[Any]] = [[0, 0, None] for _ in range(sources)]

    if client == "raw":
        _raw_concurrent(url, results)
    elif client == "ssesync-callbacks":
        from ssesync import EventSource

        started = []
        for k in range(sources):
            source = EventSource(url, reconnect=False)
            state = results[k]

            def handler(event: Any, state: list[Any] = state) -> None:
                if int(event.data[:5]) != state[0]:
                    state[1] += 1
                state[0] += 1

            def on_error(_source: Any, exc: BaseException, state: list[Any] = state) -> None:
                state[2] = repr(exc)

            source.on("message", handler)
            source.on_error(on_error)
            started.append(source.start())
        for source in started:
            source.join()
            source.close()
    else:
        opener = OPENERS[client]
        limited = client in NEEDS_LIMIT

        def worker(state: list[Any]) -> None:
            try:
                events, close = opener(url)
                if limited:
                    events = islice(events, count)
                for event in events:
                    if int(event.data[:5]) != state[0]:
                        state[1] += 1
                    state[0] += 1
                close()
            except Exception as exc:
                state[2] = repr(exc)

        threads = [threading.Thread(target=worker, args=(state,)) for state in results]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    complete = sum(1 for seen, bad, error in results if seen == count and not bad and not error)
    errors = [error for _, _, error in results if error]
    return {
        "count": sum(seen for seen, _, _ in results),
        "sources_complete": complete,
        "out_of_order": sum(bad for _, bad, _ in results),
        "errors": errors[:3],
    }


def _raw_concurrent(url: str, results: list[list[Any]]) -> None:
    # The ceiling for many streams: one thread, one selector, no objects.
    import selectors

    selector = selectors.DefaultSelector()
    for state in results:
        stream = RawStream(url)
        stream.sock.setblocking(False)
        selector.register(stream.sock, selectors.EVENT_READ, (stream, state))
        for block in stream.feed(stream.first):
            _raw_check(block, state)
    open_streams = len(results)
    while open_streams:
        for key, _ in selector.select():
            stream, state = key.data
            data = stream.sock.recv(65536)
            for block in stream.feed(data) if data else ():
                _raw_check(block, state)
            if not data or stream.done:
                selector.unregister(stream.sock)
                stream.sock.close()
                open_streams -= 1


def _raw_check(block: bytes, state: list[Any]) -> None:
    if int(block[6:11]) != state[0]:
        state[1] += 1
    state[0] += 1


RUNNERS = {"throughput": throughput, "latency": latency, "concurrent": concurrent}


def _profiled(
    run: Callable[[dict[str, Any]], dict[str, Any]], spec: dict[str, Any], path: str
) -> dict[str, Any]:
    """``run(spec)`` under cProfile, the threads it starts included.

    A profiler only sees the thread that enabled it, and a started source
    reads in a thread of its own: so every thread started meanwhile runs
    under a profiler of its own, and all are merged into one file.
    """
    import cProfile
    import pstats

    profilers: list[cProfile.Profile] = []
    thread_run = threading.Thread.run

    def profiled_run(thread: threading.Thread) -> None:
        profiler = cProfile.Profile()
        profilers.append(profiler)
        profiler.runcall(thread_run, thread)

    main = cProfile.Profile()
    threading.Thread.run = profiled_run  # type: ignore[method-assign]
    try:
        result = main.runcall(run, spec)
    finally:
        threading.Thread.run = thread_run  # type: ignore[method-assign]
    stats = pstats.Stats(main)
    for profiler in profilers:
        stats.add(profiler)
    stats.dump_stats(path)
    return result


def main(argv: Optional[list[str]] = None) -> int:
    spec = json.loads((argv if argv is not None else sys.argv[1:])[0])
    if spec.get("ssesync_path"):  # a --baseline run: another checkout's ssesync
        sys.path.insert(0, spec["ssesync_path"])
        spec["client"] = spec["client"].split("@", 1)[0]
    try:
        for module in IMPORTS[spec["client"]]:
            importlib.import_module(module)
        if spec["client"] in PREPARE:
            PREPARE[spec["client"]]()
        run = RUNNERS[spec["kind"]]
        profile = spec.get("profile")
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        result = _profiled(run, spec, profile) if profile else run(spec)
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    except BaseException as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        traceback.print_exc()
        return 1
    result["elapsed"] = elapsed
    result["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["minflt"] = after.ru_minflt - before.ru_minflt  # page faults: fresh memory touched
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
