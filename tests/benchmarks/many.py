"""Thousands of streams at once (issue 16): CPU, memory and latency per client.

``python -m tests.benchmarks.many`` runs two cases against one loopback
server process: 5,000 streams with every client, and 200 streams comparing
the hub with launchdarkly-eventsource's thread per source. Each stream gets
``--events`` events, one every ``--interval`` seconds; each event carries the
server's ``time.monotonic_ns()`` taken just before its write (CLOCK_MONOTONIC
is system-wide on Linux), so a client's latency is its own clock minus that
when the event reaches user code. Every client run is a fresh subprocess
(``--client``), with a fresh server (``--serve``); the orchestrator takes the
child's peak RSS and whole-process CPU from ``os.wait4``. The client's
imports happen before its clock starts.

The server is one thread over ``select.epoll``: it accepts, answers every
request with a chunked ``text/event-stream`` response, and sends each due
event with one ``send``; after the last event of a stream, the zero-size
chunk in the same write, then it shuts its side down. It does no work per
event beyond formatting one line, so 5,000 streams cost it little.
"""

from __future__ import annotations

import argparse
import heapq
import importlib
import json
import os
import resource
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any, Callable, Optional

from .workloads import byte_compile

#: client name -> what it is, for the tables.
CLIENTS = {
    "ssesync-hub": "ssesync Hub, one thread",
    "ssesync-threads": "ssesync, a thread per source (start())",
    "launchdarkly": "launchdarkly-eventsource, a thread each",
    "httpx-sse": "httpx-sse on asyncio",
    "aiosonic": "aiosonic SSEClient on asyncio",
}
SMALL_CLIENTS = ("ssesync-hub", "launchdarkly")
#: What each client imports before the clock starts (as in clients.py: imports are not streaming).
IMPORTS = {
    "ssesync-hub": ["ssesync"],
    "ssesync-threads": ["ssesync"],
    "launchdarkly": ["ld_eventsource", "ld_eventsource.config"],
    "httpx-sse": ["asyncio", "httpx", "httpx_sse"],
    "aiosonic": ["asyncio", "aiosonic", "aiosonic.connectors", "aiosonic.pools"],
}


