"""Conveyor on PostgreSQL against Procrastinate and pgqueuer, in one run, with the same no-op jobs.

The peers are NOT dependencies of Conveyor: they live in a separate virtualenv made only for
this benchmark, which also holds Conveyor itself (editable) so that one interpreter runs all:

    python3 -m venv /tmp/benchpeers
    /tmp/benchpeers/bin/pip install procrastinate pgqueuer "psycopg[binary]" asyncpg py-spy \\
        -e "/work/main[postgres]"          # the repository's path
    /tmp/benchpeers/bin/python bench/postgres_peers.py

Options: --systems conveyor,conveyor-fast-acks,procrastinate,pgqueuer  --jobs 10000
--samples 200  --workers 1,2  --concurrency 10  --repeat 1  --server postgresql://postgres@127.0.0.1:5432

Every measurement gets its own fresh database (CREATE DATABASE bench_<random>, dropped after),
created on the server of --server (default the local one, trust auth). Per system:

- bulk enqueue: N jobs through the system's bulk API, timed with building the arguments;
- drain: N no-op jobs already queued, then W worker processes (this script re-run with
  --child) are told to go; the time runs until this process sees the last job recorded
  complete in the system's tables. Then every job is checked completed exactly once, both in
  the system's tables and by the workers' own count of executions;
- latency: one idle worker process; one job at a time is enqueued; the job writes
  time.time() on its first line to the worker's stdout; latency = that time minus
  time.time() just before the enqueue call.

Each system uses its documented public API: Conveyor `App`, `@app.job`, `app.enqueue_many`,
`app.worker`, `app.jobs`; Procrastinate `App(connector=PsycopgConnector(...))`, `@app.task`,
`task.batch_defer_async`, `app.run_worker_async`; pgqueuer `PgQueuer`, `@pgq.entrypoint`,
`Queries.enqueue` (list form), `pgq.run`. Results go to bench/peers-latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_PATH = HERE / "peers-latest.json"
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432"
SYSTEMS = ("conveyor", "conveyor-fast-acks", "procrastinate", "pgqueuer")


# output shared by the jobs and the stdin thread of a worker process --------------------------
_OUT_LOCK = threading.Lock()
_EXECUTED: Counter[int] = Counter()


def say(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, **fields}) + "\n"
    with _OUT_LOCK:
        sys.stdout.write(line)
        sys.stdout.flush()


def executed_noop(i: int) -> None:
    _EXECUTED[i] += 1


def stamped(i: int) -> None:
    say("stamp", i=i, t=time.time())


# databases -----------------------------------------------------------------------------------
def admin_execute(server: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(sql)


class FreshDatabase:
    """CREATE DATABASE bench_<random> on enter, DROP … WITH (FORCE) on exit."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.name = f"bench_{secrets.token_hex(5)}"
        self.dsn = f"{server}/{self.name}"

    def __enter__(self) -> FreshDatabase:
        admin_execute(self.server, f"CREATE DATABASE {self.name}")
        return self

    def __exit__(self, *exc: object) -> None:
        forget_connection(self.dsn)
        admin_execute(self.server, f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


_CONNECTIONS: dict[str, Any] = {}


def query(dsn: str, sql: str) -> list[tuple[Any, ...]]:
    """Run `sql` on one kept autocommit connection per database (the drain polls every 5 ms:
    a new connection each time would cost the server a process start)."""
    import psycopg

    conn = _CONNECTIONS.get(dsn)
    if conn is None or conn.closed:
        conn = _CONNECTIONS[dsn] = psycopg.connect(dsn, autocommit=True)
    try:
        return conn.execute(sql).fetchall()
    except psycopg.OperationalError:
        conn.close()
        raise


def forget_connection(dsn: str) -> None:
    conn = _CONNECTIONS.pop(dsn, None)
    if conn is not None:
        conn.close()


# systems -------------------------------------------------------------------------------------
class System:
    """One job system: producer side (this process) and worker side (--child)."""

    name = ""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.runner = asyncio.Runner()

    # producer side
    def setup(self) -> None:
        """Create the system's schema in the fresh database and open a producer."""

    def enqueue_bulk(self, n: int) -> list[Any]:
        raise NotImplementedError

    def enqueue_stamp(self, i: int) -> None:
        raise NotImplementedError

    def unfinished(self) -> int:
        """How many jobs are not yet recorded complete (cheap: polled every few ms)."""
        raise NotImplementedError

    def verify(self, ids: list[Any]) -> list[str]:
        """Problems found reading every job back from the system's tables ([] = all good)."""
        raise NotImplementedError

    def close(self) -> None:
        self.runner.close()

    # worker side
    def child(self, concurrency: int) -> None:
        raise NotImplementedError


class ConveyorSystem(System):
    name = "conveyor"
    options = ""

    @property
    def url(self) -> str:
        return f"{self.dsn}?schema=bench{self.options}"

    @staticmethod
    def build(url: str) -> tuple[Any, Any, Any]:
        from conveyor import App, Context

        app = App(url)

        @app.job(name="bench.noop")
        async def noop(ctx: Context, i: int) -> None:
            executed_noop(i)

        @app.job(name="bench.stamp")
        async def stamp(ctx: Context, i: int) -> None:
            stamped(i)

        return app, noop, stamp

    def setup(self) -> None:
        self.app, self.noop, self.stamp = self.build(self.url)
        _ = self.app.backend  # open the store, apply the migrations
        self.last_id: str | None = None

    def enqueue_bulk(self, n: int) -> list[Any]:
        handles = self.app.enqueue_many([self.noop.request(i=i) for i in range(n)])
        return [h.id for h in handles]

    def enqueue_stamp(self, i: int) -> None:
        self.stamp.enqueue(i=i)

    def unfinished(self) -> int:
        from conveyor import JobState

        # the cheap check of the job claimed last gates the counting one
        if self.last_id is not None and not self.app.jobs.require(self.last_id).is_finished:
            return -1
        by_state = self.app.jobs.counts().by_state
        done = sum(by_state.get(s.value, 0) for s in (JobState.COMPLETED, JobState.FAILED))
        return sum(by_state.values()) - done

    def verify(self, ids: list[Any]) -> list[str]:
        from run import verify_all_completed

        return list(verify_all_completed(self.app, ids)["problems"])

    def close(self) -> None:
        self.app.close()
        super().close()

    def child(self, concurrency: int) -> None:
        app, _, _ = self.build(self.url)
        _ = app.backend
        say("ready")
        wait_for_go()

        async def run() -> None:
            worker = app.worker(concurrency=concurrency)
            await worker.start()
            say("started", t=time.time())
            await asyncio.Event().wait()  # until the parent says stop (os._exit)

        asyncio.run(run())


class ConveyorFastAcks(ConveyorSystem):
    name = "conveyor-fast-acks"
    options = "&fast_acks=true"


class ProcrastinateSystem(System):
    name = "procrastinate"

    @staticmethod
    def build(dsn: str) -> tuple[Any, Any, Any]:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))

        @app.task(name="noop")
        async def noop(i: int) -> None:
            executed_noop(i)

        @app.task(name="stamp")
        async def stamp(i: int) -> None:
            stamped(i)

        return app, noop, stamp

    def setup(self) -> None:
        self.app, self.noop, self.stamp = self.build(self.dsn)

        async def go() -> None:
            await self.app.open_async()
            await self.app.schema_manager.apply_schema_async()

        self.runner.run(go())

    def enqueue_bulk(self, n: int) -> list[Any]:
        async def go() -> list[int]:
            return await self.noop.batch_defer_async(*[{"i": i} for i in range(n)])

        return list(self.runner.run(go()))

    def enqueue_stamp(self, i: int) -> None:
        self.runner.run(self.stamp.defer_async(i=i))

    def unfinished(self) -> int:
        rows = query(
            self.dsn,
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')",
        )
        return int(rows[0][0])

    def verify(self, ids: list[Any]) -> list[str]:
        problems = []
        rows = query(self.dsn, "SELECT id, status, attempts FROM procrastinate_jobs")
        seen = {row[0] for row in rows}
        if seen != set(ids) or len(rows) != len(ids):
            problems.append(f"{len(rows)} rows, {len(set(ids) - seen)} enqueued ids missing")
        states = Counter((str(row[1]), row[2]) for row in rows)
        if states != Counter({("succeeded", 1): len(ids)}):
            problems.append(f"(status, attempts) are {dict(states)}, expected all succeeded, 1")
        started = query(
            self.dsn,
            "SELECT job_id, count(*) FROM procrastinate_events WHERE type = 'started' "
            "GROUP BY job_id",
        )
        if len(started) != len(ids) or any(count != 1 for _, count in started):
            problems.append(f"'started' events: {len(started)} jobs, not each exactly once")
        return problems

    def close(self) -> None:
        self.runner.run(self.app.close_async())
        super().close()

    def child(self, concurrency: int) -> None:
        app, _, _ = self.build(self.dsn)

        async def run() -> None:
            async with app.open_async():
                say("ready")
                await asyncio.to_thread(wait_for_go)
                say("started", t=time.time())
                await app.run_worker_async(concurrency=concurrency, install_signal_handlers=False)

        asyncio.run(run())


