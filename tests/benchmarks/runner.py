"""Run the benchmark: start the server, run every client in turn, print tables.

Each run is a fresh ``python -m tests.benchmarks.clients`` subprocess, so no
client inherits another's imports, caches or heap. Runs are interleaved
(A B C A B C …) so that a slow drift of the machine (another process, thermal
state) spreads over all clients instead of landing on one, and each cell is
the median of its runs. A client that fails a run (wrong count or checksum:
``INVALID``; killed at the workload's time limit: ``TIMEOUT``; an exception:
``ERROR``) is not run again on that workload and body: its cell shows the
failure, never a speed.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import platform
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from .chart import Panel, svg
from .clients import CLIENTS, IMPORTS
from .workloads import BODIES, PEERS, WORKLOADS, Workload, byte_compile

ROOT = Path(__file__).resolve().parents[2]
FAILURES = ("INVALID", "TIMEOUT", "ERROR")
LIBRARIES = (
    "ssesync",
    "urllib3",
    "blinker",
    "launchdarkly-eventsource",
    "sseclient-py",
    "requests-sse",
    "requests",
    "httpx-sse",
    "httpx",
)

# The targets of issue 15, shown in the summary (never asserted by tests).
TARGET_VS_PEER = 2.0
TARGET_CALLBACKS = 0.9
TARGET_P50_US = 200.0
#: Moonshots: ssesync's iteration ÷ the raw socket's events/s.
MOONSHOTS = {("small", "chunked"): 0.6, ("small", "close"): 0.25, ("fields", "close"): 0.25}


# -- machine --------------------------------------------------------------------


def _first(path: str, key: str) -> Optional[str]:
    try:
        with open(path) as lines:
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip()


def describe_machine() -> dict[str, Any]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--", "ssesync"):
        commit += " + uncommitted changes in ssesync/"
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "usable_cores": len(affinity(0)) if affinity else os.cpu_count(),
        "memory": _first("/proc/meminfo", "MemTotal"),
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "versions": versions,
        "ssesync_source": f"{ROOT / 'ssesync'} @ {commit or 'unknown commit'}",
        "loadavg_at_start": os.getloadavg(),
    }


def print_machine(machine: dict[str, Any]) -> None:
    print(
        f"CPU      {machine['cpu']}, {machine['cores']} cores "
        f"({machine['usable_cores']} usable), {machine['memory']} RAM"
    )
    print(f"OS       {machine['os']}")
    print(f"Python   {machine['python']}")
    libs = ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v)
    print(f"Versions {libs}")
    missing = [k for k, v in machine["versions"].items() if not v]
    if missing:
        print(f"Missing  {', '.join(missing)}")
    print(f"ssesync  {machine['ssesync_source']}")
    print(
        "Load     {:.2f} {:.2f} {:.2f} (1/5/15 min) at start".format(*machine["loadavg_at_start"])
    )
    print()


# -- the server -----------------------------------------------------------------


class ServerProcess:
    """The loopback server subprocess (see ``server.py``)."""

    def __init__(self, workloads: list[str], quick: bool) -> None:
        command = [
            sys.executable,
            "-m",
            "tests.benchmarks.server",
            "--workloads",
            ",".join(workloads),
        ]
        if quick:
            command.append("--quick")
        self.proc = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            raise RuntimeError("the benchmark server did not start")
        info = json.loads(line)
        self.port: int = info["port"]
        self.expected: dict[str, dict[str, int]] = info["expected"]
        self.setup_s: float = info["setup_s"]
        #: Workloads the server cannot serve here, with the reason (the file limit).
        self.unavailable: dict[str, str] = info.get("unavailable", {})

    def url(self, workload: str, body: str) -> str:
        return f"http://127.0.0.1:{self.port}/{workload}/{body}"

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # the server exits when its stdin closes
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- one run --------------------------------------------------------------------


def run_process(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one client subprocess; its JSON result plus rusage, or a failure."""
    command = [sys.executable, "-m", "tests.benchmarks.clients", json.dumps(spec)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        pidfd = os.pidfd_open(proc.pid) if hasattr(os, "pidfd_open") else None
        waited: dict[str, Any] = {}

        def wait() -> None:
            # os.wait4 gives this child's own rusage (CPU, peak RSS).
            _, status, usage = os.wait4(proc.pid, 0)
            waited["status"], waited["usage"] = status, usage

        waiter = threading.Thread(target=wait, daemon=True)
        waiter.start()
        waiter.join(timeout)
        timed_out = waiter.is_alive()
        if timed_out:
            # A pidfd cannot hit a recycled pid, even if the child just ended.
            if pidfd is not None:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
            waiter.join()
        if pidfd is not None:
            os.close(pidfd)
        proc.returncode = os.waitstatus_to_exitcode(waited["status"])
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    usage = waited["usage"]
    process = {
        "rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
        "cpu_process": usage.ru_utime + usage.ru_stime,
    }
    if timed_out:
        return {"status": "TIMEOUT", "detail": f"killed after {timeout:g} s", **process}
    lines = stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        result = {"error": f"exit status {proc.returncode}, no result"}
    if "error" in result or proc.returncode:
        tail = stderr.strip().splitlines()[-6:]
        return {"status": "ERROR", "detail": result.get("error", ""), "stderr": tail, **process}
    return {"status": "ok", **result, **process}


def validate(workload: Workload, run: dict[str, Any], expected: dict[str, Any]) -> None:
    """Mark ``run`` INVALID unless it delivered exactly the expected events."""
    if run["status"] != "ok":
        return
    problem = ""
    if workload.kind == "throughput":
        if run["count"] != expected["count"] or run["crc"] != expected["crc"]:
            problem = (
                f"{run['count']} events, crc {run['crc']:08x}; expected "
                f"{expected['count']}, crc {expected['crc']:08x}"
            )
    elif workload.kind == "latency":
        if run["count"] != expected["count"] or not run["in_order"]:
            problem = (
                f"{run['count']} events (expected {expected['count']}), in order: {run['in_order']}"
            )
    elif run["sources_complete"] != expected["sources"]:
        problem = (
            f"{run['sources_complete']}/{expected['sources']} sources complete, "
            f"{run['count']} events, {run['out_of_order']} out of order, "
            f"errors {run['errors']}"
        )
    if problem:
        run["status"] = "INVALID"
        run["detail"] = problem


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def measures(workload: Workload, run: dict[str, Any], stream_bytes: int) -> None:
    """Derive the table's numbers of one valid run."""
    if workload.kind == "throughput":
        run["events_per_s"] = run["count"] / run["elapsed"]
        run["mb_per_s"] = stream_bytes / run["elapsed"] / 1e6
    elif workload.kind == "latency":
        latencies = run.pop("latencies_us")
        run["p50_us"] = _percentile(latencies, 0.50)
        run["p99_us"] = _percentile(latencies, 0.99)
        run["max_us"] = max(latencies)


# -- a cell: one client on one workload and body ----------------------------------


@dataclass
class Cell:
    workload: str
    body: str
    client: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        for run in self.runs:
            if run["status"] != "ok":
                return str(run["status"])
        return "ok" if self.runs else "skipped"

    @property
    def failed(self) -> bool:
        return self.status in FAILURES

    def median(self, key: str) -> Optional[float]:
        if self.status != "ok":
            return None
        return statistics.median(run[key] for run in self.runs)

    def spread(self, key: str) -> Optional[float]:
        """(max - min) / median of ``key`` over the runs: how noisy the cell is."""
        if self.status != "ok" or len(self.runs) < 2:
            return None
        values = [run[key] for run in self.runs]
        middle = statistics.median(values)
        return (max(values) - min(values)) / middle if middle else None

    def extremes(self, key: str) -> str:
        """The lowest and highest ``key`` over the runs, as ``low to high``."""
        if self.status != "ok" or not self.runs:
            return "?"
        values = [run[key] for run in self.runs]
        return f"{min(values):.1f} to {max(values):.1f}"

    def summary(self, workload: Workload) -> dict[str, Any]:
        """The cell's medians (the table's numbers)."""
        if self.status != "ok":
            return {}
        keys = {
            "throughput": ("events_per_s", "mb_per_s", "elapsed", "cpu", "rss_mib"),
            "latency": ("p50_us", "p99_us", "max_us", "cpu", "rss_mib"),
            "concurrent": ("count", "elapsed", "cpu", "cpu_process", "rss_mib"),
        }[workload.kind]
        return {key: self.median(key) for key in keys}


def _primary(workload: Workload) -> tuple[str, bool]:
    """The figure ratios compare, and whether higher is better."""
    return {
        "throughput": ("events_per_s", True),
        "latency": ("p50_us", False),
        "concurrent": ("cpu", False),
    }[workload.kind]


def ratios(workload: Workload, cells: dict[str, Cell]) -> tuple[Optional[str], dict[str, Any]]:
    """Per client: its figure / the best peer's and / raw's; and the best peer."""
    key, higher = _primary(workload)
    values = {name: cell.summary(workload).get(key) for name, cell in cells.items()}
    peers = {name: v for name, v in values.items() if name in PEERS and v}
    best = (max if higher else min)(peers, key=peers.__getitem__) if peers else None
    out = {}
    for name, value in values.items():
        out[name] = {
            "vs_best_peer": value / values[best] if value and best else None,
            "vs_raw": value / values["raw"] if value and values.get("raw") else None,
        }
    return best, out


# -- output ---------------------------------------------------------------------


def _fmt(value: Optional[float], spec: str) -> str:
    return "-" if value is None else format(value, spec)


def table(workload: Workload, body: str, count: int, sources: int, cells: dict[str, Cell]) -> str:
    best, rel = ratios(workload, cells)
    if workload.kind == "throughput":
        what = f"{count:,} events, {workload.title}"
        head = ("client", "events/s", "MB/s", "CPU s", "RSS MiB", "x best peer", "x raw")
    elif workload.kind == "latency":
        what = f"{count:,} events, {workload.title}; receive - send stamp"
        head = ("client", "p50 ms", "p99 ms", "max ms", "RSS MiB", "p50 / best peer", "p50 / raw")
    else:
        what = (
            f"{sources} sources x {count} events, {workload.title}; "
            "CPU and RSS of the whole client process"
        )
        head = (
            "client",
            "events",
            "wall s",
            "CPU s",
            "proc CPU s",
            "RSS MiB",
            "CPU / best peer",
            "CPU / raw",
        )
    head = (*head, "spread")
    title = f"== {workload.name} / {body}: {what} (best peer: {best or '-'})"
    rows = [head]
    key = _primary(workload)[0]
    for name, cell in cells.items():
        s = cell.summary(workload)
        r = rel[name]
        if cell.status in FAILURES:
            rows.append((name, cell.status) + ("",) * (len(head) - 2))
            continue
        if cell.status != "ok":
            continue
        ratio = (
            _fmt(r["vs_best_peer"], ".2f"),
            _fmt(r["vs_raw"], ".2f"),
            _fmt(cell.spread(key), ".0%"),
        )
        if workload.kind == "throughput":
            rows.append(
                (
                    name,
                    f"{s['events_per_s']:,.0f}",
                    f"{s['mb_per_s']:.1f}",
                    f"{s['cpu']:.2f}",
                    f"{s['rss_mib']:.1f}",
                    *ratio,
                )
            )
        elif workload.kind == "latency":
            rows.append(
                (
                    name,
                    f"{s['p50_us'] / 1000:.3f}",
                    f"{s['p99_us'] / 1000:.3f}",
                    f"{s['max_us'] / 1000:.3f}",
                    f"{s['rss_mib']:.1f}",
                    *ratio,
                )
            )
        else:
            rows.append(
                (
                    name,
                    f"{s['count']:,.0f}",
                    f"{s['elapsed']:.2f}",
                    f"{s['cpu']:.2f}",
                    f"{s['cpu_process']:.2f}",
                    f"{s['rss_mib']:.1f}",
                    *ratio,
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [title]
    for row in rows:
        cols = [row[0].ljust(widths[0])]
        cols += [value.rjust(width) for value, width in zip(row[1:], widths[1:])]
        lines.append("  " + "  ".join(cols).rstrip())
    notes = [
        f"  {name}: {cell.status}: {run.get('detail', '')}"
        for name, cell in cells.items()
        for run in cell.runs[-1:]
        if cell.status in ("INVALID", "ERROR")
    ]
    return "\n".join(lines + notes)


def _suffixes(cells: dict[str, Cell]) -> list[str]:
    """``""`` for the current ssesync, then ``"@REV"`` for each ``--baseline``."""
    found = sorted({name.partition("@")[2] for name in cells if "@" in name})
    return ["", *(f"@{rev}" for rev in found)]


def _events(cells: dict[str, Cell], name: str) -> Optional[float]:
    cell = cells.get(name)
    return cell.median("events_per_s") if cell is not None else None


def _over(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return a / b if a and b else None


def summary(results: dict[tuple[str, str], dict[str, Cell]]) -> list[str]:
    """ssesync against the targets of issue 15: the ratios of its table.

    Per throughput workload and body: ssesync's iteration ÷ the fastest
    peer, callbacks ÷ iteration, and iteration ÷ the raw socket (the
    moonshots); then, for the many-source workloads, thread-per-source
    CPU and peak RSS ÷ launchdarkly-eventsource's. With ``--baseline``,
    each ratio is shown for every revision, current first.
    """
    def mark(value: Optional[float], ok: bool) -> str:
        return "   -   " if value is None else f"{value:5.2f} {'ok' if ok else '!!'}"

    lines = [
        "== summary: the targets of issue 15 (ok = met, !! = missed)",
        f"  iteration ÷ fastest peer ≥ {TARGET_VS_PEER}, callbacks ÷ iteration ≥ "
        f"{TARGET_CALLBACKS}; moonshots: small/chunked ≥ {MOONSHOTS[('small', 'chunked')]} "
        f"x raw, small and fields on close ≥ {MOONSHOTS[('small', 'close')]} x raw",
    ]
    throughput = [(key, cells) for key, cells in results.items() if WORKLOADS[key[0]].kind
                  == "throughput"]  # fmt: skip
    if throughput:
        suffixes = _suffixes(throughput[0][1])
        head = "  {:<18} {:<14}".format("workload / body", "fastest peer")
        for suffix in suffixes:
            label = f"ssesync{suffix}"
            head += f" | {label + ': iter÷peer':>22} {'cb÷iter':>8} {'iter÷raw':>8}"
        lines.append(head)
        for (name, body), cells in throughput:
            best, _ = ratios(WORKLOADS[name], cells)
            row = f"  {name + ' / ' + body:<18} {best or '-':<14}"
            for suffix in suffixes:
                it = _events(cells, "ssesync-iter" + suffix)
                cb = _events(cells, "ssesync-callbacks" + suffix)
                vs_peer = _over(it, _events(cells, best) if best else None)
                vs_iter = _over(cb, it)
                vs_raw = _over(it, _events(cells, "raw"))
                moon = MOONSHOTS.get((name, body))
                raw_text = "-" if vs_raw is None else f"{vs_raw:.2f}"
                if moon is not None and vs_raw is not None:
                    raw_text += " ok" if vs_raw >= moon else " !!"
                row += (
                    f" | {mark(vs_peer, (vs_peer or 0) >= TARGET_VS_PEER):>22}"
                    f" {mark(vs_iter, (vs_iter or 0) >= TARGET_CALLBACKS):>8}"
                    f" {raw_text:>8}"
                )
            lines.append(row)
    many = [(key, cells) for key, cells in results.items() if WORKLOADS[key[0]].kind
            == "concurrent"]  # fmt: skip
    if many:
        lines.append(
            "  thread per source (ssesync-callbacks: start() on each source) ÷ launchdarkly:"
            " CPU and peak RSS, both ≤ 1"
        )
        for (name, _body), cells in many:
            peer = cells.get("launchdarkly")
            ld_cpu = peer.median("cpu") if peer else None
            ld_rss = peer.median("rss_mib") if peer else None
            for client, cell in cells.items():
                if not client.startswith("ssesync"):
                    continue
                cpu, rss = cell.median("cpu"), cell.median("rss_mib")
                cpu_r, rss_r = _over(cpu, ld_cpu), _over(rss, ld_rss)
                delivered = (
                    "every event delivered" if cell.status == "ok" else f"{cell.status}"
                )
                # The CPU of thousands of threads swings with GIL contention
                # from run to run (docs/performance.rst): the range shows it.
                spread = f"(runs {cell.extremes('cpu')} ÷ {peer.extremes('cpu')})" if peer else ""
                lines.append(
                    f"  {name:<15} {client:<26} CPU {_fmt(cpu, '.2f')} s ÷ "
                    f"{_fmt(ld_cpu, '.2f')} = {mark(cpu_r, (cpu_r or 9) <= 1.0)} {spread}  RSS "
                    f"{_fmt(rss, '.1f')} MiB ÷ {_fmt(ld_rss, '.1f')} = "
                    f"{mark(rss_r, (rss_r or 9) <= 1.0)}   {delivered}"
                )
    for (name, body), cells in results.items():
        if WORKLOADS[name].kind == "latency":
            for client, cell in cells.items():
                if client.startswith("ssesync"):
                    p50 = cell.median("p50_us")
                    lines.append(
                        f"  {name}/{body}: {client} p50 = {_fmt(p50, '.0f')} µs"
                        f" [≤ {TARGET_P50_US:.0f} µs: "
                        f"{'?' if p50 is None else 'ok' if p50 <= TARGET_P50_US else '!!'}]"
                    )
    return lines


# -- main -----------------------------------------------------------------------


def available_clients() -> dict[str, bool]:
    """Which clients can run here: a peer only when its modules are importable."""
    found = {}
    for name, modules in IMPORTS.items():
        found[name] = all(importlib.util.find_spec(m.split(".")[0]) for m in modules)
    return found


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description="Benchmark ssesync against a raw socket and the peer SSE clients.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smaller workloads and one run each: a sanity check (~1 min)",
    )
    parser.add_argument(
        "--only", metavar="WORKLOAD[,…]", help=f"run only these workloads: {', '.join(WORKLOADS)}"
    )
    parser.add_argument(
        "--clients", metavar="NAME[,…]", help=f"run only these clients: {', '.join(CLIENTS)}"
    )
    parser.add_argument(
        "--bodies",
        metavar="BODY[,…]",
        default=",".join(BODIES),
        help="body kinds: chunked, close (default: both)",
    )
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        help="runs per client, the median is shown (default 3; 1 with --quick)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds before a client run is killed (default: per workload)",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="where to write all results (default: a new file in the temp dir)",
    )
    parser.add_argument(
        "--profile",
        metavar="CLIENT",
        help="instead of the tables: run CLIENT once per selected workload "
        "and body under cProfile and print the top functions",
    )
    parser.add_argument(
        "--profile-sort",
        default="tottime",
        metavar="KEY",
        help="pstats sort key for --profile (default tottime)",
    )
    parser.add_argument("--profile-top", type=int, default=25, metavar="N")
    parser.add_argument(
        "--chart",
        metavar="PATH",
        help="where to write the SVG chart of events/s (default: docs/_static/benchmark.svg; "
        "with --quick, a new file in the temp dir)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV[,REV]",
        help="also run ssesync's clients from git revision REV (checked out in a temporary "
        "worktree), each beside its current version, to compare versions in one run",
    )
    args = parser.parse_args(argv)
    args.runs = args.runs or (1 if args.quick else 3)
    return args


def _split(value: Optional[str], allowed: tuple[str, ...], what: str) -> list[str]:
    if not value:
        return list(allowed)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (choose from {', '.join(allowed)})")
    return [name for name in allowed if name in names]  # the canonical order


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    workloads = _split(args.only, tuple(WORKLOADS), "workload")
    bodies = _split(args.bodies, BODIES, "body kind")
    found = available_clients()
    if args.profile:
        _split(args.profile, CLIENTS, "client")
        clients = [args.profile]
    else:
        clients = _split(args.clients, CLIENTS, "client")
    missing = [name for name in clients if not found[name]]
    clients = [name for name in clients if found[name]]
    if not clients:
        raise SystemExit("no client to run (missing: " + ", ".join(missing) + ")")
    if args.baseline and not args.profile:
        for revision in args.baseline.split(","):
            clients = _with_baseline(clients, revision)

    machine = describe_machine()
    print_machine(machine)
    for tree in [ROOT, *BASELINES.values()]:
        byte_compile(str(tree / "ssesync"))  # as pip does for the peers
    if missing:
        print(f"Not installed, skipped: {', '.join(missing)} (pip install -e '.[bench]')\n")
    started = time.time()
    server = ServerProcess(workloads, args.quick)
    try:
        if args.profile:
            _profile(args, server, workloads, bodies)
            return 0
        results = _run_all(args, server, workloads, bodies, clients)
    finally:
        server.stop()
    wall = time.time() - started
    for line in summary(results):
        print(line)
    chart_path = write_chart(args, machine, results)
    path = (
        Path(args.json)
        if args.json
        else Path(tempfile.gettempdir()) / time.strftime("ssesync-bench-%Y%m%d-%H%M%S.json")
    )
    report = {
        "machine": {**machine, "loadavg_at_end": os.getloadavg()},
        "command": "python -m tests.benchmarks " + " ".join(sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "runs": args.runs,
        "wall_s": wall,
        "server_setup_s": server.setup_s,
        "results": [
            {
                "workload": name,
                "body": body,
                "client": client,
                "status": cell.status,
                "median": cell.summary(WORKLOADS[name]),
                **ratios(WORKLOADS[name], cells)[1][client],
                "best_peer": ratios(WORKLOADS[name], cells)[0],
                "runs": cell.runs,
            }
            for (name, body), cells in results.items()
            for client, cell in cells.items()
        ],
    }
    path.write_text(json.dumps(report, indent=1))
    print(f"\nLoad {os.getloadavg()[0]:.2f} at end; wall time {wall / 60:.1f} min")
    print(f"JSON: {path}")
    if chart_path is not None:
        print(f"Chart: {chart_path}")
    return 0


#: Where a full run's chart goes: the docs' performance page shows it.
CHART = ROOT / "docs" / "_static" / "benchmark.svg"


def write_chart(
    args: argparse.Namespace,
    machine: dict[str, Any],
    results: dict[tuple[str, str], dict[str, Cell]],
) -> Optional[Path]:
    """The SVG of events/s per throughput workload (see ``chart.py``); its path.

    A full run writes ``docs/_static/benchmark.svg`` (unless ``--chart``
    says otherwise); a ``--quick`` one, a file in the temp dir, so a sanity
    run never replaces the docs' chart.
    """
    order = ["ssesync-iter", "ssesync-callbacks", *PEERS, "raw"]
    panels: list[Panel] = []
    for (name, body), cells in results.items():
        workload = WORKLOADS[name]
        if workload.kind != "throughput":
            continue
        ranked = sorted(
            cells.items(), key=lambda item: (order.index(item[0].split("@")[0]), item[0])
        )
        bars = [  # the checkout's ssesync beside the peers: --baseline bars stay out
            (client, cell.median("events_per_s"))
            for client, cell in ranked
            if "@" not in client and (cell.status == "ok" or cell.failed)
        ]
        if bars:
            panels.append((f"{workload.title}, {body}", bars))
    if not panels:
        return None
    if args.chart:
        path = Path(args.chart)
    elif args.quick:
        path = Path(tempfile.gettempdir()) / time.strftime("ssesync-bench-%Y%m%d-%H%M%S.svg")
    else:
        path = CHART
    caption = (
        f"{machine['python']}, {machine['cpu']} ({machine['usable_cores']} cores), "
        f"ssesync {machine['ssesync_source'].rpartition('@ ')[2]}; "
        f"median of {args.runs} run{'s' if args.runs > 1 else ''}"
        f"{' (--quick)' if args.quick else ''}; loopback, "
        + time.strftime("%Y-%m-%d")
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(svg(panels, caption))
    return path


#: Where the ``--baseline`` revision is checked out, by revision.
BASELINES: dict[str, Path] = {}


def _with_baseline(clients: list[str], revision: str) -> list[str]:
    """Check ``revision`` out in a temporary worktree; add its ssesync clients."""
    where = Path(tempfile.mkdtemp(prefix="ssesync-baseline-")) / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(where), revision],
        cwd=ROOT, check=True, capture_output=True,
    )
    atexit.register(
        subprocess.run,
        ["git", "worktree", "remove", "--force", str(where)],
        cwd=ROOT, capture_output=True,
    )
    BASELINES[revision] = where
    print(f"baseline ssesync {revision} checked out at {where}")
    out: list[str] = []
    for client in clients:
        out.append(client)
        if client.startswith("ssesync") and "@" not in client:
            out.append(f"{client}@{revision}")
    return sorted(out, key=lambda name: clients.index(name.split("@")[0]))


def client_spec(
    workload: Workload, body: str, client: str, quick: bool, server: ServerProcess
) -> tuple[dict[str, Any], float, dict[str, Any]]:
    """What one client run is given, its time limit, and what it must deliver."""
    count, sources, timeout = workload.scaled(quick)
    spec = {
        "client": client,
        "kind": workload.kind,
        "workload": workload.name,
        "body": body,
        "url": server.url(workload.name, body),
        "events": count,
        "sources": sources,
        "flush_every": workload.flush_every,
        "fields": workload.fields,
    }
    if "@" in client:
        spec["ssesync_path"] = str(BASELINES[client.split("@", 1)[1]])
    expected = server.expected.get(workload.name, {"count": count, "stream_bytes": 0})
    expected = {**expected, "sources": sources}
    return spec, timeout, expected


def _run_all(
    args: argparse.Namespace,
    server: ServerProcess,
    workloads: list[str],
    bodies: list[str],
    clients: list[str],
) -> dict[tuple[str, str], dict[str, Cell]]:
    results: dict[tuple[str, str], dict[str, Cell]] = {}
    for name in workloads:
        workload = WORKLOADS[name]
        count, sources, _ = workload.scaled(args.quick)
        if name in server.unavailable:
            print(f"== {name}: not run: {server.unavailable[name]} (raise it: ulimit -n)\n")
            continue
        for body in (b for b in bodies if b in workload.bodies):
            cells = {client: Cell(name, body, client) for client in clients}
            results[(name, body)] = cells
            for number in range(1, args.runs + 1):
                for client in clients:
                    cell = cells[client]
                    if cell.failed:
                        continue
                    spec, timeout, expected = client_spec(
                        workload, body, client, args.quick, server
                    )
                    run = run_process(spec, args.timeout or timeout)
                    validate(workload, run, expected)
                    if run["status"] == "ok":
                        measures(workload, run, expected["stream_bytes"])
                    cell.runs.append(run)
                    _progress(workload, body, number, args.runs, client, run)
            print(table(workload, body, count, sources, cells), flush=True)
            print(flush=True)
    return results


def _progress(
    workload: Workload, body: str, number: int, runs: int, client: str, run: dict[str, Any]
) -> None:
    if run["status"] != "ok":
        figure = f"{run['status']} {run.get('detail', '')}"
    elif workload.kind == "throughput":
        figure = f"{run['events_per_s']:,.0f} events/s"
    elif workload.kind == "latency":
        figure = f"p50 {run['p50_us'] / 1000:.3f} ms"
    else:
        figure = f"CPU {run['cpu']:.2f} s"
    print(
        f"  [{workload.name}/{body} run {number}/{runs}] {client}: {figure}",
        file=sys.stderr,
        flush=True,
    )


def _profile(
    args: argparse.Namespace, server: ServerProcess, workloads: list[str], bodies: list[str]
) -> None:
    for name in workloads:
        workload = WORKLOADS[name]
        for body in (b for b in bodies if b in workload.bodies):
            spec, timeout, expected = client_spec(workload, body, args.profile, args.quick, server)
            with tempfile.TemporaryDirectory() as tmp:
                spec["profile"] = str(Path(tmp) / "profile.out")
                run = run_process(spec, (args.timeout or timeout) * 5)
                validate(workload, run, expected)
                print(
                    f"== profile of {args.profile} on {name}/{body}: {run['status']} "
                    f"{run.get('detail', '')}"
                )
                if Path(spec["profile"]).exists():
                    stats = pstats.Stats(spec["profile"], stream=sys.stdout)
                    stats.sort_stats(args.profile_sort).print_stats(args.profile_top)
