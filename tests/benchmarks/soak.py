"""The soak run: one source for minutes against a server that keeps dropping it.

Run it from the repository root (it is not part of the default test run)::

    python -m tests.benchmarks.soak --minutes 10     # the real soak
    python -m tests.benchmarks.soak --minutes 0.5    # a quick check

One :class:`~ssesync.EventSource` in callbacks mode reads a loopback
:class:`~ssesync.testing.SSEServer` (in this process, on its own threads)
that streams numbered events at a steady rate, honours ``Last-Event-ID``, and
every few seconds breaks the connection: a TCP reset, a clean end, or a reset
in the middle of an event. The handler checks that the ids arrive exactly in
sequence, none lost, none twice.

At the end it reports events per second, reconnects, the resident set size
(``VmRSS``) after a warm-up and at the end, and the threads and file
descriptors left once the source is closed. It exits with status 1 if an
event was lost or duplicated, if RSS grew by more than ``--rss-slack-mb``, or
if threads or descriptors did not return to their baseline; 0 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import threading
import time
from typing import Callable, Optional

from ssesync import Event, EventSource, ReadyState
from ssesync.testing import SSEServer, StreamConnection

MIB = 1024 * 1024


def rss_bytes() -> int:
    """The resident set size of this process, from ``/proc/self/status``."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def encode(n: int) -> bytes:
    return b"id: %d\ndata: soak event %d, some payload to carry\n\n" % (n, n)


class DroppingStream:
    """The route handler: events at ``rate`` per second, broken every ~``drop_every`` s.

    The connections end in turn with a reset, a clean end and a reset in the
    middle of an event, after a random lifetime of 0.5 to 1.5 times ``drop_every``.
    """

    def __init__(self, rate: float, drop_every: float, seed: int) -> None:
        self.batch = max(1, int(rate / 100))  # a hundred writes per second
        self.interval = self.batch / rate
        self.drop_every = drop_every
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.endings = {"reset": 0, "clean end": 0, "reset mid-event": 0}

    def __call__(self, conn: StreamConnection) -> None:
        last = conn.request.last_event_id
        n = int(last) + 1 if last else 1
        with self._lock:
            lifetime = self.drop_every * self._random.uniform(0.5, 1.5)
            # Take turns, so that even a short run sees every kind of ending.
            ending = list(self.endings)[sum(self.endings.values()) % len(self.endings)]
            self.endings[ending] += 1
        conn.send_headers()
        deadline = time.monotonic() + lifetime
        while time.monotonic() < deadline:
            conn.send(b"".join(encode(i) for i in range(n, n + self.batch)))
            n += self.batch
            conn.pause(self.interval)
        if ending == "clean end":
            conn.end()
            return
        if ending == "reset mid-event":
            conn.send(encode(n)[:20])
        conn.drop()


class Consumer:
    """The handlers: checks the sequence and counts what happened."""

    def __init__(self) -> None:
        self.events = 0
        self.expected = 1
        self.out_of_order: list[tuple[int, int]] = []  # (expected, got), the first few
        self.opens = 0
        self.errors = 0
        self.failure: Optional[BaseException] = None

    def on_message(self, event: Event) -> None:
        n = int(event.id or 0)
        if n != self.expected and len(self.out_of_order) < 10:
            self.out_of_order.append((self.expected, n))
        self.expected = n + 1
        self.events += 1

    def on_open(self, source: EventSource) -> None:
        self.opens += 1

    def on_error(self, source: EventSource, exc: BaseException) -> None:
        self.errors += 1
        if source.ready_state is ReadyState.CLOSED or not isinstance(exc, Exception):
            self.failure = exc  # the source gave up, or a handler broke