class PgQueuerSystem(System):
    name = "pgqueuer"

    def setup(self) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        async def go() -> Any:
            conn = await asyncpg.connect(self.dsn)
            queries = Queries(AsyncpgDriver(conn))
            await queries.install()
            return conn, queries

        self.conn, self.queries = self.runner.run(go())

    def enqueue_bulk(self, n: int) -> list[Any]:
        async def go() -> list[Any]:
            payloads: list[bytes | None] = [b'{"i": %d}' % i for i in range(n)]
            return await self.queries.enqueue(["noop"] * n, payloads, [0] * n)

        return list(self.runner.run(go()))

    def enqueue_stamp(self, i: int) -> None:
        self.runner.run(self.queries.enqueue("stamp", b'{"i": %d}' % i))

    def unfinished(self) -> int:
        # a finished job leaves the queue table and is written to pgqueuer_log
        return int(query(self.dsn, "SELECT count(*) FROM pgqueuer")[0][0])

    def verify(self, ids: list[Any]) -> list[str]:
        problems = []
        left = query(self.dsn, "SELECT count(*) FROM pgqueuer")[0][0]
        if left:
            problems.append(f"{left} jobs still in the queue table")
        rows = query(
            self.dsn,
            "SELECT job_id, status::text, count(*) FROM pgqueuer_log "
            "WHERE status IN ('picked', 'successful', 'exception', 'failed') "
            "GROUP BY job_id, status",
        )
        by_status: dict[str, Counter[int]] = {}
        for job_id, status, count in rows:
            by_status.setdefault(status, Counter())[job_id] += count
        ok = by_status.get("successful", Counter())
        if set(ok) != set(ids) or any(c != 1 for c in ok.values()):
            problems.append(
                f"'successful' log rows for {len(ok)} jobs (expected {len(ids)}, each once)"
            )
        for status in ("exception", "failed"):
            if by_status.get(status):
                problems.append(f"{len(by_status[status])} jobs logged {status!r}")
        return problems

    def close(self) -> None:
        self.runner.run(self.conn.close())
        super().close()

    def child(self, concurrency: int) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Job, PgQueuer

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn)
            pgq = PgQueuer(AsyncpgDriver(conn))

            @pgq.entrypoint("noop")
            async def noop(job: Job) -> None:
                executed_noop(json.loads(job.payload or b"{}")["i"])

            @pgq.entrypoint("stamp")
            async def stamp(job: Job) -> None:
                stamped(json.loads(job.payload or b"{}")["i"])

            say("ready")
            await asyncio.to_thread(wait_for_go)
            say("started", t=time.time())
            # batch_size = the other systems' concurrency; the log aggregation timer is off
            # so that pgqueuer_log keeps every row for the verification
            await pgq.run(batch_size=concurrency, log_aggregation_interval=timedelta(0))

        asyncio.run(run())


