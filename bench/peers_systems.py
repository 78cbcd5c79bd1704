"""The job systems bench/peers.py compares, each through its own documented public API.

Every system runs the same two job bodies, `work_sync` (a plain `def`) and `work_async` (an
`async def`), and each appends one line, "<i> <time.time()>", to the file named by the
environment variable PEERS_LINES (a regular file for a drain, a FIFO for the pickup latency).
A system has a producer side (this process: schema, bulk and single enqueue, how many jobs are
unfinished, a check of every job in its own tables) and a worker side (`run_worker`, called
in a separate process started by bench/peers.py with `--child`).

The settings each system runs with are in SETTINGS: "default" is what a user gets without
choosing anything, "tuned" is what that library's documentation offers for throughput.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

LINES_ENV = "PEERS_LINES"
KINDS = ("sync", "async")


def append_line(i: int) -> None:
    """The job body of every system: append one line to the file of PEERS_LINES."""
    with open(os.environ[LINES_ENV], "a") as out:
        out.write(f"{i} {time.time():.6f}\n")


# What each system runs with, shown in the printed table's notes and in bench/README.md.
SETTINGS: dict[str, dict[str, dict[str, Any]]] = {
    "conveyor-pg": {
        "default": {"url_options": "", "app": {}},
        "tuned": {"url_options": "&fast_acks=true", "app": {"concurrency": 100}},
    },
    "pgqueuer": {
        "default": {"run": {}},
        "tuned": {"run": {"batch_size": 100}},
    },
    "procrastinate": {
        "default": {"worker": {}},
        "tuned": {"worker": {"concurrency": 10}},
    },
    "conveyor-sqlite": {
        "default": {"app": {}},
        "tuned": {"app": {"concurrency": 100}},
    },
    "huey": {
        "default": {"consumer": {}},
        "tuned": {
            "consumer": {"workers": 4, "initial_delay": 0.001, "backoff": 1.15, "max_delay": 0.01}
        },
    },
}

SETTINGS_TEXT = {
    "conveyor-pg": (
        "App(url) and app.worker().run_forever(): concurrency 10, adaptive prefetch",
        "App(url + '&fast_acks=true', concurrency=100)",
    ),
    "pgqueuer": (
        "PgQueuer(AsyncpgDriver(conn)).run(): batch_size 10, no cap on concurrent tasks; "
        "the sync body through asyncio.to_thread (pgqueuer runs async entrypoints only)",
        "run(batch_size=100)",
    ),
    "procrastinate": (
        "App(connector=PsycopgConnector(...)).run_worker_async(): concurrency 1, "
        "LISTEN/NOTIFY; sync tasks on its thread pool",
        "run_worker_async(concurrency=10)",
    ),
    "conveyor-sqlite": (
        "App('sqlite:///file') and app.worker().run_forever(): concurrency 10",
        "App(url, concurrency=100)",
    ),
    "huey": (
        "SqliteHuey(filename=...).create_consumer().run(): 1 worker thread, polling from "
        "0.1 s growing by 1.15x to 10 s while idle; no async tasks",
        "create_consumer(workers=4, initial_delay=0.001, backoff=1.15, max_delay=0.01)",
    ),
}


class System:
    """One job system on one fresh store (`where`: a database URL or a SQLite file)."""

    name = ""
    store = ""  # "postgres" or "sqlite"
    kinds = KINDS
    package = ""  # the distribution whose version is reported

    def __init__(self, where: str, settings: str) -> None:
        self.where = where
        self.settings = settings
        self.options = SETTINGS[self.name][settings]
        self.runner = asyncio.Runner()

    # producer side
    def setup(self) -> None:
        """Create the schema and open a producer."""

    def enqueue_bulk(self, kind: str, start: int, n: int) -> int:
        """Enqueue jobs start..start+n-1 through the system's bulk API; returns how many."""
        raise NotImplementedError

    def enqueue_one(self, kind: str, i: int) -> None:
        raise NotImplementedError

    def pending(self) -> int:
        """Jobs not yet recorded finished in the store."""
        raise NotImplementedError

    def verify(self, n: int) -> list[str]:
        """Problems found reading the store's own state after a drain of n jobs ([] = good)."""
        raise NotImplementedError

    def close(self) -> None:
        self.runner.close()

    # worker side (in the child process)
    def run_worker(self, ready: Any) -> None:
        """Build the system's worker with its settings, call ready(), then run until killed."""
        raise NotImplementedError


