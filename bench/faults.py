"""Fault runs: the fault suite's scenarios (tests/faults) with larger N, and their figures.

    .venv/bin/python bench/faults.py [--stores sqlite,postgres] [--kills 100]
        [--rss-jobs 500000] [--restarts 3] [--rounds 5]
        [--scenarios kill,restart,term,stop,produce,rss]

Scenarios, each on every store given (restart: PostgreSQL only):
  kill     3 workers of 4 slots run 0.2 s jobs; a busy one is SIGKILLed about every second and
           replaced, --kills times. Jobs lost, left stuck, run again (and whether each re-run
           is explained by a killed attempt recorded `lost`), and the recovery time after a
           kill: from the SIGKILL until every job the victim held is running elsewhere or done.
  restart  2 workers run 0.02 s jobs while the server is restarted (pg_ctlcluster) --restarts
           times: the restart command's duration, the gap in job starts, the time until both
           workers ran jobs again; lost, stuck, re-runs.
  term     SIGTERM to a worker whose 4 jobs outlast its 1 s shutdown timeout, --rounds times
           (async and thread jobs in turn): its exit time; the jobs released (attempt given
           back) and completed by a second worker.
  stop     SIGSTOP a worker mid-job, --rounds times: time until another worker re-runs the job;
           after SIGCONT its stale outcome refused and the re-run's result kept.
  produce  20 producers (4 processes of 5 threads), each enqueueing 100 shared unique keys
           twice and 400 jobs without a key: duplicates, jobs stored once, the rate.
  rss      one worker drains --rss-jobs queued no-op jobs: its RSS at each tenth of the drain.

The worker program is tests/faults/fault_app.py, run as `python -m conveyor.cli worker`; the
checks are tests/faults/support.py's. PostgreSQL uses a fresh schema of the database at
$CONVEYOR_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), dropped at the end.
The restart scenario restarts that machine's server: every other client of it sees it go away.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # before bench/: `faults` is tests/faults

import conveyor  # noqa: E402
from conveyor import JobState  # noqa: E402
from conveyor.errors import StoreUnavailable  # noqa: E402
from faults.support import (  # noqa: E402
    APP_DIR,
    Pool,
    RunLog,
    audit,
    completed,
    enqueue_records,
    freeze,
    producer,
    rss_kib,
)

BASE = os.environ.get("CONVEYOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
FAST = {"lease_seconds": 2.0, "heartbeat_interval": 0.2, "sweep_interval": 0.2}
Row = dict[str, Any]


def wait_for(
    predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.02
) -> None:
    """Poll `predicate` every `interval` s until truthy; TimeoutError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@contextmanager
def store(kind: str) -> Iterator[tuple[str, Path]]:
    """A fresh store of `kind` and a scratch folder (the SQLite file, the run log)."""
    folder = Path(tempfile.mkdtemp(prefix="conveyor-faults-"))
    schema = f"bench_faults_{secrets.token_hex(4)}"
    try:
        if kind == "sqlite":
            yield f"sqlite:///{folder}/jobs.db", folder
        else:
            yield f"{BASE}?schema={schema}&connect_timeout=2&pool_timeout=2", folder
    finally:
        if kind == "postgres":
            import psycopg

            wait_for(server_ready, 60, "PostgreSQL to drop the schema")
            with psycopg.connect(BASE, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def setup(kind: str, **settings: float) -> Iterator[tuple[conveyor.App, Pool, RunLog, Path]]:
    """A store, its producer App (schema created) and a worker pool, all cleaned up after."""
    with store(kind) as (url, folder):
        app = producer(url)
        app.jobs.counts()
        runs = RunLog(folder / "runs.log")
        pool = Pool(url, runs.path, **settings)
        try:
            yield app, pool, runs, folder
        except BaseException:
            print(pool.report(40), file=sys.stderr)
            raise
        finally:
            pool.close()
            app.close()


def held(app: conveyor.App, job_id: str, tag: str) -> bool:
    """Whether the job is still running under the worker whose id holds `tag` (`:PID:`)."""
    job = app.jobs.require(job_id)
    return job.state is JobState.RUNNING and tag in (job.worker_id or "")


def logged_more(runs: RunLog, lines: int) -> bool:
    """Whether the run log has more than `lines` lines."""
    return len(runs.read()) > lines


def running_in(runs: RunLog, proc: subprocess.Popen[bytes], count: int) -> bool:
    """Whether `count` job bodies (or more) are running in `proc`, by the run log."""
    return len(runs.in_flight().get(proc.pid, ())) >= count


def completed_at_least(app: conveyor.App, count: int) -> bool:
    return completed(app) >= count


def spread(values: list[float]) -> str:
    """median / p95 / max of some seconds."""
    if not values:
        return "-"
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered):.2f} / {p95:.2f} / {ordered[-1]:.2f}"


