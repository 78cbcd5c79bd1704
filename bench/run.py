"""Conveyor benchmarks: enqueue rates, drain throughput and pickup latency, per store.

    .venv/bin/python bench/run.py [--stores memory,sqlite,postgres] [--jobs 10000] [--quick]

Everything goes through the public API (App, @app.job, enqueue, enqueue_many, app.worker).
The default stores are memory and sqlite; postgres uses a fresh schema of the database at
$CONVEYOR_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test) per measurement
and drops them at the end (bench/postgres_peers.py compares it with Procrastinate and
pgqueuer). For SQLite and PostgreSQL the worker is a separate OS process (this script re-run
with --child-worker) and this process is the producer and observer; the memory store lives in
one process, so its worker runs in this process's event loop. Results are printed as a table
and written to bench/results-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from conveyor import App, Context, JobEvent, JobFunction, JobState

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "results-latest.json"

# (metric, store) -> (comparison, bound, unit); "ge": higher is better, "le": lower is better.
TARGETS: dict[tuple[str, str], tuple[str, float, str]] = {
    ("drain", "memory"): ("ge", 20_000.0, "jobs/s"),
    ("drain", "sqlite"): ("ge", 5_000.0, "jobs/s"),
    ("enqueue_bulk", "sqlite"): ("ge", 50_000.0, "jobs/s"),
    ("latency_p50", "memory"): ("le", 2.0, "ms"),
    ("latency_p50", "sqlite"): ("le", 10.0, "ms"),
    ("drain", "postgres"): ("ge", 5_000.0, "jobs/s"),
    ("enqueue_bulk", "postgres"): ("ge", 50_000.0, "jobs/s"),
    ("latency_p50", "postgres"): ("le", 4.0, "ms"),
}

# The `stamp` job calls the callback registered under its `i` when it starts (in-process only:
# the memory benchmark's producer waits on it instead of polling).
_ON_START: dict[int, Callable[[float], None]] = {}


@dataclass(frozen=True)
class BenchJobs:
    """The jobs every benchmark app registers, under the same names in every process."""

    noop_async: JobFunction[..., Any]
    noop_sync: JobFunction[..., Any]
    stamp: JobFunction[..., Any]

    def noop(self, kind: str) -> JobFunction[..., Any]:
        return self.noop_async if kind == "async" else self.noop_sync


def build_app(url: str, **settings: Any) -> tuple[App, BenchJobs]:
    """An App on `url` with the benchmark's jobs registered."""
    app = App(url, **settings)

    @app.job(name="bench.noop_async")
    async def noop_async(ctx: Context, i: int) -> None:
        return None

    @app.job(name="bench.noop_sync")
    def noop_sync(ctx: Context, i: int) -> None:
        return None

    @app.job(name="bench.stamp")
    async def stamp(ctx: Context, i: int) -> float:
        started = time.time()
        notify = _ON_START.pop(i, None)
        if notify is not None:
            notify(started)
        return started

    return app, BenchJobs(noop_async, noop_sync, stamp)


# stores ----------------------------------------------------------------------------------------
class Store:
    """Where a benchmark's jobs live: a fresh store for every measurement."""

    name = ""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._made = 0

    def new_url(self) -> str:
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        return {}

    def new_app(self) -> tuple[App, BenchJobs]:
        app, jobs = build_app(self.new_url(), **self.settings())
        _ = app.backend  # open the store (and create its schema) outside any timing
        return app, jobs


class MemoryStore(Store):
    name = "memory"

    def new_url(self) -> str:
        return "memory://"

    def settings(self) -> dict[str, Any]:
        # The default cap (10,000 waiting jobs) would make --jobs above it wait for room.
        return {"max_queue_size": 0}


class SQLiteStore(Store):
    name = "sqlite"

    def new_url(self) -> str:
        self._made += 1
        return f"sqlite:///{self.workdir / f'bench-{self._made}.db'}"


