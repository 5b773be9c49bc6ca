"""Instructions per event, client by client: a measure this machine's noise cannot move.

On a shared two-core virtual machine the speed of the CPU itself changes by
up to twice from one second to the next (a pure-Python loop took 0.27 s to
0.54 s in back-to-back runs), so the throughput table's spreads run to tens
of percent and a ratio of medians can land on either side of a target.
Counting instructions does not depend on that. For each chosen workload,
body and client, this runs the benchmark's own client code (``clients.py``:
the same reading, the same check strings and CRC) once against the quick
body and once against the full one, each under valgrind's callgrind, and
divides the difference by the difference in events: imports, start-up and
the connection cancel out, what is left is the cost of one event. It is a
measure of CPU work (memory bandwidth and system calls weigh less than in
wall time), printed with the same ratios as the throughput summary.

For the thread-per-source workloads (``--only concurrent,concurrent2000``)
the unit is a source instead: the run with all the workload's sources less
the same run with one, divided by the sources added. That is a connection,
a thread and the source's events; what it measures is the work done, not
how long 2,000 threads waited for the GIL, which swings the wall-clock CPU
of such runs by tens of percent from one run to the next (see
docs/performance.rst).

``python -m tests.benchmarks.instructions`` (needs ``valgrind``; about a
minute per client and cell, two to three for ``concurrent2000``;
``--only``, ``--bodies``, ``--clients`` as in the main benchmark).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from typing import Optional

from .runner import ROOT, ServerProcess, client_spec
from .workloads import PEERS, WORKLOADS, byte_compile

DEFAULT_CLIENTS = "ssesync-iter,ssesync-callbacks,launchdarkly"
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def count(
    server: ServerProcess,
    workload: str,
    body: str,
    client: str,
    quick: bool,
    sources: Optional[int] = None,
) -> int:
    """The instructions one client run takes, start-up included (``sources``: how many)."""
    spec, _, expected = client_spec(WORKLOADS[workload], body, client, quick, server)
    if sources is not None:
        spec["sources"] = expected["sources"] = sources
    done = subprocess.run(
        [
            "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
            sys.executable, "-m", "tests.benchmarks.clients", json.dumps(spec),
        ],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if WORKLOADS[workload].kind == "concurrent":
        delivered = (
            result.get("count") == spec["events"] * spec["sources"]
            and result.get("sources_complete") == spec["sources"]
        )
    else:
        delivered = (result.get("count"), result.get("crc")) == (expected["count"], expected["crc"])
    if not delivered:
        raise RuntimeError(f"{client} on {workload}/{body}: {result}")
    found = _REFS.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-300:]}")
    return int(found.group(1).replace(",", ""))


def per_source(server: ServerProcess, workload: str, client: str) -> float:
    """Instructions per started source: all the workload's sources less one, per source added."""
    sources = WORKLOADS[workload].scaled(False)[1]
    extra = count(server, workload, "chunked", client, False) - count(
        server, workload, "chunked", client, False, sources=1
    )
    return extra / (sources - 1)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.instructions")
    parser.add_argument("--only", default="small,1k,fields")
    parser.add_argument("--bodies", default="chunked,close")
    parser.add_argument("--clients", default=DEFAULT_CLIENTS)
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: nothing to count", file=sys.stderr)
        return 1
    workloads = args.only.split(",")
    clients = args.clients.split(",")
    byte_compile(str(ROOT / "ssesync"))  # imported as an installed package would be
    quick, full = ServerProcess(workloads, quick=True), ServerProcess(workloads, quick=False)
    try:
        for workload in workloads:
            if WORKLOADS[workload].kind == "concurrent":
                costs: dict[str, float] = {}
                for client in clients:
                    costs[client] = per_source(full, workload, client)
                    print(f"  {workload} {client}: {costs[client]:,.0f} instructions per source",
                          file=sys.stderr, flush=True)  # fmt: skip
                print(source_summary(workload, costs), flush=True)
                continue
            events = full.expected[workload]["count"] - quick.expected[workload]["count"]
            for body in args.bodies.split(","):
                per_event: dict[str, float] = {}
                for client in clients:
                    extra = count(full, workload, body, client, False) - count(
                        quick, workload, body, client, True
                    )
                    per_event[client] = extra / events
                    print(f"  {workload}/{body} {client}: {per_event[client]:,.0f} instructions "
                          "per event", file=sys.stderr, flush=True)  # fmt: skip
                print(summary(workload, body, per_event), flush=True)
    finally:
        quick.stop()
        full.stop()
    return 0


def summary(workload: str, body: str, per_event: dict[str, float]) -> str:
    """One line: each client's instructions per event, and the ratios of the targets."""
    parts = [f"{workload + '/' + body:<16}"]
    parts += [f"{client} {cost:,.0f}" for client, cost in per_event.items()]
    peers = {client: cost for client, cost in per_event.items() if client in PEERS}
    iteration = per_event.get("ssesync-iter")
    if iteration and peers:
        best = min(peers, key=peers.__getitem__)
        parts.append(f"iter ÷ {best} {peers[best] / iteration:.2f} (speed ratio, ≥ 2)")
    callbacks = per_event.get("ssesync-callbacks")
    if iteration and callbacks:
        parts.append(f"callbacks ÷ iter {iteration / callbacks:.2f} (≥ 0.9)")
    return "  ".join(parts)


def source_summary(workload: str, per_source: dict[str, float]) -> str:
    """One line: each client's instructions per source, and ssesync's ÷ launchdarkly's."""
    parts = [f"{workload:<16}"]
    parts += [f"{client} {cost:,.0f}" for client, cost in per_source.items()]
    peer = per_source.get("launchdarkly")
    for client in ("ssesync-iter", "ssesync-callbacks"):
        if peer and client in per_source:
            parts.append(f"{client} ÷ launchdarkly {per_source[client] / peer:.2f} (≤ 1)")
    return "  ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
