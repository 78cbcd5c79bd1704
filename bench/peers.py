"""Conveyor against pgqueuer, Procrastinate (PostgreSQL) and huey (SQLite) on a neutral harness.

    .venv/bin/pip install -e '.[bench]' && .venv/bin/python bench/peers.py [--quick]

Every system runs the same job bodies (bench/peers_systems.py: a plain `def` and an `async def`
that each append one line to a file), its workers are separate processes (this script re-run
with --child) started with the library's defaults and with tuned settings (SETTINGS there),
and every figure is measured in interleaved rounds (each round runs every system once per
figure, the order rotated per round), each time on a fresh store: a new PostgreSQL database
(CREATE DATABASE peers_<random>, each library installing its own schema, dropped after) or a
new SQLite file. Figures:

- drain: N jobs already queued; the clock starts before the worker processes are spawned
  (their start-up counts) and stops when the store records the last job finished. Then every
  job is checked: the file holds each of 0..N-1 exactly once, and the store's own state says
  all finished once (Conveyor: every job completed on attempt 1; pgqueuer: queue empty and one
  'successful' log row per job; Procrastinate: all 'succeeded' on attempt 1; huey: nothing
  pending, scheduled or stored as an error). Worker CPU per job is the worker processes' own
  user + system time (psutil: every thread and child) from the moment each said ready (imported,
  built, about to run) to the end, divided by N; the start-up CPU is reported apart.
- pickup: one idle worker process; one job at a time is enqueued and its body writes
  time.time() into a FIFO the harness reads; latency = that time minus time.time() just before
  the enqueue call; 10 to 20 ms pause between jobs, warm-up jobs discarded.
- bulk enqueue: C calls of S jobs through each library's bulk API (Conveyor enqueue_many,
  pgqueuer Queries.enqueue with lists, Procrastinate batch_defer_async, huey task.map), timed
  with the building of the arguments, then counted in the store.

It prints the table of issue 20 (median and min-max over the rounds) and the ratios against
the issue's targets, and writes the raw figures as JSON (bench/peers-neutral-latest.json; a
--quick run writes to /tmp unless --out is given). A library that does not import or a
measurement that fails is reported in the table, and the run goes on. Not run by CI.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import secrets
import select
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peers_systems
from peers_systems import SETTINGS_TEXT, SYSTEMS, System, count_lines

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "peers-neutral-latest.json"
QUICK_OUT = Path(tempfile.gettempdir()) / "conveyor-peers-quick.json"
DEFAULT_SERVER = os.environ.get("CONVEYOR_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432")
STORE_SYSTEMS = {
    "postgres": ("conveyor-pg", "pgqueuer", "procrastinate"),
    "sqlite": ("conveyor-sqlite", "huey"),
}
COLUMNS = ("conveyor", "pgqueuer", "procrastinate", "huey")
STARTUP_TIMEOUT = 60.0
SAMPLE_TIMEOUT = 10.0


def note(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


# stores --------------------------------------------------------------------------------------
def admin_execute(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def postgres_problem(server: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        admin_execute(server, "SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {server} not reachable ({type(exc).__name__}: {exc})"
    return None


@contextlib.contextmanager
def fresh_store(store: str, ctx: Context) -> Iterator[str]:
    """A new PostgreSQL database (its URL) or SQLite file (its path), removed after."""
    if store == "sqlite":
        path = ctx.tmp / f"peers-{secrets.token_hex(5)}.db"
        try:
            yield str(path)
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    name = f"peers_{secrets.token_hex(5)}"
    admin_execute(ctx.server, f"CREATE DATABASE {name}")
    try:
        yield f"{ctx.server}/{name}"
    finally:
        with contextlib.suppress(Exception):
            admin_execute(ctx.server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def opened(name: str, settings: str, ctx: Context) -> Iterator[System]:
    """System `name` with `settings` on a fresh store, its schema installed."""
    with fresh_store(SYSTEMS[name].store, ctx) as where:
        system = SYSTEMS[name](where, settings)
        try:
            system.setup()
            yield system
        finally:
            with contextlib.suppress(Exception):
                system.close()


# worker processes ----------------------------------------------------------------------------
class WorkerProcess:
    """One worker of `system` in its own process; reports when it is ready and its CPU."""

    def __init__(self, system: System, lines: Path, ctx: Context) -> None:
        self.log_path = ctx.tmp / f"{system.name}-{secrets.token_hex(3)}.log"
        self.log = self.log_path.open("w")
        command = [sys.executable, str(HERE / "peers.py"), "--child"]
        command += [system.name, system.settings, system.where]
        env = {**os.environ, peers_systems.LINES_ENV: str(lines)}
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env=env,
            text=True,
        )
        self.ready = threading.Event()
        self.ready_info: dict[str, Any] = {}
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("PEERS "):
                self.ready_info = json.loads(line[6:])
                self.ready.set()

    def check(self) -> None:
        """Raise with the end of its log when the process exited."""
        if self.proc.poll() is not None:
            self.log.flush()
            tail = self.log_path.read_text()[-1500:]
            raise RuntimeError(f"worker process exited ({self.proc.returncode}): {tail}")

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.log.close()


@contextlib.contextmanager
def workers(system: System, count: int, lines: Path, ctx: Context) -> Iterator[list[WorkerProcess]]:
    procs: list[WorkerProcess] = []
    try:
        for _ in range(count):
            procs.append(WorkerProcess(system, lines, ctx))
        yield procs
    finally:
        for p in procs:
            p.close()


def wait_until(
    done: Callable[[], bool], procs: list[WorkerProcess], deadline: float, what: str
) -> None:
    """Poll `done` every 2 ms until true; fail when a worker died or the deadline passed."""
    while not done():
        if time.time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        for p in procs:
            p.check()
        time.sleep(0.002)


class LineCounter:
    """Lines appended to a file so far, read incrementally."""

    def __init__(self, path: Path) -> None:
        self.file = path.open("rb")
        self.count = 0

    def read(self) -> int:
        self.count += self.file.read().count(b"\n")
        return self.count

    def close(self) -> None:
        self.file.close()


# measurements --------------------------------------------------------------------------------
@dataclass
class Context:
    server: str
    tmp: Path
    jobs: int
    samples: int
    timeout: float


def bench_drain(name: str, settings: str, kind: str, count: int, ctx: Context) -> dict[str, Any]:
    n = ctx.jobs
    with opened(name, settings, ctx) as system:
        for start in range(0, n, 1000):
            system.enqueue_bulk(kind, start, min(1000, n - start))
        if system.pending() != n:
            raise AssertionError(f"{system.pending()} jobs pending after enqueueing {n}")
        lines = ctx.tmp / f"lines-{secrets.token_hex(4)}.txt"
        lines.touch()
        counter = LineCounter(lines)
        load_before = os.getloadavg()
        t0 = time.time()
        try:
            with workers(system, count, lines, ctx) as procs:
                deadline = t0 + ctx.timeout
                wait_until(lambda: counter.read() >= n, procs, deadline, f"{n} lines")
                wait_until(lambda: system.pending() == 0, procs, deadline, "the store")
                end = time.time()
                cpu = [p.cpu_seconds() for p in procs]
                ready = [p.ready_info for p in procs]
        finally:
            counter.close()
        problems = count_lines(lines, n) + system.verify(n)
        lines.unlink()
    # a process still starting when the others had drained everything ran no job: all its
    # CPU so far is start-up
    late = sum(1 for r in ready if not r)
    ready = [r or {"t": end, "cpu": c} for r, c in zip(ready, cpu, strict=True)]
    run_cpu = sum(c - r["cpu"] for c, r in zip(cpu, ready, strict=True))
    return {
        "n": n,
        "seconds": end - t0,
        "jobs_per_s": n / (end - t0),
        "seconds_after_ready": end - min(r["t"] for r in ready),
        "worker_cpu_us_per_job": run_cpu / n * 1e6,
        "startup_cpu_s_per_process": [r["cpu"] for r in ready],
        "processes_not_ready_at_end": late,
        "verified": not problems,
        "problems": problems,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


class FifoReader:
    """The lines the pickup jobs write into a FIFO, read as they come."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        # O_RDWR: opening never blocks, and writers never see a FIFO without a reader
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.buffer = b""

    def line(self, deadline: float, procs: list[WorkerProcess]) -> str:
        while b"\n" not in self.buffer:
            left = deadline - time.time()
            if left <= 0:
                raise TimeoutError("no pickup within the deadline")
            for p in procs:
                p.check()
            if select.select([self.fd], [], [], min(left, 0.5))[0]:
                self.buffer += os.read(self.fd, 65536)
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def close(self) -> None:
        os.close(self.fd)