class PostgresStore(Store):
    """A fresh schema of the database at $CONVEYOR_BENCH_POSTGRES (default: the local test
    database) for every measurement; all of them are dropped at the end."""

    name = "postgres"
    base = os.environ.get("CONVEYOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.schemas: list[str] = []

    def new_url(self) -> str:
        schema = f"bench_{os.getpid()}_{len(self.schemas)}"
        self.schemas.append(schema)
        return f"{self.base}?schema={schema}"

    def drop_schemas(self) -> None:
        import psycopg

        with psycopg.connect(self.base, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def postgres_available() -> str | None:
    """None when the PostgreSQL store opens and works, else why not."""
    store = PostgresStore(Path(tempfile.gettempdir()))
    try:
        app, jobs = build_app(store.new_url())
        try:
            jobs.noop_async.enqueue(i=0)
            app.jobs.counts()
        finally:
            app.close()
        store.drop_schemas()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def sqlite_available() -> str | None:
    """None when the SQLite store opens and works, else why not."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app, jobs = build_app(f"sqlite:///{tmp}/probe.db")
            try:
                jobs.noop_async.enqueue(i=0)
                app.jobs.counts()
            finally:
                app.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


# helpers ---------------------------------------------------------------------------------------
def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of `values` (pct in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def finished_count(app: App) -> int:
    by_state = app.jobs.counts().by_state
    return sum(by_state.get(s.value, 0) for s in (JobState.COMPLETED, JobState.FAILED))


def verify_all_completed(app: App, ids: list[str]) -> dict[str, Any]:
    """Read every job back: each enqueued id present exactly once, completed, attempt 1."""
    seen: Counter[str] = Counter()
    states: Counter[str] = Counter()
    attempts: Counter[int] = Counter()
    page = 1
    while True:
        listing = app.jobs.list(page=page, per_page=1000)
        for job in listing.jobs:
            seen[job.id] += 1
            states[job.state.value] += 1
            attempts[job.attempt] += 1
        if page * listing.per_page >= listing.total:
            break
        page += 1
    expected = set(ids)
    problems = []
    if set(seen) != expected:
        problems.append(
            f"{len(expected - set(seen))} enqueued id(s) missing, "
            f"{len(set(seen) - expected)} unexpected id(s) present"
        )
    if any(n != 1 for n in seen.values()):
        problems.append("some id listed more than once")
    if states != Counter({"completed": len(ids)}):
        problems.append(f"states are {dict(states)}, expected all {len(ids)} completed")
    if attempts != Counter({1: len(ids)}):
        problems.append(f"attempt counts are {dict(attempts)}, expected every job on attempt 1")
    return {
        "ok": not problems,
        "problems": problems,
        "completed": states.get("completed", 0),
        "failed": states.get("failed", 0),
        "distinct_ids": len(seen),
    }


# producer benchmarks ---------------------------------------------------------------------------
def bench_enqueue_one(store: Store, n: int, warmup: int = 50) -> dict[str, Any]:
    """`fn.enqueue(...)` in a loop, no worker running."""
    app, jobs = store.new_app()
    try:
        for i in range(warmup):
            jobs.noop_async.enqueue(i=-1 - i)
        start = time.perf_counter()
        for i in range(n):
            jobs.noop_async.enqueue(i=i)
        elapsed = time.perf_counter() - start
        pending = app.jobs.counts().by_state.get("pending", 0)
    finally:
        app.close()
    if pending != n + warmup:
        raise AssertionError(f"enqueue_one: {pending} pending jobs, expected {n + warmup}")
    return {"n": n, "seconds": elapsed, "jobs_per_s": n / elapsed, "warmup": warmup}


def bench_enqueue_bulk(store: Store, n: int) -> dict[str, Any]:
    """`app.enqueue_many([fn.request(...) ...])`: one call, timed with the requests' building."""
    app, jobs = store.new_app()
    try:
        app.enqueue_many([jobs.noop_async.request(i=-1)])  # warm-up: one job
        start = time.perf_counter()
        requests = [jobs.noop_async.request(i=i) for i in range(n)]
        built = time.perf_counter()
        handles = app.enqueue_many(requests)
        done = time.perf_counter()
        pending = app.jobs.counts().by_state.get("pending", 0)
    finally:
        app.close()
    if len(handles) != n or pending != n + 1:
        raise AssertionError(f"enqueue_bulk: {pending} pending jobs, expected {n + 1}")
    return {
        "n": n,
        "seconds": done - start,
        "jobs_per_s": n / (done - start),
        "build_seconds": built - start,
        "store_seconds": done - built,
        "store_only_jobs_per_s": n / (done - built),
    }


# in-process worker (memory) --------------------------------------------------------------------
async def _wait_all_finished(app: App, last_id: str, n: int, interval: float) -> float:
    """Poll until `n` jobs are finished; returns time.time() when seen. The cheap check of
    the job claimed last gates the exact (counting) check."""
    # polling is the only signal a producer gets from a worker in another process
    while not app.jobs.require(last_id).is_finished:  # noqa: ASYNC110
        await asyncio.sleep(interval)
    while finished_count(app) < n:  # noqa: ASYNC110
        await asyncio.sleep(interval)
    return time.time()


async def _drain_in_process(app: App, ids: list[str], concurrency: int) -> dict[str, Any]:
    worker = app.worker(concurrency=concurrency)
    cpu = time.process_time()
    start = time.time()
    await worker.start()
    end = await _wait_all_finished(app, max(ids), len(ids), 0.001)
    cpu = time.process_time() - cpu
    await worker.stop()
    return {"seconds": end - start, "cpu_seconds": cpu, "stats": asdict(worker.stats)}


def bench_drain(store: Store, n: int, concurrency: int, kind: str) -> dict[str, Any]:
    """N no-op jobs already queued; one worker; time from its start to the last completion."""
    app, jobs = store.new_app()
    try:
        fn = jobs.noop(kind)
        ids = [h.id for h in app.enqueue_many([fn.request(i=i) for i in range(n)])]
        if isinstance(store, MemoryStore):
            run = asyncio.run(_drain_in_process(app, ids, concurrency))
            where = "in the benchmark process (the memory store is in-process)"
        else:
            run = _drain_child(store, app, ids, concurrency)
            where = "a separate OS process"
        check = verify_all_completed(app, ids)
    finally:
        app.close()
    stats = run["stats"]
    # a job held ready and handed back (see runtime/prefetch.py) is claimed twice, run once
    if stats["claimed"] - stats["released"] != n or stats["succeeded"] != n:
        check["ok"] = False
        check["problems"].append(f"worker stats {stats}, expected {n} claimed and succeeded")
    return {
        "n": n,
        "kind": kind,
        "concurrency": concurrency,
        "worker": where,
        "seconds": run["seconds"],
        "jobs_per_s": n / run["seconds"],
        # CPU of the process running the worker, start to last completion seen (memory: also
        # the completion poller; sqlite: also its store-notification thread)
        "worker_cpu_us_per_job": run["cpu_seconds"] / n * 1e6,
        "worker_stats": stats,
        "verified": check,
    }


async def _latency_in_process(app: App, jobs: BenchJobs, samples: int, warmup: int) -> list[float]:
    loop = asyncio.get_running_loop()
    recorded: dict[str, asyncio.Future[None]] = {}

    def on_succeeded(event: JobEvent) -> None:
        future = recorded.pop(event.job.id, None)
        if future is not None and not future.done():
            future.set_result(None)

    app.on("succeeded")(on_succeeded)
    rng = random.Random(7)
    latencies: list[float] = []
    async with app.worker(concurrency=10):
        await asyncio.sleep(0.05)  # let the worker settle into waiting for work
        for k in range(warmup + samples):
            started: asyncio.Future[float] = loop.create_future()
            stored: asyncio.Future[None] = loop.create_future()
            _ON_START[k] = started.set_result
            enqueued_at = time.time()
            handle = jobs.stamp.enqueue(i=k)
            recorded[handle.id] = stored
            began = await asyncio.wait_for(started, 5)
            await asyncio.wait_for(stored, 5)  # outcome written: the worker is idle again
            if k >= warmup:
                latencies.append(began - enqueued_at)
            await asyncio.sleep(rng.uniform(0.002, 0.006))
    return latencies


def bench_latency(store: Store, samples: int, warmup: int = 10) -> dict[str, Any]:
    """Enqueue one job at a time to an idle worker; latency = job start - time before enqueue."""
    app, jobs = store.new_app()
    try:
        if isinstance(store, MemoryStore):
            latencies = asyncio.run(_latency_in_process(app, jobs, samples, warmup))
            where = "producer and worker in the benchmark process (same event loop)"
        else:
            latencies = _latency_child(app, jobs, samples, warmup)
            where = "producer in the benchmark process, worker in a separate OS process"
    finally:
        app.close()
    ms = [x * 1000 for x in latencies]
    return {
        "samples": len(ms),
        "warmup_discarded": warmup,
        "setup": where,
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "min_ms": min(ms),
        "max_ms": max(ms),
        "mean_ms": statistics.fmean(ms),
    }


# worker in another process (sqlite) ------------------------------------------------------------
class ChildWorker:
    """This script re-run as `--child-worker`: one worker process, driven over its stdin."""

    def __init__(self, url: str, concurrency: int) -> None:
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in close()
        command = [sys.executable, str(Path(__file__).resolve()), "--child-worker", url]
        command += ["--child-concurrency", str(concurrency)]
        self.proc = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    def expect(self, event: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.log.seek(0)
            raise RuntimeError(f"worker process exited early:\n{self.log.read()[-4000:]}")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"worker process said {message}, expected {event!r}")
        return message

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


@contextmanager
def child_worker(url: str, concurrency: int) -> Iterator[ChildWorker]:
    child = ChildWorker(url, concurrency)
    try:
        yield child
    finally:
        child.close()


def _drain_child(store: Store, app: App, ids: list[str], concurrency: int) -> dict[str, Any]:
    with child_worker(app.url, concurrency) as child:
        child.expect("ready")  # imported, store opened, waiting for "go"
        child.send("go")
        started = child.expect("started")
        end = asyncio.run(_wait_all_finished(app, max(ids), len(ids), 0.002))
        child.send("stop")
        stopped = child.expect("stopped")
    return {
        "seconds": end - started["t_start"],
        "cpu_seconds": stopped["cpu_seconds"],
        "stats": stopped["stats"],
    }


def _latency_child(app: App, jobs: BenchJobs, samples: int, warmup: int) -> list[float]:
    rng = random.Random(7)
    latencies: list[float] = []
    with child_worker(app.url, 10) as child:
        child.expect("ready")
        child.send("go")
        child.expect("started")
        time.sleep(0.2)  # let the worker settle into waiting for work
        for k in range(warmup + samples):
            enqueued_at = time.time()
            handle = jobs.stamp.enqueue(i=k)
            job = handle.wait(timeout=10, interval=0.001)  # polls the store by id
            if job.state is not JobState.COMPLETED:
                raise AssertionError(f"latency job {job.id} ended {job.state}")
            if k >= warmup:
                latencies.append(float(job.result) - enqueued_at)
            time.sleep(rng.uniform(0.002, 0.006))
        child.send("stop")
        child.expect("stopped")
    return latencies


def child_main(url: str, concurrency: int) -> None:
    """The worker process: open the store, say ready, run a worker from "go" until "stop"."""
    app, _ = build_app(url)
    _ = app.backend

    def say(event: str, **fields: Any) -> None:
        print(json.dumps({"event": event, **fields}), flush=True)

    say("ready")
    if sys.stdin.readline().strip() != "go":
        return

    async def run() -> None:
        worker = app.worker(concurrency=concurrency)
        cpu = time.process_time()
        t_start = time.time()
        await worker.start()
        say("started", t_start=t_start)
        await asyncio.to_thread(sys.stdin.readline)
        cpu = time.process_time() - cpu
        await worker.stop()
        say("stopped", stats=asdict(worker.stats), cpu_seconds=cpu)

    asyncio.run(run())
    app.close()


# reporting -------------------------------------------------------------------------------------
def judge(metric: str, store: str, value: float) -> tuple[str, str]:
    target = TARGETS.get((metric, store))
    if target is None:
        return "", ""
    op, bound, unit = target
    met = value >= bound if op == "ge" else value <= bound
    sign = "≥" if op == "ge" else "≤"
    return f"{sign} {bound:,.0f} {unit}" if unit != "ms" else f"{sign} {bound:g} ms", (
        "met" if met else "MISSED"
    )


def summarise(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in runs]
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
    }


def print_table(rows: list[tuple[str, ...]], out: IO[str]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)), file=out)
        if n == 0:
            print("  ".join("-" * w for w in widths), file=out)