# scenarios ---------------------------------------------------------------------------------
def kills(kind: str, count: int, pace: float = 1.0) -> Row:
    rng = random.Random()
    jobs = count * 70  # 12 slots of 0.2 s jobs run about 55 a second between kills
    with setup(kind, **FAST) as (app, pool, runs, _):
        ids = enqueue_records(app, jobs, 0.2)
        for _ in range(3):
            pool.start(concurrency=4)
        wait_for(lambda: len(app.jobs.workers()) == 3, 60, "3 workers up")
        started = time.monotonic()
        recoveries: list[float] = []
        watching: list[tuple[float, str, list[str]]] = []  # kill time, victim tag, its jobs
        done = 0
        next_kill = time.monotonic()
        while done < count or watching:
            now = time.monotonic()
            for entry in list(watching):
                at, tag, job_ids = entry
                if not any(held(app, job_id, tag) for job_id in job_ids):
                    recoveries.append(now - at)
                    watching.remove(entry)
            if done < count and now >= next_kill:
                flying = runs.in_flight()
                busy = [proc for proc in pool.alive() if flying.get(proc.pid)]
                if not busy and completed(app) == jobs:
                    print(f"  ran out of jobs after {done} kills", file=sys.stderr)
                    count = done
                    continue
                if busy:
                    victim = rng.choice(busy)
                    tag = f":{victim.pid}:"
                    running = app.jobs.list(state="running", per_page=1000).jobs
                    mine = [job.id for job in running if tag in (job.worker_id or "")]
                    pool.kill(victim)
                    killed_at = time.monotonic()
                    if mine:
                        watching.append((killed_at, tag, mine))
                    pool.start(concurrency=4)
                    done += 1
                    next_kill = killed_at + pace
            time.sleep(0.02)
        wait_for(lambda: completed(app) == jobs, 600, "every job to complete")
        wall = time.monotonic() - started
        found = audit(app, ids, runs, pool.killed)
        return {
            "store": kind, "jobs": jobs, "kills": done, "lost": len(found.lost),
            "stuck": len(found.stuck), "ran twice+": found.duplicates,
            "extra runs": found.extra_runs, "cut short": found.interrupted,
            "unexplained": len(found.unexplained),
            "recovery s (median/p95/max)": spread(recoveries),
            "wall s": round(wall, 1), "worker deaths": len(pool.unexpected_exits()),
        }  # fmt: skip


def cluster_version() -> str | None:
    """The newest PostgreSQL version with a `main` cluster under /etc/postgresql."""
    clusters = Path("/etc/postgresql")
    if shutil.which("pg_ctlcluster") is None or not clusters.is_dir():
        return None
    versions = [path.name for path in clusters.iterdir() if (path / "main").is_dir()]
    return max(versions, key=lambda v: [int(p) for p in re.findall(r"\d+", v)], default=None)


def command_for(version: str) -> list[str]:
    """pg_ctlcluster for the main cluster of `version`, as the current user, without systemd."""
    return ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]


def server_ready() -> bool:
    return subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1"], check=False).returncode == 0


def restarts(count: int) -> Row:
    version = cluster_version()
    if version is None:
        raise SystemExit("the restart scenario needs pg_ctlcluster and /etc/postgresql/*/main")
    jobs = 4000 * count
    with setup("postgres", **FAST) as (app, pool, runs, _):
        workers = [pool.start(concurrency=4) for _ in range(2)]
        wait_for(lambda: len(app.jobs.workers()) == 2, 60, "2 workers up")
        ids = enqueue_records(app, jobs, 0.02)
        commands: list[float] = []
        gaps: list[float] = []
        resumes: list[float] = []
        try:
            for _ in range(count):
                before = len(runs.read())  # 2 lines a job: some 4 s of work between restarts
                wait_for(partial(logged_more, runs, before + 3000), 60, "work between restarts")
                issued = time.time()
                subprocess.run([*command_for(version), "restart"], check=True, capture_output=True)
                back = time.time()
                commands.append(back - issued)

                def resumed(back: float = back) -> bool:
                    pids = {r.pid for r in runs.read() if r.event == "start" and r.at > back}
                    return all(proc.pid in pids for proc in workers)

                wait_for(resumed, 120, "both workers to run jobs again")
                log = runs.read()
                first = {
                    proc.pid: min(r.at for r in log if r.pid == proc.pid and r.at > back)
                    for proc in workers
                }
                both_back = max(first.values())
                resumes.append(both_back - back)
                # the longest pause in job starts, from the last start before the restart
                # command to the moment both workers had started jobs again
                starts = sorted(r.at for r in log if r.event == "start")
                window = [max(at for at in starts if at <= issued)]
                window += [at for at in starts if issued < at <= both_back]
                gaps.append(max(b - a for a, b in itertools.pairwise(window)))
        finally:
            if not server_ready():
                subprocess.run([*command_for(version), "start"], check=False)

        def all_done() -> bool:
            try:
                return completed(app) == jobs
            except StoreUnavailable:
                return False

        wait_for(all_done, 600, "every job to complete")
        found = audit(app, ids, runs, killed=set())
        return {
            "store": "postgres", "jobs": jobs, "restarts": count,
            "pg_ctl restart s": spread(commands), "gap in job starts s": spread(gaps),
            "both workers back s": spread(resumes), "lost": len(found.lost),
            "stuck": len(found.stuck), "ran twice+": found.duplicates,
            "unexplained": len(found.unexplained),
            "worker deaths": len(pool.unexpected_exits()),
        }  # fmt: skip