SYSTEM_CLASSES: dict[str, type[System]] = {
    cls.name: cls for cls in (ConveyorSystem, ConveyorFastAcks, ProcrastinateSystem, PgQueuerSystem)
}


# worker processes ----------------------------------------------------------------------------
def wait_for_go() -> None:
    """Block until the parent says go; then watch stdin for stop in a daemon thread."""
    if sys.stdin.readline().strip() != "go":
        os._exit(0)

    def watch() -> None:
        sys.stdin.readline()  # "stop" or EOF
        say("stopped", executed=sum(_EXECUTED.values()), distinct=len(_EXECUTED),
            repeated=sum(1 for c in _EXECUTED.values() if c > 1))  # fmt: skip
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


class WorkerProcess:
    def __init__(self, system: str, dsn: str, concurrency: int, log_dir: Path) -> None:
        self.log_path = log_dir / f"{system}-{secrets.token_hex(3)}.log"
        self.log = self.log_path.open("w")
        command = [sys.executable, str(Path(__file__).resolve()), "--child", system, dsn]
        command += ["--concurrency", str(concurrency)]
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
            bufsize=1,
        )  # fmt: skip

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker process exited; its log: {self.log_path}")
        message: dict[str, Any] = json.loads(line)
        return message

    def expect(self, event: str) -> dict[str, Any]:
        message = self.read()
        if message["event"] != event:
            raise RuntimeError(f"worker said {message}, expected {event}")
        return message

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def stop(self) -> dict[str, Any]:
        self.send("stop")
        while (message := self.read())["event"] != "stopped":
            pass
        self.close()
        return message

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