# PostgreSQL ----------------------------------------------------------------------------------
class ConveyorPg(System):
    name = "conveyor-pg"
    store = "postgres"
    package = "conveyor"

    @property
    def url(self) -> str:
        return f"{self.where}?schema=bench{self.options.get('url_options', '')}"

    def build(self) -> tuple[Any, dict[str, Any]]:
        from conveyor import App, Context

        app = App(self.url, **self.options["app"])

        @app.job(name="work_sync")
        def work_sync(ctx: Context, i: int) -> None:
            append_line(i)

        @app.job(name="work_async")
        async def work_async(ctx: Context, i: int) -> None:
            append_line(i)

        return app, {"sync": work_sync, "async": work_async}

    def setup(self) -> None:
        self.app, self.jobs = self.build()
        _ = self.app.backend  # opens the store and applies the migrations
        self.ids: list[str] = []

    def enqueue_bulk(self, kind: str, start: int, n: int) -> int:
        fn = self.jobs[kind]
        handles = self.app.enqueue_many([fn.request(i=i) for i in range(start, start + n)])
        self.ids += [h.id for h in handles]
        return len(handles)

    def enqueue_one(self, kind: str, i: int) -> None:
        self.jobs[kind].enqueue(i=i)

    def pending(self) -> int:
        from conveyor import JobState

        by_state = self.app.jobs.counts().by_state
        done = sum(by_state.get(s.value, 0) for s in (JobState.COMPLETED, JobState.FAILED))
        return sum(by_state.values()) - done

    def verify(self, n: int) -> list[str]:
        from run import verify_all_completed

        if len(self.ids) != n:
            return [f"{len(self.ids)} jobs enqueued, expected {n}"]
        return list(verify_all_completed(self.app, self.ids)["problems"])

    def close(self) -> None:
        self.app.close()
        super().close()

    def run_worker(self, ready: Any) -> None:
        app, _ = self.build()
        worker = app.worker()
        ready()
        worker.run_forever()


class ConveyorSqlite(ConveyorPg):
    name = "conveyor-sqlite"
    store = "sqlite"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.where}"


class PgQueuerSystem(System):
    name = "pgqueuer"
    store = "postgres"
    package = "pgqueuer"

    def setup(self) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Queries

        async def go() -> Any:
            conn = await asyncpg.connect(self.where)
            queries = Queries(AsyncpgDriver(conn))
            await queries.install()
            return conn, queries

        self.conn, self.queries = self.runner.run(go())

    def enqueue_bulk(self, kind: str, start: int, n: int) -> int:
        async def go() -> int:
            payloads: list[bytes | None] = [b"%d" % i for i in range(start, start + n)]
            ids = await self.queries.enqueue([f"work_{kind}"] * n, payloads, [0] * n)
            return len(ids)

        return self.runner.run(go())

    def enqueue_one(self, kind: str, i: int) -> None:
        self.runner.run(self.queries.enqueue(f"work_{kind}", b"%d" % i))

    def pending(self) -> int:
        # a finished job leaves the queue table for pgqueuer_log
        return int(self.runner.run(self.conn.fetchval("SELECT count(*) FROM pgqueuer")))

    def verify(self, n: int) -> list[str]:
        problems = []
        left = self.runner.run(self.conn.fetchval("SELECT count(*) FROM pgqueuer"))
        if left:
            problems.append(f"{left} jobs still in the queue table")
        rows = self.runner.run(
            self.conn.fetch(
                "SELECT status::text AS status, count(*) AS n, count(DISTINCT job_id) AS jobs "
                "FROM pgqueuer_log WHERE status <> 'queued' AND status <> 'picked' "
                "GROUP BY status"
            )
        )
        by_status = {r["status"]: (r["n"], r["jobs"]) for r in rows}
        if by_status != {"successful": (n, n)}:
            problems.append(f"pgqueuer_log (rows, jobs) by status {by_status}, expected {n} ok")
        return problems

    def close(self) -> None:
        self.runner.run(self.conn.close())
        super().close()

    def run_worker(self, ready: Any) -> None:
        import asyncpg
        from pgqueuer import AsyncpgDriver, Job, PgQueuer

        async def run() -> None:
            conn = await asyncpg.connect(self.where)
            pgq = PgQueuer(AsyncpgDriver(conn))

            @pgq.entrypoint("work_async")
            async def work_async(job: Job) -> None:
                append_line(int(job.payload or b"-1"))

            @pgq.entrypoint("work_sync")
            async def work_sync(job: Job) -> None:
                # pgqueuer's own advice for blocking code (it runs async entrypoints only)
                await asyncio.to_thread(append_line, int(job.payload or b"-1"))

            ready()
            await pgq.run(**self.options["run"])

        asyncio.run(run())