def terms(kind: str, rounds: int) -> Row:
    exits: list[float] = []
    released = completed_elsewhere = 0
    settings = {"lease_seconds": 30.0, "heartbeat_interval": 0.5, "shutdown_timeout": 1.0}
    with setup(kind, **settings) as (app, pool, runs, folder):
        for round_ in range(rounds):
            gate = folder / f"gate-{round_}"
            name = "hold" if round_ % 2 == 0 else "hold_sync"
            first = pool.start(concurrency=4)
            handles = [app.enqueue(name, {"gate": str(gate)}) for _ in range(4)]
            wait_for(partial(running_in, runs, first, 4), 60, "4 jobs running")
            second = pool.start(concurrency=4)
            wait_for(lambda: len(app.jobs.workers()) == 2, 60, "the second worker")
            first.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            code = first.wait(60)
            exits.append(time.monotonic() - sent)
            assert code == 0, pool.output(first)
            gate.touch()
            for handle in handles:
                job = handle.wait(60)
                starts = [r for r in runs.by_job()[handle.id] if r.event == "start"]
                released += [r.attempt for r in starts] == [1, 1] and not job.errors
                completed_elsewhere += job.attempt == 1 and job.result == second.pid
            second.send_signal(signal.SIGTERM)
            second.wait(60)
        return {
            "store": kind, "rounds": rounds, "jobs": 4 * rounds,
            "exit after SIGTERM s (median/p95/max)": spread(exits), "shutdown_timeout s": 1.0,
            "released, attempt given back": released,
            "completed on the other worker": completed_elsewhere,
        }  # fmt: skip


def stops(kind: str, rounds: int) -> Row:
    rescues: list[float] = []
    refused = kept = 0
    with setup(kind, **FAST) as (app, pool, runs, folder):
        for round_ in range(rounds):
            gate = folder / f"gate-{round_}"
            frozen = pool.start(concurrency=2)
            handle = app.enqueue("hold", {"gate": str(gate)})
            wait_for(partial(running_in, runs, frozen, 1), 60, "the first run")
            wait_for(partial(freeze, frozen, app.url), 30, "a freeze outside a write")
            frozen_at = time.monotonic()
            other = pool.start(concurrency=2)

            def rerun(o: subprocess.Popen[bytes] = other, h: str = handle.id) -> bool:
                return h in runs.in_flight().get(o.pid, set())

            wait_for(rerun, 60, "the re-run")
            rescues.append(time.monotonic() - frozen_at)
            gate.touch()
            handle.wait(60)
            frozen.send_signal(signal.SIGCONT)

            def said(f: subprocess.Popen[bytes] = frozen, h: str = handle.id) -> bool:
                return any(h in line and "was not recorded" in line for line in
                           pool.output(f).splitlines())  # fmt: skip

            wait_for(said, 60, "the stale outcome refused")
            refused += 1
            job = handle.refresh()
            kept += (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, other.pid)
            for proc in (frozen, other):
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
        return {
            "store": kind, "rounds": rounds,
            "freeze to re-run s (median/p95/max)": spread(rescues), "lease s": 2.0,
            "stale outcome refused": refused, "re-run's result kept": kept,
        }  # fmt: skip