# measurements --------------------------------------------------------------------------------
def bench_bulk(system: System, n: int) -> dict[str, Any]:
    start = time.perf_counter()
    ids = system.enqueue_bulk(n)
    seconds = time.perf_counter() - start
    if len(ids) != n or system.unfinished() != n:
        raise AssertionError(f"{system.name}: bulk enqueue of {n} returned {len(ids)} ids")
    return {"n": n, "seconds": seconds, "jobs_per_s": n / seconds}


def bench_drain(
    system: System, n: int, workers: int, concurrency: int, log_dir: Path
) -> dict[str, Any]:
    ids = system.enqueue_bulk(n)
    if isinstance(system, ConveyorSystem):
        system.last_id = max(ids)  # ids sort by creation: the last one claimed
    procs = [WorkerProcess(system.name, system.dsn, concurrency, log_dir) for _ in range(workers)]
    try:
        for p in procs:
            p.expect("ready")  # imported and connected, not yet running
        t0 = time.time()
        for p in procs:
            p.send("go")
        for p in procs:
            p.expect("started")
        while system.unfinished() != 0:
            time.sleep(0.005)
        seconds = time.time() - t0
        counts = [p.stop() for p in procs]
    finally:
        for p in procs:
            p.close()
    problems = system.verify(ids)
    executed = sum(c["executed"] for c in counts)
    if executed != n or any(c["repeated"] for c in counts):
        problems.append(f"workers executed {executed} no-ops ({[c for c in counts]})")
    return {
        "n": n,
        "workers": workers,
        "concurrency": concurrency,
        "seconds": seconds,
        "jobs_per_s": n / seconds,
        "executed_per_worker": [c["executed"] for c in counts],
        "verified": not problems,
        "problems": problems,
    }