def settle(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(args: argparse.Namespace) -> int:
    duration = args.minutes * 60
    warmup = min(10.0, max(2.0, duration / 10))
    report_every = max(5.0, min(60.0, duration / 5))
    print(
        f"ssesync soak: {args.minutes:g} min, a drop every ~{args.drop_every:g} s, "
        f"{args.rate:,.0f} events/s offered, RSS slack {args.rss_slack_mb:g} MiB",
        flush=True,
    )
    # Each drop is logged as a warning; only an error that ends the source matters here.
    logging.getLogger("ssesync").setLevel(logging.ERROR)
    rss_launch = rss_bytes()
    stream = DroppingStream(args.rate, args.drop_every, args.seed)
    consumer = Consumer()
    with SSEServer() as server:
        server.route("/soak", stream)
        baseline_threads = threading.active_count()
        baseline_fds = open_fds()
        source = EventSource(
            server.url_for("/soak"),
            retry_delay=args.retry_delay,
            max_retry_delay=1000,
            timeout=(5, 30),
        )
        source.on("message", consumer.on_message)
        source.on_open(consumer.on_open)
        source.on_error(consumer.on_error)
        started = time.monotonic()
        source.start()
        time.sleep(warmup)
        rss_start = rss_bytes()
        next_report = started + report_every
        end = started + max(duration, warmup)
        while time.monotonic() < end and consumer.failure is None:
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
            now = time.monotonic()
            if now >= next_report:
                next_report += report_every
                print(
                    f"  {now - started:7.0f} s  events {consumer.events:>12,}  "
                    f"reconnects {consumer.opens - 1:>5,}  RSS {rss_bytes() / MIB:7.1f} MiB",
                    flush=True,
                )
        elapsed = time.monotonic() - started
        rss_end = rss_bytes()
        source.close()
        closed_cleanly = source.join(5)
        # The server closes its side of the last connection lazily.
        settle(lambda: threading.active_count() <= baseline_threads and open_fds() <= baseline_fds)
        end_threads = threading.active_count()
        end_fds = open_fds()
        server_errors = server.errors

    growth = rss_end - rss_start
    problems = []
    if consumer.failure is not None:
        problems.append(f"the source failed: {consumer.failure!r}")
    if consumer.out_of_order:
        problems.append(f"events lost or duplicated (expected, got): {consumer.out_of_order}")
    if growth > args.rss_slack_mb * MIB:
        problems.append(f"RSS grew by {growth / MIB:.1f} MiB")
    if not closed_cleanly:
        problems.append("the reader thread did not end after close()")
    if end_threads > baseline_threads:
        problems.append(f"{end_threads - baseline_threads} thread(s) left")
    if end_fds > baseline_fds:
        problems.append(f"{end_fds - baseline_fds} descriptor(s) left")
    if server_errors:
        problems.append(f"the server's handlers failed: {server_errors[:3]!r}")

    endings = ", ".join(f"{count} {name}" for name, count in stream.endings.items())
    print("result")
    print(f"  duration       {elapsed:.1f} s")
    print(
        f"  events         {consumer.events:,} ({consumer.events / elapsed:,.0f}/s), "
        f"{'in sequence' if not consumer.out_of_order else 'OUT OF SEQUENCE'}"
    )
    print(f"  reconnects     {consumer.opens - 1:,} ({endings}; {consumer.errors} errors reported)")
    print(
        f"  RSS            {rss_start / MIB:.1f} MiB after a {warmup:.0f} s warm-up "
        f"({rss_launch / MIB:.1f} at launch), {rss_end / MIB:.1f} MiB at the end: "
        f"{growth / MIB:+.1f} MiB (limit +{args.rss_slack_mb:g})"
    )
    print(f"  threads        {end_threads} at the end, {baseline_threads} before the source")
    print(f"  descriptors    {end_fds} at the end, {baseline_fds} before the source")
    for problem in problems:
        print(f"FAIL: {problem}")
    if not problems:
        print("PASS")
    return 1 if problems else 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.soak",
        description="Soak one ssesync source against a loopback server that keeps dropping it.",
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (default: 10)")
    parser.add_argument(
        "--drop-every", type=float, default=3.0, help="seconds between drops, on average (3)"
    )
    parser.add_argument(
        "--rate", type=float, default=5000.0, help="events per second offered (5000)"
    )
    parser.add_argument(
        "--retry-delay", type=float, default=100.0, help="the source's retry_delay in ms (100)"
    )
    parser.add_argument(
        "--rss-slack-mb", type=float, default=8.0, help="RSS growth allowed, in MiB (8)"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the server's choices (1)")
    args = parser.parse_args(argv)
    if args.minutes < 0 or args.rate <= 0 or args.drop_every <= 0:
        parser.error("--minutes must be >= 0, --rate and --drop-every > 0")
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