def table_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    header = ("store", "measurement", "median", "min .. max", "target", "", "detail (median)")
    rows: list[tuple[str, ...]] = [header]

    def row(
        store: str, label: str, metric: str, summary: dict[str, float], unit: str, detail: str = ""
    ) -> None:
        fmt = "{:,.0f}" if unit == "jobs/s" else "{:.2f}"
        spread = (
            ""
            if summary["min"] == summary["max"]
            else (f"{fmt.format(summary['min'])} .. {fmt.format(summary['max'])}")
        )
        value = f"{fmt.format(summary['median'])} {unit}"
        rows.append((store, label, value, spread, *judge(metric, store, summary["median"]), detail))

    for store, res in results["stores"].items():
        if "skipped" in res:
            rows.append((store, "(skipped)", "", "", "", "", res["skipped"][:70]))
            continue
        one, bulk = res["enqueue_one"], res["enqueue_bulk"]
        n_one, n_bulk = one["runs"][0]["n"], bulk["runs"][0]["n"]
        row(store, f"enqueue one by one, N={n_one:,}", "enqueue_one", one["jobs_per_s"], "jobs/s")
        store_only = bulk["store_only_jobs_per_s"]["median"]
        row(
            store,
            f"enqueue_many, N={n_bulk:,}",
            "enqueue_bulk",
            bulk["jobs_per_s"],
            "jobs/s",
            f"enqueue_many call alone: {store_only:,.0f} jobs/s",
        )
        for drain in res["drain"]:
            ok = all(r["verified"]["ok"] for r in drain["runs"])
            cpu = drain["worker_cpu_us_per_job"]["median"]
            label = f"drain {drain['kind']} no-op, c={drain['concurrency']}, N={n_bulk:,}"
            detail = f"worker CPU {cpu:.0f} us/job; verified" if ok else "NOT VERIFIED"
            row(store, label, "drain", drain["jobs_per_s"], "jobs/s", detail)
        lat = res["latency"]
        samples = lat["runs"][0]["samples"]
        row(store, f"enqueue->start p50, {samples} samples", "latency_p50", lat["p50_ms"], "ms")
        row(store, "enqueue->start p99", "latency_p99", lat["p99_ms"], "ms")
    return rows