def bench_latency(
    system: System, samples: int, concurrency: int, log_dir: Path, warmup: int = 10
) -> dict[str, Any]:
    import random

    rng = random.Random(7)
    proc = WorkerProcess(system.name, system.dsn, concurrency, log_dir)
    latencies = []
    try:
        proc.expect("ready")
        proc.send("go")
        proc.expect("started")
        time.sleep(0.3)  # settle into waiting for work
        for k in range(warmup + samples):
            before = time.time()
            system.enqueue_stamp(k)
            while (message := proc.read())["event"] != "stamp" or message["i"] != k:
                pass
            if k >= warmup:
                latencies.append((message["t"] - before) * 1000)
            time.sleep(rng.uniform(0.010, 0.020))  # the job finishes; the worker goes idle
    finally:
        proc.close()
    from run import percentile  # nearest rank, as bench/run.py reports it

    ordered = sorted(latencies)
    return {
        "samples": samples,
        "p50_ms": percentile(ordered, 50),
        "p90_ms": percentile(ordered, 90),
        "p99_ms": percentile(ordered, 99),
        "min_ms": ordered[0],
        "max_ms": ordered[-1],
        "mean_ms": statistics.fmean(ordered),
    }


def wait_for_server(server: str, note: Callable[[str], None], limit: float = 120) -> None:
    """Other test suites on this machine restart PostgreSQL: wait until it answers."""
    deadline = time.monotonic() + limit
    said = False
    while True:
        try:
            admin_execute(server, "SELECT 1")
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            if not said:
                note("server not reachable (restarted by something else?): waiting")
                said = True
            time.sleep(0.5)