def raise_file_limit(needed: int) -> str:
    """Raise RLIMIT_NOFILE's soft limit to ``needed``; a note if it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return ""
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        return f"RLIMIT_NOFILE hard limit {hard} < {needed} needed"
    return ""


# -- the server ---------------------------------------------------------------------------------

HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
)


def serve(streams: int, events: int, interval: float) -> None:
    raise_file_limit(streams + 256)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4096)
    listener.setblocking(False)
    print(listener.getsockname()[1], flush=True)
    poller = select.epoll()
    poller.register(listener.fileno(), select.EPOLLIN)
    conns: dict[int, list[Any]] = {}  # fd -> [socket, request bytes so far, answered]
    due: list[tuple[float, int, int]] = []  # (when, fd, event number)
    step_ns = int(interval * 1e9)
    while True:
        timeout = max(0.0, due[0][0] - time.monotonic()) if due else -1
        for fd, _ in poller.poll(timeout):
            if fd == listener.fileno():
                while True:
                    try:
                        sock, _ = listener.accept()
                    except BlockingIOError:
                        break
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    conns[sock.fileno()] = [sock, b"", False]
                    poller.register(sock.fileno(), select.EPOLLIN)
                continue
            conn = conns[fd]
            try:
                data = conn[0].recv(65536)
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                conn[0].close()
                del conns[fd]
                continue
            conn[1] += data
            if not conn[2] and b"\r\n\r\n" in conn[1]:
                conn[2] = True
                conn[0].send(HEAD)
                heapq.heappush(due, (time.monotonic() + interval, fd, 0))
        now = time.monotonic()
        while due and due[0][0] <= now:
            when, fd, number = heapq.heappop(due)
            conn = conns.get(fd)
            if conn is None:
                continue  # the client left early
            payload = b"id: %d\ndata: %d\n\n" % (number, time.monotonic_ns())
            chunk = b"%x\r\n%s\r\n" % (len(payload), payload)
            if number + 1 == events:
                chunk += b"0\r\n\r\n"
            try:
                conn[0].send(chunk)
                if number + 1 == events:
                    conn[0].shutdown(socket.SHUT_WR)
            except OSError:
                continue
            if number + 1 < events:
                heapq.heappush(due, (when + step_ns / 1e9, fd, number + 1))


# -- the clients (each in a subprocess of its own) ----------------------------------------------


class Tally:
    """Per source: events seen and events out of order; latencies of all sources."""

    def __init__(self, streams: int) -> None:
        self.states = [[0, 0] for _ in range(streams)]
        self.latencies = array("q")
        self.errors: list[str] = []

    def recorder(self, number: int) -> Callable[[str, Optional[str]], None]:
        state = self.states[number]
        latencies = self.latencies
        clock = time.monotonic_ns

        def record(data: str, event_id: Optional[str]) -> None:
            latencies.append(clock() - int(data))
            if int(event_id or -1) != state[0]:
                state[1] += 1
            state[0] += 1

        return record


def run_ssesync(url: str, tally: Tally, hub: bool) -> None:
    from ssesync import EventSource, Hub

    shared = Hub() if hub else None
    sources = []
    for number in range(len(tally.states)):
        record = tally.recorder(number)
        if shared is not None:
            source = EventSource(url, hub=shared, reconnect=False, timeout=(60, 60))
        else:
            source = EventSource(url, reconnect=False, timeout=(60, 60))
        source.on("message", lambda event, record=record: record(event.data, event.id))
        source.on_error(lambda _source, exc: tally.errors.append(repr(exc)))
        sources.append(source.start())
    for source in sources:
        source.join()
    if shared is not None:
        shared.close()


def run_launchdarkly(url: str, tally: Tally) -> None:
    from ld_eventsource import SSEClient
    from ld_eventsource.config import ConnectStrategy, ErrorStrategy

    def worker(number: int) -> None:
        record = tally.recorder(number)
        try:
            client = SSEClient(
                connect=ConnectStrategy.http(url), error_strategy=ErrorStrategy.always_fail()
            )
            for event in client.events:
                record(event.data, event.id)
            client.close()
        except Exception as exc:
            tally.errors.append(repr(exc))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(len(tally.states))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def run_httpx_sse(url: str, tally: Tally) -> None:
    import asyncio

    import httpx
    from httpx_sse import aconnect_sse

    async def main() -> None:
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=60, limits=limits) as client:

            async def one(number: int) -> None:
                record = tally.recorder(number)
                try:
                    async with aconnect_sse(client, "GET", url) as source:
                        async for event in source.aiter_sse():
                            record(event.data, event.id)
                except Exception as exc:
                    tally.errors.append(repr(exc))

            await asyncio.gather(*(one(n) for n in range(len(tally.states))))

    asyncio.run(main())


def run_aiosonic(url: str, tally: Tally) -> None:
    import asyncio

    from aiosonic import HTTPClient, SSEClient
    from aiosonic.connectors import TCPConnector
    from aiosonic.pools import PoolConfig
    from aiosonic.timeout import Timeouts

    streams = len(tally.states)

    async def main() -> None:
        connector = TCPConnector(
            pool_configs={":default": PoolConfig(size=streams + 16)},
            timeouts=Timeouts(sock_connect=60, sock_read=60, request_timeout=None),
        )
        client = SSEClient(HTTPClient(connector=connector))

        async def one(number: int) -> None:
            record = tally.recorder(number)
            try:
                connection = await client.connect(url, reconnect=False)
                async for event in connection:
                    record(event["data"], event["id"])
                await connection.close()
            except Exception as exc:
                tally.errors.append(repr(exc))

        await asyncio.gather(*(one(n) for n in range(streams)))

    asyncio.run(main())


def client_main(name: str, url: str, streams: int, events: int) -> None:
    note = raise_file_limit(streams + 256)
    for module in IMPORTS.get(name, ()):
        importlib.import_module(module)
    tally = Tally(streams)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    if name in ("ssesync-hub", "ssesync-threads"):
        run_ssesync(url, tally, hub=name == "ssesync-hub")
    elif name == "launchdarkly":
        run_launchdarkly(url, tally)
    elif name == "httpx-sse":
        run_httpx_sse(url, tally)
    elif name == "aiosonic":
        run_aiosonic(url, tally)
    else:
        raise SystemExit(f"unknown client {name!r}")
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    latencies = sorted(tally.latencies)

    def quantile(q: float) -> Optional[float]:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] / 1e9

    complete = sum(1 for seen, bad in tally.states if seen == events and not bad)
    result = {
        "client": name,
        "cpu": cpu,
        "wall": wall,
        "events": len(latencies),
        "complete": complete,
        "out_of_order": sum(bad for _, bad in tally.states),
        "p50": quantile(0.5),
        "p99": quantile(0.99),
        "max": latencies[-1] / 1e9 if latencies else None,
        "errors": tally.errors[:3],
        "error_count": len(tally.errors),
        "note": note,
    }
    print(json.dumps(result), flush=True)


# -- the orchestrator ---------------------------------------------------------------------------


def run_one(name: str, streams: int, events: int, interval: float, limit: float) -> dict[str, Any]:
    me = [sys.executable, "-m", "tests.benchmarks.many"]
    sizes = ["--streams", str(streams), "--events", str(events), "--interval", str(interval)]
    server = subprocess.Popen(
        [*me, "--serve", *sizes],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{server.stdout.readline().strip()}/stream"
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            child = subprocess.Popen(
                [*me, "--client", name, "--url", url, *sizes],
                stdout=out,
                stderr=err,
            )
            killer = threading.Timer(limit, child.kill)
            killer.start()
            _, status, usage = os.wait4(child.pid, 0)
            killer.cancel()
            child.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            lines = out.read().splitlines()
            tail = err.read()[-600:]
    finally:
        server.kill()
        server.wait()
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"client": name}
    result["proc_cpu"] = usage.ru_utime + usage.ru_stime
    result["rss_mib"] = usage.ru_maxrss / 1024
    if child.returncode != 0 or not lines:
        result["failed"] = "TIMEOUT" if child.returncode == -9 else f"exit {child.returncode}"
        result["stderr"] = tail
    return result


def fmt_latency(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def table(title: str, results: list[dict[str, Any]], streams: int, events: int) -> str:
    rows = [
        f"\n{title}\n",
        "| client | CPU s | proc CPU s | peak RSS MiB | p50 latency | p99 latency "
        "| events | sources complete, in order |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "failed" in r and "cpu" not in r:
            rows.append(f"| {r['client']} | {r['failed']} | | {r['rss_mib']:.0f} | | | | |")
            continue
        rows.append(
            f"| {r['client']} | {r['cpu']:.2f} | {r['proc_cpu']:.2f} | {r['rss_mib']:.0f} "
            f"| {fmt_latency(r['p50'])} | {fmt_latency(r['p99'])} "
            f"| {r['events']:,} / {streams * events:,} | {r['complete']:,} / {streams:,} |"
        )
    return "\n".join(rows)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.many", description=__doc__)
    parser.add_argument("--streams", type=int, default=None, help="the large case (5000)")
    parser.add_argument("--small", type=int, default=None, help="the small case (200)")
    parser.add_argument("--events", type=int, default=None, help="events per stream (10)")
    parser.add_argument("--interval", type=float, default=None, help="seconds between (1.0)")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="for the large case")
    parser.add_argument("--small-clients", default=",".join(SMALL_CLIENTS))
    parser.add_argument("--cases", default="large,small", help="large, small or both")
    parser.add_argument("--timeout", type=float, default=240.0, help="per client run")
    parser.add_argument("--quick", action="store_true", help="500 and 50 streams, 4 events")
    parser.add_argument("--json", help="write every run's numbers here")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    streams = args.streams or (500 if args.quick else 5000)
    small = args.small or (50 if args.quick else 200)
    events = args.events or (4 if args.quick else 10)
    interval = args.interval or (0.5 if args.quick else 1.0)
    if args.serve:
        serve(streams, events, interval)
        return 0
    if args.client:
        client_main(args.client, args.url, streams, events)
        return 0
    byte_compile(str(Path(__file__).resolve().parents[2] / "ssesync"))  # as pip does for peers
    cases = [c for c in args.cases.split(",") if c]
    print(f"load average {os.getloadavg()}; {os.cpu_count()} CPUs", file=sys.stderr)
    out: dict[str, Any] = {"events": events, "interval": interval, "cases": {}}
    for case, count, names in (
        ("large", streams, args.clients),
        ("small", small, args.small_clients),
    ):
        if case not in cases:
            continue
        results = []
        for name in names.split(","):
            print(f"{case}: {name} x {count} ...", file=sys.stderr, flush=True)
            result = run_one(name, count, events, interval, args.timeout)
            results.append(result)
            if result.get("failed") or result.get("errors"):
                print(f"  {result.get('failed', '')} {result.get('errors')} "
                      f"{result.get('stderr', '')[-300:]}", file=sys.stderr)  # fmt: skip
        title = f"{count:,} streams x {events} events, one per {interval:g} s per stream"
        print(table(title, results, count, events), flush=True)
        out["cases"][case] = {"streams": count, "results": results}
        by_name = {r["client"]: r for r in results if "cpu" in r}
        hub = by_name.get("ssesync-hub")
        if hub and case == "large" and "aiosonic" in by_name:
            peer = by_name["aiosonic"]
            print(
                f"\nhub / aiosonic: CPU {hub['cpu'] / peer['cpu']:.2f} (target <= 0.6), "
                f"peak RSS {hub['rss_mib'] / peer['rss_mib']:.2f} (<= 1), "
                f"p99 {hub['p99'] / peer['p99']:.2f} (<= 1)"
            )
        if hub and case == "small" and "launchdarkly" in by_name:
            ratio = hub["cpu"] / by_name["launchdarkly"]["cpu"]
            print(f"\nhub / launchdarkly CPU: {ratio:.2f} (target <= 0.5)")
    print(f"\nload average at the end {os.getloadavg()}", file=sys.stderr)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
