"""The workloads: what the server sends and what a correct client must report.

Both sides import this module: the server process generates every body from
it once, up front, and computes the expected tally; each client subprocess
only needs :class:`Tally`. So it imports nothing beyond the standard library.

The tally. A client folds every event it delivers into a CRC-32 of the UTF-8
bytes of the event's *check string* followed by one NUL byte, and counts the
events. The check string is the event's ``data``; on the ``fields`` workload
it is ``type + US + id + US + data`` (US = ``\\x1f``), so a client that gets the
event name or the id wrong is caught too. CRC-32 is streamable, so a client may
fold events in batches: it keeps the check strings of the last few events in a
list and folds ``"\\0".join(batch)`` and one more NUL at once, which costs a few
nanoseconds per event instead of a call per event. The batch is flushed every
``flush_every`` events (one on the 1 MiB workload, so no client holds more
than the event it just got).
"""

from __future__ import annotations

import compileall
import resource
import zlib
from dataclasses import dataclass

__all__ = [
    "BODIES",
    "PEERS",
    "WORKLOADS",
    "Tally",
    "Workload",
    "byte_compile",
    "concurrent_data",
    "latency_data",
    "raise_file_limit",
    "throughput_event",
]

#: The two body kinds the server offers. ``chunked``: one HTTP chunk per
#: event, like a server that flushes after each event. ``close``: no length,
#: ``Connection: close``, the body ends when the server closes the socket.
BODIES = ("chunked", "close")

#: The third-party clients: "fastest peer" is the best of these.
PEERS = ("launchdarkly", "sseclient-py", "requests-sse", "httpx-sse")

#: Event types of the ``fields`` workload, in rotation.
FIELD_TYPES = ("update", "patch", "remove")