def produce(kind: str, keys: int = 100, plain: int = 400) -> Row:
    with setup(kind) as (app, _, _, folder):
        go = folder / "go"
        procs = [
            subprocess.Popen(
                [
                    *(sys.executable, str(APP_DIR / "produce.py"), app.url, str(go)),
                    *(str(first), "5", str(keys), str(plain)),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for first in range(0, 20, 5)
        ]
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
        started = time.monotonic()
        go.touch()
        outputs = [proc.communicate(timeout=600) for proc in procs]
        wall = time.monotonic() - started
        assert all(proc.returncode == 0 for proc in procs), [err for _, err in outputs]
        answers = [answer for out, _ in outputs for answer in json.loads(out)]
        stored: list[conveyor.Job] = []
        page = 1
        while batch := app.jobs.list(page=page, per_page=1000).jobs:
            stored += batch
            page += 1
        keyed = Counter(job.unique_key for job in stored if job.unique_key)
        ids = Counter(job.id for job in stored)
        created = Counter(key for _, key, made in answers if key and made)
        return {
            "store": kind, "producers": 20, "enqueues": len(answers),
            "enqueues/s": round(len(answers) / wall), "stored": len(stored),
            "expected": 20 * plain + keys,
            "unique-key duplicates": sum(n - 1 for n in keyed.values()),
            "keys created twice": sum(1 for n in created.values() if n > 1),
            "ids stored twice": sum(1 for n in ids.values() if n > 1),
        }  # fmt: skip


def rss(kind: str, jobs: int) -> Row:
    with setup(kind) as (app, pool, _, _):
        started = time.monotonic()
        for start in range(0, jobs, 10_000):
            batch = [app.request("noop", {"n": n}) for n in range(start, min(jobs, start + 10_000))]
            app.enqueue_many(batch)
        enqueued = time.monotonic() - started
        worker = pool.start(concurrency=10, log_level="warning")
        samples: list[tuple[int, int]] = []  # (completed, RSS KiB) at each tenth
        began = time.monotonic()
        for tenth in range(1, 11):
            # counting 500,000 rows is work for the store: not more than twice a second
            done = partial(completed_at_least, app, jobs * tenth // 10)
            wait_for(done, 1800, f"{tenth}/10 done", interval=0.5)
            samples.append((completed(app), rss_kib(worker.pid)))
        drain = time.monotonic() - began
        peak = rss_kib(worker.pid, "VmHWM")
        print(f"  {kind} RSS by tenth (KiB): {[kib for _, kib in samples]}", file=sys.stderr)
        return {
            "store": kind, "queued jobs": jobs, "enqueue s": round(enqueued, 1),
            "drain s": round(drain, 1), "RSS at 10 % MiB": round(samples[0][1] / 1024, 1),
            "RSS at 100 % MiB": round(samples[-1][1] / 1024, 1),
            "growth 10→100 % MiB": round((samples[-1][1] - samples[0][1]) / 1024, 1),
            "peak (VmHWM) MiB": round(peak / 1024, 1),
        }  # fmt: skip


def table(title: str, rows: list[Row]) -> str:
    """A Markdown table of rows that share their keys."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = [f"### {title}", "", "| " + " | ".join(keys) + " |"]
    lines.append("|" + "|".join("---" if k == "store" else "---:" for k in keys) + "|")
    lines += ["| " + " | ".join(str(row[k]) for k in keys) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--scenarios", default="kill,restart,term,stop,produce,rss")
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rss-jobs", type=int, default=500_000)
    args = parser.parse_args()
    stores = args.stores.split(",")
    chosen = args.scenarios.split(",")
    runs: dict[str, Callable[[str], Row]] = {
        "kill": lambda kind: kills(kind, args.kills),
        "term": lambda kind: terms(kind, args.rounds),
        "stop": lambda kind: stops(kind, args.rounds),
        "produce": produce,
        "rss": lambda kind: rss(kind, args.rss_jobs),
    }
    titles = {
        "kill": f"{args.kills} SIGKILLs", "restart": "PostgreSQL restarts",
        "term": "SIGTERM with long jobs", "stop": "A frozen worker (SIGSTOP)",
        "produce": "20 concurrent producers", "rss": f"RSS draining {args.rss_jobs:,} jobs",
    }  # fmt: skip
    print(f"load average at the start: {os.getloadavg()}", file=sys.stderr)
    out = []
    for name in chosen:
        started = time.monotonic()
        if name == "restart":
            rows = [restarts(args.restarts)] if "postgres" in stores else []
        else:
            rows = [runs[name](kind) for kind in stores]
        print(f"{name}: {time.monotonic() - started:.0f} s", file=sys.stderr)
        out.append(table(titles[name], rows))
        print(out[-1], flush=True)
    print(f"load average at the end: {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    main()