def bench_pickup(
    name: str, settings: str, kind: str, ctx: Context, warmup: int = 10
) -> dict[str, Any]:
    from run import percentile

    rng = random.Random(7)
    latencies: list[float] = []
    load_before = os.getloadavg()
    with opened(name, settings, ctx) as system:
        fifo = ctx.tmp / f"fifo-{secrets.token_hex(4)}"
        reader = FifoReader(fifo)
        try:
            with workers(system, 1, fifo, ctx) as procs:
                wait_until(procs[0].ready.is_set, procs, time.time() + STARTUP_TIMEOUT, "ready")
                for k in range(warmup + ctx.samples):
                    before = time.time()
                    system.enqueue_one(kind, k)
                    limit = STARTUP_TIMEOUT if k == 0 else SAMPLE_TIMEOUT
                    while True:
                        i, t = reader.line(before + limit, procs).split()
                        if int(i) == k:
                            break
                    if k >= warmup:
                        latencies.append((float(t) - before) * 1000)
                    time.sleep(rng.uniform(0.010, 0.020))  # the worker goes idle again
                deadline = time.time() + SAMPLE_TIMEOUT
                wait_until(lambda: system.pending() == 0, procs, deadline, "the store")
        finally:
            reader.close()
            fifo.unlink()
    ordered = sorted(latencies)
    return {
        "samples": len(ordered),
        "warmup_discarded": warmup,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
        "verified": True,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def bench_bulk(name: str, calls: int, size: int, ctx: Context) -> dict[str, Any]:
    load_before = os.getloadavg()
    with opened(name, "default", ctx) as system:
        kind = "async" if "async" in system.kinds else system.kinds[0]
        total = calls * size
        system.enqueue_bulk(kind, total, 1)  # warm-up: one job, outside the timing
        start = time.perf_counter()
        for c in range(calls):
            made = system.enqueue_bulk(kind, c * size, size)
            if made != size:
                raise AssertionError(f"a bulk call of {size} returned {made}")
        seconds = time.perf_counter() - start
        pending = system.pending()
    if pending != total + 1:
        raise AssertionError(f"{pending} jobs pending after a bulk enqueue of {total} (+1)")
    return {
        "calls": calls,
        "size": size,
        "seconds": seconds,
        "jobs_per_s": total / seconds,
        "verified": True,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


# the plan ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Figure:
    """One figure of the table, measured on every system of its store each round."""

    key: str
    label: str
    store: str
    kind: str = ""  # drains: the job body
    workers: int = 0
    settings: str = "default"
    calls: int = 0
    size: int = 0

    @property
    def what(self) -> str:
        return self.key.split("/")[1]

    def run(self, name: str, ctx: Context) -> dict[str, Any]:
        if self.what == "drain":
            return bench_drain(name, self.settings, self.kind, self.workers, ctx)
        if self.what == "pickup":
            kind = "async" if "async" in SYSTEMS[name].kinds else "sync"
            return bench_pickup(name, self.settings, kind, ctx)
        return bench_bulk(name, self.calls, self.size, ctx)

    def applies(self, name: str) -> bool:
        return self.what != "drain" or self.kind in SYSTEMS[name].kinds


def plan(args: argparse.Namespace) -> list[Figure]:
    figures = []
    for store in args.stores:
        title = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[store]
        for w in args.workers:
            for kind in args.kinds:
                for settings in args.settings:
                    procs = "1 worker process" if w == 1 else f"{w} processes"
                    figures.append(
                        Figure(
                            f"{store}/drain/{w}p/{kind}/{settings}",
                            f"{title} drain, {procs}, {kind} job, {settings}",
                            store,
                            kind=kind,
                            workers=w,
                            settings=settings,
                        )
                    )
        for settings in args.settings:
            figures.append(
                Figure(
                    f"{store}/pickup/{settings}",
                    f"{title} pickup p50 / p99, {settings}",
                    store,
                    settings=settings,
                )
            )
        for calls, size in args.bulk:
            figures.append(
                Figure(
                    f"{store}/bulk/{calls}x{size}",
                    f"{title} bulk enqueue, {calls} call{'s' if calls > 1 else ''} x {size:,}",
                    store,
                    calls=calls,
                    size=size,
                )
            )
    return figures


def run_all(args: argparse.Namespace, ctx: Context, results: dict[str, Any]) -> None:
    figures = plan(args)
    unavailable: dict[str, str] = results["unavailable"]
    cells = results["figures"]
    for f in figures:
        cells[f.key] = {"label": f.label, "store": f.store, "systems": {}}
        for name in STORE_SYSTEMS[f.store]:
            if name in args.systems and f.applies(name):
                cells[f.key]["systems"][name] = {"runs": [], "errors": []}
    for r in range(args.rounds):
        note(f"round {r + 1} of {args.rounds}, load average {os.getloadavg()}")
        results["rounds"].append({"load_before": os.getloadavg(), "started": time.time()})
        for f in figures:
            names = list(cells[f.key]["systems"])
            shift = r % len(names) if names else 0
            for name in names[shift:] + names[:shift]:  # a different system first each round
                if name in unavailable:
                    continue
                out = cells[f.key]["systems"][name]
                try:
                    res = f.run(name, ctx)
                except Exception as exc:  # a peer that cannot run here: say why, carry on
                    message = f"{type(exc).__name__}: {exc}"[:2000]
                    out["errors"].append(message)
                    note(f"{f.label}, {name}: FAILED: {message[:300]}")
                    continue
                out["runs"].append(res)
                note(f"{f.label}, {name}: {describe(f, res)}")
        results["rounds"][-1]["load_after"] = os.getloadavg()


def describe(f: Figure, res: dict[str, Any]) -> str:
    if f.what == "pickup":
        return f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms"
    text = f"{res['jobs_per_s']:,.0f}/s"
    if f.what == "drain":
        text += f", {res['worker_cpu_us_per_job']:.0f} µs CPU/job"
        text += ", verified" if res["verified"] else f", NOT VERIFIED: {res['problems']}"
    return text


# report --------------------------------------------------------------------------------------
def spread(runs: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = [r[key] for r in runs if r.get("verified")]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def column(name: str) -> str:
    return "conveyor" if name.startswith("conveyor") else name


def fmt(s: dict[str, float] | None, unit: str) -> str:
    if s is None:
        return ""
    f = "{:,.0f}" if unit in ("/s", " µs") else "{:.2f}"
    text = f.format(s["median"]) + unit
    if s["min"] != s["max"]:
        text += f" ({f.format(s['min'])}-{f.format(s['max'])})"
    return text


def summarise(results: dict[str, Any]) -> None:
    """Add median/min/max of every figure of every system to `results["summary"]`."""
    summary: dict[str, Any] = {}
    for key, cell in results["figures"].items():
        what = key.split("/")[1]
        for name, out in cell["systems"].items():
            runs = out["runs"]
            entry: dict[str, Any] = {"runs": len(runs), "errors": len(out["errors"])}
            if runs and not all(r["verified"] for r in runs):
                entry["unverified_runs"] = sum(1 for r in runs if not r["verified"])
            if what == "pickup":
                entry["p50_ms"], entry["p99_ms"] = spread(runs, "p50_ms"), spread(runs, "p99_ms")
            else:
                entry["jobs_per_s"] = spread(runs, "jobs_per_s")
            if what == "drain":
                entry["worker_cpu_us_per_job"] = spread(runs, "worker_cpu_us_per_job")
            summary.setdefault(key, {})[column(name)] = entry
    results["summary"] = summary


def cell_text(results: dict[str, Any], key: str, col: str, field: str) -> str:
    cell = results["figures"][key]
    names = [n for n in cell["systems"] if column(n) == col]
    if not names:
        store_names = [n for n in STORE_SYSTEMS[cell["store"]] if column(n) == col]
        if store_names and store_names[0] in results["unavailable"]:
            return "not run (below)"
        if store_names and SYSTEMS[store_names[0]].kinds == ("sync",):
            return "n/a (no async jobs)"
        return "—"
    out = cell["systems"][names[0]]
    if names[0] in results["unavailable"] and not out["runs"]:
        return "not run (below)"
    entry = results["summary"][key][col]
    if field == "pickup":
        p50, p99 = entry["p50_ms"], entry["p99_ms"]
        text = "" if p50 is None else f"{fmt(p50, '')} / {fmt(p99, '')} ms"
    elif field == "cpu":
        text = fmt(entry["worker_cpu_us_per_job"], " µs")
    else:
        text = fmt(entry["jobs_per_s"], "/s")
    if entry.get("unverified_runs"):
        text += f" [{entry['unverified_runs']} run(s) NOT VERIFIED]"
    if out["errors"]:
        text += f" [{len(out['errors'])} failed: {out['errors'][-1][:60]}]"
    return text or "failed"


def median_of(results: dict[str, Any], key: str, col: str, field: str) -> float | None:
    entry = results.get("summary", {}).get(key, {}).get(col)
    if not entry or entry.get(field) is None:
        return None
    return float(entry[field]["median"])


def print_table(results: dict[str, Any]) -> None:
    header = ["figure: median of the rounds (min-max)", "Conveyor", "pgqueuer", "Procrastinate"]
    header += ["huey (SQLite)", "Conveyor / best peer"]
    rows = [header]
    for key, cell in results["figures"].items():
        what = key.split("/")[1]
        field = "pickup" if what == "pickup" else "rate"
        row = [cell["label"], *(cell_text(results, key, c, field) for c in COLUMNS)]
        row.append(ratio_text(results, key))
        rows.append(row)
        if what == "drain":
            cpu = [cell_text(results, key, c, "cpu") for c in COLUMNS]
            rows.append(["  worker CPU per job", *cpu, ""])
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")


def ratio_text(results: dict[str, Any], key: str) -> str:
    what = key.split("/")[1]
    field = "p50_ms" if what == "pickup" else "jobs_per_s"
    ours = median_of(results, key, "conveyor", field)
    peers = [median_of(results, key, c, field) for c in COLUMNS[1:]]
    known = [p for p in peers if p]
    if not ours or not known:
        return ""
    if what == "pickup":  # lower is better: how many times faster the pickup is
        return f"{min(known) / ours:.2f}x (p50)"
    return f"{ours / max(known):.2f}x"


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 20's targets, each with the figure measured in this run and met or missed."""
    out: list[dict[str, Any]] = []

    def ratio(label: str, key: str, peer: str, bound: float, other_key: str = "") -> None:
        ours = median_of(results, key, "conveyor", "jobs_per_s")
        theirs = median_of(results, other_key or key, peer, "jobs_per_s")
        value = ours / theirs if ours and theirs else None
        out.append({"target": label, "value": value, "bound": bound, "op": "≥", "unit": "x"})

    def absolute(label: str, key: str, field: str, op: str, bound: float, unit: str) -> None:
        value = median_of(results, key, "conveyor", field)
        out.append({"target": label, "value": value, "bound": bound, "op": op, "unit": unit})

    for kind in ("sync", "async"):
        ratio(
            f"PostgreSQL drain, 1 process, default, {kind}: Conveyor / pgqueuer",
            f"postgres/drain/1p/{kind}/default",
            "pgqueuer",
            2.0,
        )
    for key in [k for k in results["figures"] if k.startswith("postgres/bulk/")]:
        ratio(
            f"PostgreSQL bulk enqueue {key.split('/')[2]}: Conveyor / pgqueuer",
            key,
            "pgqueuer",
            1.5,
        )
    for store in ("postgres", "sqlite"):
        title = {"postgres": "PostgreSQL", "sqlite": "SQLite"}[store]
        key = f"{store}/pickup/default"
        absolute(f"{title} pickup p50, default", key, "p50_ms", "≤", 2.0, "ms")
        absolute(f"{title} pickup p99, default", key, "p99_ms", "≤", 5.0, "ms")
    for kind in ("sync", "async"):
        # huey has no async jobs: the async drain is set against huey's sync one
        key, huey_key = f"sqlite/drain/1p/{kind}/default", "sqlite/drain/1p/sync/default"
        ratio(
            f"SQLite drain, 1 process, default, {kind}: Conveyor / huey (sync)",
            key,
            "huey",
            4.0,
            huey_key,
        )
    for kind in ("sync", "async"):
        two = median_of(results, f"sqlite/drain/2p/{kind}/default", "conveyor", "jobs_per_s")
        one = median_of(results, f"sqlite/drain/1p/{kind}/default", "conveyor", "jobs_per_s")
        out.append(
            {
                "target": f"SQLite drain, default, {kind}: 2 processes / 1 process",
                "value": two / one if two and one else None,
                "bound": 1.0,
                "op": ">",
                "unit": "x",
            }
        )
    for key in [k for k in results["figures"] if k.startswith("sqlite/bulk/")]:
        absolute(f"SQLite bulk enqueue {key.split('/')[2]}", key, "jobs_per_s", "≥", 100_000, "/s")
    for t in out:
        v, b = t["value"], t["bound"]
        if v is None:
            t["verdict"] = "not measured"
        else:
            met = {"≥": v >= b, "≤": v <= b, ">": v > b}[t["op"]]
            t["verdict"] = "met" if met else "MISSED"
    return out


def number(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "/s" else f"{value:.2f}"


def print_targets(found: list[dict[str, Any]]) -> None:
    print("\nTargets of issue 20 (ratios of medians in this run):")
    width = max(len(t["target"]) for t in found)
    for t in found:
        shown = "—" if t["value"] is None else number(t["value"], t["unit"]) + t["unit"]
        bound = f"{t['bound']:,.0f}" if t["unit"] == "/s" else f"{t['bound']:g}"
        print(
            f"  {t['target'].ljust(width)}  {shown}  "
            f"(target {t['op']} {bound}{t['unit']})  {t['verdict']}"
        )


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in (
        "conveyor",
        "pgqueuer",
        "procrastinate",
        "huey",
        "psycopg",
        "asyncpg",
        "psutil",
    ):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


# main ----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (3)")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per drain (10000)")
    parser.add_argument("--samples", type=int, default=None, help="pickups per run (200)")
    parser.add_argument("--bulk", default=None, help="bulk enqueues, CALLSxSIZE (10x1000,1x10000)")
    parser.add_argument("--workers", default="1,2", help="worker processes for the drains")
    parser.add_argument("--kinds", default="sync,async", help="job bodies to drain")
    parser.add_argument("--settings", default="default,tuned", help="worker settings")
    parser.add_argument("--stores", default="postgres,sqlite")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="systems to run")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per drain")
    parser.add_argument("--server", default=DEFAULT_SERVER, help="PostgreSQL URL, no database")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, 1 round")
    parser.add_argument("--out", type=Path, default=None, help="JSON of the raw figures")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return args
    quick = args.quick
    args.rounds = args.rounds or (1 if quick else 3)
    args.jobs = args.jobs or (300 if quick else 10_000)
    args.samples = args.samples or (20 if quick else 200)
    args.out = args.out or (QUICK_OUT if quick else DEFAULT_OUT)
    try:
        args.bulk = [
            tuple(int(x) for x in b.split("x", 1))
            for b in (args.bulk or ("2x200,1x400" if quick else "10x1000,1x10000")).split(",")
        ]
        args.workers = [int(w) for w in args.workers.split(",")]
    except ValueError:
        parser.error("--bulk takes CALLSxSIZE[,CALLSxSIZE] and --workers numbers, e.g. 1,2")
    if any(len(b) != 2 or min(b) < 1 for b in args.bulk) or min(args.workers) < 1:
        parser.error("--bulk sizes and --workers must be at least 1")
    choices = {
        "kinds": ("sync", "async"),
        "settings": ("default", "tuned"),
        "stores": tuple(STORE_SYSTEMS),
        "systems": tuple(SYSTEMS),
    }
    for option, allowed in choices.items():
        values = [v for v in getattr(args, option).split(",") if v]
        bad = [v for v in values if v not in allowed]
        if bad or not values:
            parser.error(f"--{option}: unknown {bad}; use some of {', '.join(allowed)}")
        setattr(args, option, values)
    if args.rounds < 1 or args.jobs < 1 or args.samples < 1:
        parser.error("--rounds, --jobs and --samples must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        peers_systems.child_main(*args.child)
        return 0
    command = " ".join(
        shlex.quote(a) for a in [".venv/bin/python", "bench/peers.py", *sys.argv[1:]]
    )
    from run import machine

    results: dict[str, Any] = {
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {**machine(), "python_full": platform.python_version()},
        "versions": versions(),
        "params": {
            "rounds": args.rounds,
            "jobs": args.jobs,
            "samples": args.samples,
            "bulk": args.bulk,
            "workers": args.workers,
            "kinds": args.kinds,
            "settings": args.settings,
            "timeout": args.timeout,
            "quick": args.quick,
        },
        "settings": {name: {"default": d, "tuned": t} for name, (d, t) in SETTINGS_TEXT.items()},
        "unavailable": {},
        "load_average_before": os.getloadavg(),
        "rounds": [],
        "figures": {},
    }
    for name in args.systems:
        why = peers_systems.importable(name)
        if why is None and "postgres" in args.stores and SYSTEMS[name].store == "postgres":
            why = postgres_problem(args.server)
        if why is not None:
            results["unavailable"][name] = why
            note(f"{name}: not run: {why}")
    if "postgres" in args.stores and not results["unavailable"].get("conveyor-pg"):
        with contextlib.suppress(Exception):
            import psycopg

            with psycopg.connect(f"{args.server}/postgres", autocommit=True) as conn:
                row = conn.execute("SHOW server_version").fetchone()
                results["machine"]["postgresql"] = row[0] if row else "?"
    load = results["load_average_before"][0]
    note(f"load average before: {results['load_average_before']}")
    if load > 0.5:
        note(f"warning: load average {load:.2f}: the figures will be lower and noisier than idle")
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="conveyor-peers-"))
    try:
        ctx = Context(args.server, tmp, args.jobs, args.samples, args.timeout)
        run_all(args, ctx, results)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = time.time() - started
    summarise(results)
    results["targets"] = targets(results)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print_table(results)
    print_targets(results["targets"])
    if args.quick:
        print("\n--quick: small sizes and one round, to prove the harness works; not figures")
    for name, why in results["unavailable"].items():
        print(f"\nnot run: {name}: {why}")
    print("\nSettings (default | tuned):")
    for name in args.systems:
        default, tuned = SETTINGS_TEXT[name]
        print(f"  {name}: {default} | {tuned}")
    before, after = results["load_average_before"], results["load_average_after"]
    print(
        f"\n{command}\nload average before {before}, after {after}; "
        f"{results['wall_seconds']:.0f} s; raw figures in {args.out}"
    )
    bad = [
        f"{key} {name}"
        for key, cell in results["figures"].items()
        for name, out in cell["systems"].items()
        if out["errors"] or not all(r["verified"] for r in out["runs"])
    ]
    bad += [f"{name} (not run)" for name in results["unavailable"]]
    if bad:
        print(f"failed, not verified or not run: {', '.join(bad)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