_FILL = (
    "lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod "
    "tempor incididunt ut labore et dolore magna aliqua. "
) * 16
#: The shared body of every 1 MiB event: sent from one buffer, never copied.
MIB = 1 << 20
_BIG = ((_FILL * (MIB // len(_FILL) + 1))[: MIB - 9]).encode("ascii")


@dataclass(frozen=True)
class Workload:
    """One workload; ``quick_*`` values are used by ``--quick``."""

    name: str
    kind: str  # "throughput", "latency" or "concurrent"
    title: str
    events: int  # per source
    quick_events: int
    timeout: float  # seconds per client run before it is killed
    quick_timeout: float
    flush_every: int = 1024
    bodies: tuple[str, ...] = BODIES
    fields: bool = False
    sources: int = 1
    quick_sources: int = 1
    interval: float = 0.0  # seconds between events, for timed workloads

    def scaled(self, quick: bool) -> tuple[int, int, float]:
        """``(events per source, sources, timeout)`` for the chosen scale."""
        if quick:
            return self.quick_events, self.quick_sources, self.quick_timeout
        return self.events, self.sources, self.timeout


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("small", "throughput", "~50 B data", 200_000, 20_000, 60, 20, flush_every=4096),
        Workload("1k", "throughput", "1 KiB data", 20_000, 2_000, 60, 20),
        Workload("1m", "throughput", "1 MiB data", 200, 20, 25, 10, flush_every=1),
        Workload(
            "fields",
            "throughput",
            "event:, id:, 3 non-ASCII data: lines",
            50_000,
            5_000,
            60,
            20,
            fields=True,
        ),
        Workload("latency", "latency", "one event every 5 ms", 500, 100, 20, 10, interval=0.005),
        Workload(
            "concurrent",
            "concurrent",
            "started sources, 1 event / 50 ms each",
            100,
            40,
            40,
            20,
            bodies=("chunked",),
            sources=200,
            quick_sources=50,
            interval=0.05,
        ),
        Workload(
            "concurrent2000",
            "concurrent",
            "started sources, 1 event / 500 ms each",
            20,
            6,
            120,
            60,
            bodies=("chunked",),
            sources=2000,
            quick_sources=500,
            interval=0.5,
        ),
    )
}

#: File descriptors a process needs besides its sockets (interpreter, pipes).
SPARE_FILES = 64


def byte_compile(package: str) -> bool:
    """Write the ``.pyc`` files of the ``package`` directory, as installing it would.

    pip byte-compiles what it installs, so every peer is imported from
    ``.pyc`` files; ssesync, run from this checkout, would be compiled from
    source in every client process where the environment says not to write
    bytecode (``PYTHONDONTWRITEBYTECODE``, as on this project's machines),
    which costs each run about 50 ms of CPU and 1.3 MiB of peak memory that
    an installed ssesync never pays. ``compileall`` writes the files
    whatever that variable says. Returns whether every module compiled.
    """
    return bool(compileall.compile_dir(package, quiet=1))


def raise_file_limit(sockets: int) -> tuple[bool, int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` so ``sockets`` more can be open.

    Returns ``(enough, soft, hard)``: whether the limit now allows it, and the
    limits after the attempt. Only the soft limit can be raised, up to the
    hard one; above that it takes privileges (``ulimit -Hn`` as root, or
    ``LimitNOFILE`` of a service), so the caller reports it instead.
    """
    needed = sockets + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft == resource.RLIM_INFINITY or soft >= needed, soft, hard


def throughput_event(workload: str, i: int) -> tuple[list[bytes], list[bytes]]:
    """Event ``i`` of a throughput workload: ``(wire parts, check parts)``.

    The wire parts concatenate to the event block as sent (``data: …\\n\\n``),
    the check parts to the UTF-8 check string. The 1 MiB events share one
    body buffer, so 200 of them cost the server 1 MiB, not 200.
    """
    if workload == "small":
        data = f"{i:08d} {_FILL[i % 64 : i % 64 + 41]}".encode("ascii")
        return [b"data: " + data + b"\n\n"], [data]
    if workload == "1k":
        data = f"{i:08d} {_FILL[i % 64 : i % 64 + 1015]}".encode("ascii")
        return [b"data: " + data + b"\n\n"], [data]
    if workload == "1m":
        head = f"{i:08d} ".encode("ascii")
        return [b"data: " + head, _BIG, b"\n\n"], [head, _BIG]
    if workload == "fields":
        kind = FIELD_TYPES[i % 3]
        lines = (
            f"héllo wörld ☃ №{i} — ça va?",
            "Grüße aus Köln: naïve café, ünïcödé ✓ ½ €",
            f"日本語のテキスト 🚀 {i % 997} ░▒▓",
        )
        block = f"event: {kind}\nid: {i}\n" + "".join(f"data: {line}\n" for line in lines)
        check = f"{kind}\x1f{i}\x1f" + "\n".join(lines)
        return [(block + "\n").encode("utf-8")], [check.encode("utf-8")]
    raise ValueError(f"not a throughput workload: {workload}")


def latency_data(seq: int, stamp_ns: int) -> bytes:
    """The block of latency event ``seq``, stamped with ``time.monotonic_ns()``.

    ``CLOCK_MONOTONIC`` is system-wide on Linux, so the client subtracts this
    stamp from its own ``time.monotonic_ns()`` at delivery.
    """
    return b"data: %06d %d\n\n" % (seq, stamp_ns)


def concurrent_data(i: int) -> bytes:
    """The block of event ``i`` on every concurrent stream (~50 B of data)."""
    return b"data: %05d %s\n\n" % (i, _FILL[i % 64 : i % 64 + 44].encode("ascii"))


class Tally:
    """Counts events and folds their check strings into a CRC-32 in batches.

    Hot loops bind ``tally.batch.append`` once, append each check string and
    call :meth:`flush` when ``len(batch) >= tally.flush_every``; the list is
    cleared in place, so the bound ``append`` stays valid.
    """

    __slots__ = ("batch", "count", "crc", "flush_every")

    def __init__(self, flush_every: int = 1024) -> None:
        self.batch: list = []
        self.count = 0
        self.crc = 0
        self.flush_every = flush_every

    def flush(self) -> None:
        """Fold a batch of ``str`` check strings."""
        batch = self.batch
        if batch:
            self.count += len(batch)
            crc = zlib.crc32("\0".join(batch).encode("utf-8"), self.crc)
            self.crc = zlib.crc32(b"\0", crc)
            batch.clear()

    def flush_bytes(self) -> None:
        """Fold a batch of bytes-like check strings (the raw client's)."""
        batch = self.batch
        if batch:
            self.count += len(batch)
            data = batch[0] if len(batch) == 1 else b"\0".join(batch)
            self.crc = zlib.crc32(b"\0", zlib.crc32(data, self.crc))
            batch.clear()

    def fold_parts(self, parts: list[bytes]) -> None:
        """Fold one event given as check parts (the server's expectation)."""
        crc = self.crc
        for part in parts:
            crc = zlib.crc32(part, crc)
        self.crc = zlib.crc32(b"\0", crc)
        self.count += 1