def measure(
    name: str, server: str, fn: Callable[[System], dict[str, Any]], note: Callable[[str], None]
) -> dict[str, Any]:
    """Run `fn` on a fresh database; run it again (up to 3 times in all) when the server
    went away under it, which says nothing about the system measured."""
    for attempt in range(3):
        wait_for_server(server, note)
        db = FreshDatabase(server)
        try:
            with db:
                system = SYSTEM_CLASSES[name](db.dsn)
                try:
                    system.setup()
                    result = fn(system)
                finally:
                    with contextlib.suppress(Exception):
                        system.close()
        except Exception as exc:
            if attempt == 2:
                raise
            note(f"{name}: measurement interrupted ({type(exc).__name__}: {exc}); again")
            with contextlib.suppress(Exception):
                wait_for_server(server, note)
                admin_execute(server, f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
            continue
        result["database"] = db.name
        result["attempt"] = attempt + 1
        return result
    raise AssertionError("unreachable")


def run_round(
    name: str, r: int, out: dict[str, Any], args: argparse.Namespace, note: Callable[[str], None]
) -> None:
    """One run of every figure of one system, added to `out`."""
    log_dir = args.log_dir
    res = measure(name, args.server, lambda s: bench_bulk(s, args.jobs), note)
    out["bulk"].append(res)
    note(f"{name}: bulk enqueue {args.jobs:,}, run {r + 1}: {res['jobs_per_s']:,.0f} jobs/s")
    for w in args.workers:
        res = measure(
            name,
            args.server,
            lambda s, w=w: bench_drain(s, args.jobs, w, args.concurrency, log_dir),
            note,
        )
        out["drain"][str(w)].append(res)
        verdict = "verified" if res["verified"] else f"NOT VERIFIED {res['problems']}"
        note(
            f"{name}: drain {args.jobs:,} with {w} worker process(es), run {r + 1}: "
            f"{res['jobs_per_s']:,.0f} jobs/s in {res['seconds']:.2f} s ({verdict}; "
            f"per worker {res['executed_per_worker']})"
        )
    res = measure(
        name,
        args.server,
        lambda s: bench_latency(s, args.samples, args.concurrency, log_dir),
        note,
    )
    out["latency"].append(res)
    note(
        f"{name}: enqueue->start, run {r + 1}: p50 {res['p50_ms']:.2f} ms, "
        f"p99 {res['p99_ms']:.2f} ms"
    )


def median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def print_table(results: dict[str, Any]) -> None:
    workers = results["params"]["workers"]
    header = ["system", "bulk enqueue/s"]
    header += [f"drain/s, {w} worker proc" for w in workers]
    header += ["pickup p50 ms", "pickup p99 ms", "verified"]
    rows = [header]
    for name, res in results["systems"].items():
        if "error" in res:
            rows.append([name, f"failed: {res['error'][:80]}"] + [""] * (len(header) - 2))
            continue
        row = [name, f"{median(res['bulk'], 'jobs_per_s'):,.0f}"]
        row += [f"{median(res['drain'][str(w)], 'jobs_per_s'):,.0f}" for w in workers]
        row += [
            f"{median(res['latency'], 'p50_ms'):.2f}",
            f"{median(res['latency'], 'p99_ms'):.2f}",
        ]
        ok = all(r["verified"] for runs in res["drain"].values() for r in runs)
        row.append("yes" if ok else "NO")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for k, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("conveyor", "procrastinate", "pgqueuer", "psycopg", "asyncpg"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--workers", default="1,2", help="worker process counts for the drain")
    parser.add_argument("--concurrency", type=int, default=10, help="jobs at once per worker")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--server", default=DEFAULT_SERVER, help="URL without a database")
    parser.add_argument("--out", type=Path, default=RESULTS_PATH)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--child", nargs=2, metavar=("SYSTEM", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.systems = [s for s in args.systems.split(",") if s]
    for s in args.systems:
        if s not in SYSTEM_CLASSES:
            parser.error(f"unknown system {s!r}: use {', '.join(SYSTEMS)}")
    args.workers = [int(w) for w in args.workers.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        system, dsn = args.child
        SYSTEM_CLASSES[system](dsn).child(args.concurrency)
        return 0
    sys.path.insert(0, str(HERE))  # run.verify_all_completed for Conveyor

    def note(message: str) -> None:
        print(f"  {message}", file=sys.stderr, flush=True)

    from run import machine

    command = " ".join(
        shlex.quote(a) for a in [sys.executable, "bench/postgres_peers.py", *sys.argv[1:]]
    )
    pg_version = query(f"{args.server}/postgres", "SHOW server_version")[0][0]
    results: dict[str, Any] = {
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            **machine(),
            "postgresql": pg_version,
            "python_full": platform.python_version(),
        },
        "versions": versions(),
        "params": {
            "jobs": args.jobs,
            "samples": args.samples,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "repeat": args.repeat,
        },
        "load_average_before": os.getloadavg(),
        "systems": {},
    }
    note(f"load average before: {results['load_average_before']}")
    started = time.time()
    # rounds: every system once per round, so that a change of load on this shared machine
    # falls on all of them alike
    for name in args.systems:
        results["systems"][name] = {
            "bulk": [], "drain": {str(w): [] for w in args.workers}, "latency": []
        }  # fmt: skip
    for r in range(args.repeat):
        for name in args.systems:
            out = results["systems"][name]
            if "error" in out:
                continue
            try:
                run_round(name, r, out, args, note)
            except Exception as exc:  # a peer that cannot run here: say why, carry on
                note(f"{name}: FAILED: {type(exc).__name__}: {exc}")
                out["error"] = f"{type(exc).__name__}: {exc}"
        note(f"round {r + 1} done, load average {os.getloadavg()}")
    results["load_average_after"] = os.getloadavg()
    results["wall_seconds"] = time.time() - started
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print_table(results)
    print(f"\n{command}")
    before, after = results["load_average_before"][0], results["load_average_after"][0]
    print(f"load average (1 min) before {before:.2f}, after {after:.2f}; "
          f"{results['wall_seconds']:.0f} s; results in {args.out}")  # fmt: skip
    bad = [
        n
        for n, res in results["systems"].items()
        if "error" in res or not all(r["verified"] for runs in res["drain"].values() for r in runs)
    ]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