class ProcrastinateSystem(System):
    name = "procrastinate"
    store = "postgres"
    package = "procrastinate"

    def build(self) -> tuple[Any, dict[str, Any]]:
        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=self.where))

        @app.task(name="work_sync")
        def work_sync(i: int) -> None:
            append_line(i)

        @app.task(name="work_async")
        async def work_async(i: int) -> None:
            append_line(i)

        return app, {"sync": work_sync, "async": work_async}

    def setup(self) -> None:
        self.app, self.tasks = self.build()

        async def go() -> None:
            await self.app.open_async()
            await self.app.schema_manager.apply_schema_async()

        self.runner.run(go())
        import psycopg

        self.conn = psycopg.connect(self.where, autocommit=True)  # for pending() and verify()

    def enqueue_bulk(self, kind: str, start: int, n: int) -> int:
        task = self.tasks[kind]

        async def go() -> int:
            ids = await task.batch_defer_async(*[{"i": i} for i in range(start, start + n)])
            return len(ids)

        return self.runner.run(go())

    def enqueue_one(self, kind: str, i: int) -> None:
        self.runner.run(self.tasks[kind].defer_async(i=i))

    def pending(self) -> int:
        sql = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        return int(self.conn.execute(sql).fetchall()[0][0])

    def verify(self, n: int) -> list[str]:
        sql = "SELECT status::text, attempts, count(*) FROM procrastinate_jobs GROUP BY 1, 2"
        rows = self.conn.execute(sql).fetchall()
        states = {(status, attempts): count for status, attempts, count in rows}
        if states != {("succeeded", 1): n}:
            return [f"(status, attempts) counts {states}, expected {n} succeeded once"]
        return []

    def close(self) -> None:
        self.conn.close()
        self.runner.run(self.app.close_async())
        super().close()

    def run_worker(self, ready: Any) -> None:
        app, _ = self.build()

        async def run() -> None:
            async with app.open_async():
                ready()
                await app.run_worker_async(**self.options["worker"])

        asyncio.run(run())


# SQLite --------------------------------------------------------------------------------------
class HueySystem(System):
    name = "huey"
    store = "sqlite"
    kinds = ("sync",)  # huey has no async tasks
    package = "huey"

    def build(self) -> tuple[Any, dict[str, Any]]:
        from huey import SqliteHuey

        huey = SqliteHuey(filename=self.where)

        @huey.task(name="work_sync")
        def work_sync(i: int) -> None:
            append_line(i)

        return huey, {"sync": work_sync}

    def setup(self) -> None:
        self.huey, self.tasks = self.build()

    def enqueue_bulk(self, kind: str, start: int, n: int) -> int:
        self.tasks[kind].map(range(start, start + n))  # huey's one multi-job call
        return n

    def enqueue_one(self, kind: str, i: int) -> None:
        self.tasks[kind](i)

    def pending(self) -> int:
        return int(self.huey.pending_count())

    def verify(self, n: int) -> list[str]:
        problems = []
        if self.huey.pending_count() or self.huey.scheduled_count():
            problems.append(
                f"{self.huey.pending_count()} pending, {self.huey.scheduled_count()} scheduled"
            )
        if self.huey.result_count():  # None results are not stored: these are errors
            problems.append(f"{self.huey.result_count()} results stored (errors?)")
        return problems

    def close(self) -> None:
        self.huey.storage.close()
        super().close()

    def run_worker(self, ready: Any) -> None:
        huey, _ = self.build()
        consumer = huey.create_consumer(**self.options["consumer"])
        ready()
        consumer.run()


SYSTEMS: dict[str, type[System]] = {
    cls.name: cls
    for cls in (ConveyorPg, PgQueuerSystem, ProcrastinateSystem, ConveyorSqlite, HueySystem)
}


def importable(name: str) -> str | None:
    """None when the libraries of system `name` import here, else why not."""
    modules = {
        "conveyor-pg": ["conveyor", "psycopg", "psycopg_pool"],
        "pgqueuer": ["pgqueuer", "asyncpg"],
        "procrastinate": ["procrastinate", "psycopg"],
        "conveyor-sqlite": ["conveyor"],
        "huey": ["huey"],
    }[name]
    for module in modules:
        try:
            __import__(module)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            return f"{module} does not import ({why}); install with pip install -e '.[bench]'"
    return None


def count_lines(path: Path, n: int) -> list[str]:
    """Problems with the lines the jobs wrote: each of 0..n-1 exactly once ([] = good)."""
    seen: Counter[int] = Counter()
    with path.open() as lines:
        for line in lines:
            seen[int(line.split()[0])] += 1
    problems = []
    if sum(seen.values()) != n:
        problems.append(f"{sum(seen.values())} lines written, expected {n}")
    if set(seen) != set(range(n)):
        problems.append(f"{len(set(range(n)) - set(seen))} jobs never ran")
    repeated = sum(1 for c in seen.values() if c > 1)
    if repeated:
        problems.append(f"{repeated} jobs ran more than once")
    return problems


def sqlite_version() -> str:
    return sqlite3.sqlite_version


def child_main(system: str, settings: str, where: str) -> None:
    """A worker process: report readiness (with CPU spent starting) on stdout, then run."""
    import resource
    import threading

    def ready() -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        line = {"event": "ready", "t": time.time(), "cpu": usage.ru_utime + usage.ru_stime}
        print("PEERS " + json.dumps(line), flush=True)

    def watch_parent() -> None:
        # the parent holds our stdin open: EOF means it is gone, so go too
        import sys

        sys.stdin.read()
        os._exit(0)

    threading.Thread(target=watch_parent, daemon=True).start()
    SYSTEMS[system](where, settings).run_worker(ready)