# main ------------------------------------------------------------------------------------------
def run_store(
    store: Store, args: argparse.Namespace, note: Callable[[str], None]
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    for r in range(args.repeat):
        runs.append(bench_enqueue_one(store, args.enqueue_one))
        note(f"{store.name}: enqueue one by one, run {r + 1}: {runs[-1]['jobs_per_s']:,.0f}/s")
    result["enqueue_one"] = {"runs": runs, "jobs_per_s": summarise(runs, "jobs_per_s")}

    runs = []
    for r in range(args.repeat):
        runs.append(bench_enqueue_bulk(store, args.jobs))
        note(f"{store.name}: enqueue_many, run {r + 1}: {runs[-1]['jobs_per_s']:,.0f}/s")
    result["enqueue_bulk"] = {
        "runs": runs,
        "jobs_per_s": summarise(runs, "jobs_per_s"),
        "store_only_jobs_per_s": summarise(runs, "store_only_jobs_per_s"),
    }

    result["drain"] = []
    for kind in args.kinds:
        for concurrency in args.concurrency:
            runs = []
            for r in range(args.repeat):
                runs.append(bench_drain(store, args.jobs, concurrency, kind))
                verdict = "verified" if runs[-1]["verified"]["ok"] else "VERIFICATION FAILED"
                note(
                    f"{store.name}: drain {kind} c={concurrency}, run {r + 1}: "
                    f"{runs[-1]['jobs_per_s']:,.0f}/s ({verdict})"
                )
            result["drain"].append(
                {
                    "kind": kind,
                    "concurrency": concurrency,
                    "runs": runs,
                    "jobs_per_s": summarise(runs, "jobs_per_s"),
                    "worker_cpu_us_per_job": summarise(runs, "worker_cpu_us_per_job"),
                }
            )

    runs = []
    for r in range(args.repeat):
        runs.append(bench_latency(store, args.samples))
        note(
            f"{store.name}: latency run {r + 1}: p50 {runs[-1]['p50_ms']:.2f} ms, "
            f"p99 {runs[-1]['p99_ms']:.2f} ms"
        )
    result["latency"] = {
        "runs": runs,
        "p50_ms": summarise(runs, "p50_ms"),
        "p99_ms": summarise(runs, "p99_ms"),
    }
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--stores", default="memory,sqlite", help="comma-separated stores")
    parser.add_argument("--jobs", type=int, default=None, help="drain and bulk size (10000)")
    parser.add_argument("--enqueue-one", type=int, default=None, help="one-by-one N (2000)")
    parser.add_argument("--samples", type=int, default=None, help="latency samples (200)")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure (3)")
    parser.add_argument("--concurrency", default=None, help="drain worker concurrency list")
    parser.add_argument("--kinds", default="async,sync", help="no-op job kinds to drain")
    parser.add_argument("--quick", action="store_true", help="small N, one run each")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH, help="JSON results file")
    parser.add_argument("--child-worker", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--child-concurrency", type=int, default=10, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quick = args.quick
    args.jobs = args.jobs or (2_000 if quick else 10_000)
    args.enqueue_one = args.enqueue_one or (500 if quick else 2_000)
    args.samples = args.samples or (50 if quick else 200)
    args.repeat = args.repeat or (1 if quick else 3)
    concurrency = args.concurrency or ("10" if quick else "10,100")
    args.concurrency = [int(c) for c in concurrency.split(",")]
    args.kinds = [k for k in args.kinds.split(",") if k]
    args.stores = [s for s in args.stores.split(",") if s]
    for kind in args.kinds:
        if kind not in ("async", "sync"):
            parser.error(f"unknown job kind {kind!r}: use async, sync")
    for name in args.stores:
        if name not in ("memory", "sqlite", "postgres"):
            parser.error(f"unknown store {name!r}: use memory, sqlite, postgres")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child_worker:
        child_main(args.child_worker, args.child_concurrency)
        return 0

    def note(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/run.py", *sys.argv[1:]])
    results: dict[str, Any] = {
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "params": {
            "jobs": args.jobs,
            "enqueue_one": args.enqueue_one,
            "samples": args.samples,
            "repeat": args.repeat,
            "concurrency": args.concurrency,
            "kinds": args.kinds,
            "figure": "median of the runs; spread = min .. max",
        },
        "targets": {f"{m}/{s}": list(t) for (m, s), t in TARGETS.items()},
        "stores": {},
    }
    load = os.getloadavg()
    results["load_average_before"] = load
    if load[0] > 0.5:
        note(
            f"warning: load average is {load[0]:.2f} before starting; other processes share "
            "the CPUs, so the figures will be lower and noisier than on an idle machine"
        )
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        for name in args.stores:
            kinds = {"memory": MemoryStore, "sqlite": SQLiteStore, "postgres": PostgresStore}
            store: Store = kinds[name](Path(tmp))
            probe = {"sqlite": sqlite_available, "postgres": postgres_available}.get(name)
            why = probe() if probe is not None else None
            if why is not None:
                note(f"{name}: skipped, the store does not work here ({why})")
                results["stores"][name] = {"skipped": why}
                continue
            try:
                results["stores"][name] = run_store(store, args, note)
            finally:
                if isinstance(store, PostgresStore):
                    store.drop_schemas()

    results["load_average_after"] = os.getloadavg()
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print_table(table_rows(results), sys.stdout)
    before, after = results["load_average_before"][0], results["load_average_after"][0]
    print(f"\n{command}\nload average (1 min) before {before:.2f}, after {after:.2f}")
    print(f"results written to {args.out}")
    failed = [
        f"{s} drain {d['kind']} c={d['concurrency']}"
        for s, res in results["stores"].items()
        for d in res.get("drain", [])
        if not all(r["verified"]["ok"] for r in d["runs"])
    ]
    if failed:
        print(f"VERIFICATION FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
