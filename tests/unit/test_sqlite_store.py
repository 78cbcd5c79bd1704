"""What only the SQLite store promises: its schema, durability, and safety across processes.

Behaviour shared with the other stores is covered by the contract suite in tests/contract.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conveyor.backends import open_backend
from conveyor.backends.records import ClaimRequest, Outcome, Report
from conveyor.backends.sqlite import SQLiteBackend
from conveyor.backends.sqlite import backend as backend_module
from conveyor.backends.sqlite import database as database_module
from conveyor.backends.sqlite.sql import Q, migrations
from conveyor.errors import ConfigurationError, DuplicateJobId, StoreUnavailable
from conveyor.model.job import AttemptError, JobState, LogLine, NewJob
from conveyor.model.settings import Settings
from helpers import wait_until

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
LEASE = timedelta(seconds=30)

EXPECTED_SCHEMA = {
    ("table", "conveyor_schema_version"),
    ("table", "conveyor_jobs"),
    ("table", "conveyor_workers"),
    ("index", "conveyor_jobs_due"),
    ("index", "conveyor_jobs_due_by_queue"),
    ("index", "conveyor_jobs_scheduled"),
    ("index", "conveyor_jobs_running"),
    ("index", "conveyor_jobs_unique"),
    ("index", "conveyor_jobs_finished"),
    ("index", "conveyor_jobs_created"),
    ("index", "conveyor_jobs_running_keys"),
    ("index", "conveyor_jobs_recurring_active"),
    ("table", "conveyor_recurring"),
    ("table", "conveyor_recurring_fires"),
    ("index", "conveyor_recurring_fires_recorded"),
    ("index", "conveyor_recurring_next"),
    ("table", "conveyor_queues"),
    ("index", "conveyor_jobs_state_created"),
    ("table", "conveyor_edges"),
    ("index", "conveyor_edges_child"),
    ("table", "conveyor_workflows"),
    ("index", "conveyor_workflows_created"),
    ("index", "conveyor_workflows_name"),
    ("index", "conveyor_jobs_workflow"),
    ("table", "conveyor_rate_windows"),
    ("index", "conveyor_rate_windows_full"),
    ("table", "conveyor_history"),
    ("table", "conveyor_history_mark"),
}


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "jobs.db")


@pytest.fixture
def store(path: str) -> Iterator[SQLiteBackend]:
    backend = SQLiteBackend(path)
    backend.open()
    yield backend
    backend.close()


def raw(path: str, sql: str) -> list[tuple[object, ...]]:
    """Rows of a query run on a separate plain connection."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(sql).fetchall()
    conn.close()
    return rows


def claim(store: SQLiteBackend, worker: str, limit: int) -> list[str]:
    """Ids of the jobs `worker` claims at T0."""
    return [job.id for job in store.claim(ClaimRequest(worker, limit, T0, T0 + LEASE)).jobs]


# schema ----------------------------------------------------------------------------------------
def test_migrations_apply_on_a_fresh_file_and_reopening_is_harmless(path: str) -> None:
    first = SQLiteBackend(path)
    first.open()
    first.open()  # idempotent on the same object
    [job] = first.enqueue([NewJob("a")], T0)
    first.close()
    first.close()

    again = SQLiteBackend(path)
    again.open()
    assert again.get(job.job.id) == job.job
    again.close()
    versions = [row[0] for row in raw(path, "SELECT version FROM conveyor_schema_version")]
    assert versions == [version for version, _ in migrations()] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]


def test_the_schema_is_exactly_the_expected_tables_and_indexes(store: SQLiteBackend) -> None:
    rows = raw(
        store.path,
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
    )
    assert set(rows) == EXPECTED_SCHEMA


def test_concurrent_opens_of_a_new_file_migrate_once(path: str) -> None:
    errors: list[BaseException] = []
    stores = [SQLiteBackend(path) for _ in range(6)]

    def open_it(backend: SQLiteBackend) -> None:
        try:
            backend.open()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for backend in stores:
        backend.close()
    assert errors == []
    migration_count = len(migrations())
    assert raw(path, "SELECT count(*) FROM conveyor_schema_version") == [(migration_count,)]


def test_claim_queries_walk_the_claim_ordered_indexes(store: SQLiteBackend) -> None:
    """A sort of the whole due backlog on every claim would make claiming O(backlog)."""
    with sqlite3.connect(store.path) as conn:
        for name in ("candidates_except", "candidates_of_queue", "next_run_at"):
            params = {"now": 0, "excluded": "[]", "queues": "[]", "queue": "q", "limit": 1}
            plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q[name], params))
            assert "INDEX conveyor_jobs_" in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
        params = {"now": 0, "queue": "q", "limit": 1}
        plan = " ".join(
            row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + Q["candidates_of_queue"], params)
        )
        # one queue's claim starts at that queue in its own index, never at other queues' jobs
        assert "USING INDEX conveyor_jobs_due_by_queue (queue=?" in plan, plan
    conn.close()


def claim_steps(store: SQLiteBackend, request: ClaimRequest) -> tuple[int, list[str]]:
    """SQLite virtual-machine steps (in hundreds) of choosing one claim's jobs, and the ids."""
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    with sqlite3.connect(store.path) as conn:
        conn.set_progress_handler(count, 100)
        chosen, _ = SQLiteBackend._candidates(conn, request, T0.timestamp())
    conn.close()
    return steps[0], chosen


def test_a_claim_for_named_queues_costs_the_same_whatever_the_backlog_of_others(
    store: SQLiteBackend,
) -> None:
    """The claim of a worker of `--queues fast` must not walk the other queues' due jobs
    (counted in SQLite virtual-machine steps, not timed)."""
    request = ClaimRequest("w", 10, T0, T0 + timedelta(seconds=30), queues=frozenset({"fast"}))
    store.enqueue([NewJob("quick", queue="fast") for _ in range(10)], T0)

    def steps_of_one_claim() -> int:
        steps, chosen = claim_steps(store, request)
        assert len(chosen) == 10
        return steps

    small = steps_of_one_claim()
    for _ in range(4):
        earlier = T0 - timedelta(hours=1)  # due before the fast jobs: first in claim order
        store.enqueue([NewJob("backlog", run_at=earlier) for _ in range(5_000)], T0)
    assert steps_of_one_claim() <= small * 2 + 5


def test_a_claim_of_all_queues_does_not_walk_a_paused_queues_backlog(
    store: SQLiteBackend,
) -> None:
    """A paused queue's due jobs, first in claim order, are left out without being walked
    past at every claim (counted in SQLite virtual-machine steps, not timed)."""
    request = ClaimRequest("w", 10, T0, T0 + timedelta(seconds=30))
    store.enqueue([NewJob("quick", queue="fast") for _ in range(10)], T0)
    store.enqueue([NewJob("other", queue="slow") for _ in range(10)], T0)
    store.set_queue_paused("held", True, T0)

    def steps_of_one_claim() -> int:
        steps, chosen = claim_steps(store, request)
        assert len(chosen) == 10 and not set(chosen) & held
        return steps

    held: set[str] = set()
    small = steps_of_one_claim()
    for _ in range(4):
        earlier = T0 - timedelta(hours=1)  # due before the others: first in claim order
        backlog = store.enqueue(
            [NewJob("b", queue="held", run_at=earlier) for _ in range(5_000)], T0
        )
        held |= {made.job.id for made in backlog}
    assert steps_of_one_claim() <= small * 2 + 5


def test_writes_by_id_look_jobs_up_by_primary_key(store: SQLiteBackend) -> None:
    """An index on state must not lure a write by id into walking every job in that state."""
    with sqlite3.connect(store.path) as conn:
        for name in ("claim_jobs", "extend_leases", "cancel_requested_among", "finish_job"):
            params = {key: "[]" for key in re.findall(r":(\w+)", Q[name])}
            rows = conn.execute("EXPLAIN QUERY PLAN " + Q[name], params).fetchall()
            plan = " ".join(row[3] for row in rows)
            assert "PRIMARY KEY" in plan, (name, plan)
            assert "state_created" not in plan, (name, plan)
    conn.close()


# durability ------------------------------------------------------------------------------------
def test_data_survives_close_and_reopen(path: str) -> None:
    store = SQLiteBackend(path)
    store.open()
    new = NewJob("send", args={"to": "ada", "n": [1, 2.5, None]}, metadata={"by": "test"})
    store.enqueue([new, NewJob("later", run_at=T0 + timedelta(hours=1))], T0)
    [job_id] = claim(store, "w1", 1)
    store.report([Report(job_id, 0.5, "half way", (LogLine(T0, "hello"),))], 100)
    error = AttemptError(1, "boom", "Traceback ...", T0, "error")
    retry_at = T0 + timedelta(seconds=5)
    outcome = Outcome(job_id, "w1", 1, JobState.SCHEDULED, T0, error=error, run_at=retry_at)
    assert store.finish([outcome]) == []
    before = store.get(job_id)
    store.close()

    reopened = SQLiteBackend(path)
    reopened.open()
    after = reopened.get(job_id)
    reopened.close()
    assert after == before
    assert after is not None
    assert after.args == {"to": "ada", "n": [1, 2.5, None]}
    assert after.metadata == {"by": "test"}
    assert after.state is JobState.SCHEDULED
    assert after.run_at == retry_at  # microseconds survive the REAL epoch column
    assert after.created_at == T0
    assert after.created_at.tzinfo is UTC
    assert after.errors == (error,)
    assert after.logs == (LogLine(T0, "hello", attempt=1),)  # stamped by the store
    assert (after.progress, after.progress_message) == (0.5, "half way")


def test_open_backend_builds_the_store_from_a_url(tmp_path: Path) -> None:
    store = open_backend(f"sqlite:///{tmp_path}/x.db", Settings())
    assert isinstance(store, SQLiteBackend)
    assert store.blocking is True
    assert store.path == f"{tmp_path}/x.db"


# failures --------------------------------------------------------------------------------------
def test_a_missing_directory_gives_store_unavailable(tmp_path: Path) -> None:
    store = SQLiteBackend(str(tmp_path / "nope" / "jobs.db"))
    with pytest.raises(StoreUnavailable, match="does not exist"):
        store.open()


def test_a_directory_or_a_file_that_is_no_database_gives_store_unavailable(
    tmp_path: Path,
) -> None:
    with pytest.raises(StoreUnavailable, match="is a directory"):
        SQLiteBackend(str(tmp_path)).open()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database file, not at all" * 100)
    with pytest.raises(StoreUnavailable, match=r"garbage\.db") as caught:
        SQLiteBackend(str(garbage)).open()
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)


def test_using_a_store_that_is_not_open_gives_store_unavailable(path: str) -> None:
    store = SQLiteBackend(path)
    with pytest.raises(StoreUnavailable, match="call open"):
        store.get("x")
    store.open()
    store.close()
    with pytest.raises(StoreUnavailable, match="call open"):
        store.enqueue([NewJob("a")], T0)


def test_a_duplicate_id_is_refused_and_nothing_of_the_batch_is_stored(
    store: SQLiteBackend,
) -> None:
    [first] = store.enqueue([NewJob("a", id="fixed")], T0)
    with pytest.raises(DuplicateJobId, match="'fixed' already exists"):
        store.enqueue([NewJob("b"), NewJob("c", id="fixed")], T0)
    with pytest.raises(DuplicateJobId, match="'twice' already exists"):
        store.enqueue([NewJob("b", id="twice"), NewJob("c", id="twice")], T0)
    assert store.counts().by_state == {"pending": 1}
    assert store.get("fixed") == first.job


# store-specific mechanics ----------------------------------------------------------------------
def watching(store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """An Event set once a thread other than this one has read the store's data version.

    wait_for_jobs wakes on commits after its first read of PRAGMA data_version (its baseline),
    so a test must not commit, or close, before the waiting thread has taken it."""
    watched = threading.Event()
    changed = store._db.changed
    me = threading.get_ident()

    def changed_then_signal() -> bool:
        result = changed()
        if threading.get_ident() != me:
            watched.set()
        return result

    monkeypatch.setattr(store._db, "changed", changed_then_signal)
    return watched


def test_wait_for_jobs_wakes_on_a_commit_through_another_connection(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter, producer = SQLiteBackend(path), SQLiteBackend(path)
    waiter.open()
    producer.open()
    assert waiter.wait_for_jobs(0.05) is False  # nothing committed: waits out the timeout
    woke: list[tuple[bool, float]] = []
    watched = watching(waiter, monkeypatch)

    def wait() -> None:
        started = time.monotonic()
        woke.append((waiter.wait_for_jobs(30.0), time.monotonic() - started))

    thread = threading.Thread(target=wait)
    thread.start()
    wait_until(watched.is_set, 10, "the waiting thread to take its baseline")
    producer.enqueue([NewJob("a")], T0)
    thread.join(40)
    [(result, took)] = woke
    assert result is True
    # Generous upper bound (the waiter polls every 2 ms): proves the commit woke it rather than
    # the 30 s timeout.
    assert took < 5.0
    waiter.close()
    producer.close()


def test_a_failing_subscriber_does_not_fail_the_call(store: SQLiteBackend) -> None:
    calls: list[str] = []

    def broken() -> None:
        raise RuntimeError("subscriber bug")

    store.subscribe(broken)
    unsubscribe = store.subscribe(lambda: calls.append("called"))
    store.enqueue([NewJob("a")], T0)
    unsubscribe()
    store.enqueue([NewJob("b")], T0)
    assert calls == ["called"]


def test_retry_is_refused_while_another_active_job_holds_the_unique_key(
    store: SQLiteBackend,
) -> None:
    [old] = store.enqueue([NewJob("a", unique_key="k")], T0)
    store.cancel(old.job.id, T0)
    [new] = store.enqueue([NewJob("a", unique_key="k")], T0)
    assert new.created
    retried = store.retry(old.job.id, T0)
    assert retried is not None
    assert retried.state is JobState.CANCELLED


def test_prune_deletes_in_batches(store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend_module, "PRUNE_BATCH", 3)
    store.enqueue([NewJob("a") for _ in range(10)], T0)
    for job_id in claim(store, "w", 10):
        store.finish([Outcome(job_id, "w", 1, JobState.COMPLETED, T0)])
    assert store.prune(T0 + timedelta(seconds=1), T0) == 10
    assert store.counts().by_state == {}


# concurrency -----------------------------------------------------------------------------------
def test_two_threads_never_claim_the_same_job(store: SQLiteBackend) -> None:
    store.enqueue([NewJob("a") for _ in range(2000)], T0)
    claimed: dict[str, list[str]] = {"t1": [], "t2": []}
    start = threading.Barrier(2)

    def work(worker: str) -> None:
        start.wait()
        while ids := claim(store, worker, 7):
            claimed[worker] += ids
            store.finish([Outcome(i, worker, 1, JobState.COMPLETED, T0) for i in ids])

    threads = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = claimed["t1"] + claimed["t2"]
    assert len(everything) == len(set(everything)) == 2000
    assert claimed["t1"]
    assert claimed["t2"]
    assert store.counts().by_state == {"completed": 2000}


# A worker process: claims (and finishes) until no job is left, then prints what it took.
WORKER = """
import json, os, sys, time
from datetime import UTC, datetime, timedelta
from conveyor.backends.protocol import ClaimRequest, Outcome
from conveyor.backends.sqlite import SQLiteBackend
from conveyor.model.job import JobState

path, worker, ready, go = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
limits = json.loads(sys.argv[5])
store = SQLiteBackend(path)
store.open()
open(ready, "w").close()  # opened: the test starts the race once both are
deadline = time.monotonic() + 60
while not os.path.exists(go):
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
taken, spans, most_running = [], [], 0
while True:
    now = datetime.now(UTC)
    request = ClaimRequest(worker, 7, now, now + timedelta(seconds=60), queue_limits=limits)
    claimed = store.claim(request)
    if not claimed.jobs:
        if store.counts().by_state.get("pending", 0) == 0:
            break
        time.sleep(0.001)  # the other process holds the slot: poll again
        continue
    began = time.time()
    if limits:
        most_running = max(most_running, store.counts().by_state.get("running", 0))
        time.sleep(0.002)  # the job's run: long enough for an overlap to show in the spans
    ids = [job.id for job in claimed.jobs]
    taken += ids
    spans.append((began, time.time()))
    outcomes = [Outcome(i, worker, 1, JobState.COMPLETED, now) for i in ids]
    assert store.finish(outcomes) == []
    if limits:
        # Hand the freed slot to the other process: wait until it took it (or nothing is
        # left), so both get a share. The deadline keeps a lone process going.
        handoff = time.monotonic() + 1
        while time.monotonic() < handoff:
            counts = store.counts().by_state
            if counts.get("running", 0) or not counts.get("pending", 0):
                break
            time.sleep(0.001)
store.close()
print(json.dumps({"taken": taken, "spans": spans, "most_running": most_running}))
"""


def run_workers(path: str, tmp_path: Path, limits: dict[str, int]) -> list[dict[str, Any]]:
    """Race two WORKER processes on the file; what each one reports."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-p{n}" for n in range(2)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                path,
                f"p{n}",
                str(ready[n]),
                str(go),
                json.dumps(limits),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(2)
    ]
    wait_until(
        lambda: all(r.exists() for r in ready) or any(p.poll() is not None for p in procs),
        60,
        "both worker processes to open the store",
    )
    go.touch()  # both opened (or one died, which the return codes below report)
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    return [json.loads(output) for output in outputs]


@pytest.mark.slow
def test_two_processes_never_claim_the_same_job(store: SQLiteBackend, tmp_path: Path) -> None:
    store.enqueue([NewJob("a") for _ in range(2000)], datetime.now(UTC))
    results = run_workers(store.path, tmp_path, {})
    everything = results[0]["taken"] + results[1]["taken"]
    assert len(everything) == len(set(everything)) == 2000
    assert results[0]["taken"]
    assert results[1]["taken"]
    assert store.counts().by_state == {"completed": 2000}


@pytest.mark.slow
def test_a_serial_queue_limit_holds_across_processes(store: SQLiteBackend, tmp_path: Path) -> None:
    store.enqueue([NewJob("a", queue="serial") for _ in range(60)], datetime.now(UTC))
    results = run_workers(store.path, tmp_path, {"serial": 1})
    everything = results[0]["taken"] + results[1]["taken"]
    assert len(everything) == len(set(everything)) == 60
    assert all(result["most_running"] <= 1 for result in results)
    assert results[0]["taken"]
    assert results[1]["taken"]
    spans = sorted(span for result in results for span in result["spans"])
    assert all(len(result["spans"]) == len(result["taken"]) for result in results)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start, "two jobs of a serial queue ran at the same time"


def test_threads_that_end_do_not_leave_connections_open(store: SQLiteBackend) -> None:
    def connections() -> int:
        gc.collect()
        return sum(isinstance(o, sqlite3.Connection) for o in gc.get_objects())

    store.get("x")
    before = connections()
    for n in range(30):
        thread = threading.Thread(target=store.enqueue, args=([NewJob(f"j{n}")], T0))
        thread.start()
        thread.join()
    assert store.counts().by_state == {"pending": 30}
    assert connections() == before


def test_wait_for_jobs_returns_false_when_the_store_closes_meanwhile(
    path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = SQLiteBackend(path)
    store.open()
    watched = watching(store, monkeypatch)
    results: list[bool] = []
    thread = threading.Thread(target=lambda: results.append(store.wait_for_jobs(30.0)))
    thread.start()
    wait_until(watched.is_set, 10, "the waiting thread to be inside wait_for_jobs")
    started = time.monotonic()
    store.close()
    thread.join(40)
    assert results == [False]
    # Generous upper bound (the waiter polls every 2 ms): proves close() ended the wait rather
    # than the 30 s timeout.
    assert time.monotonic() - started < 5.0


def test_an_in_memory_database_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="memory://"):
        SQLiteBackend(":memory:").open()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_uses_its_own_connections(store: SQLiteBackend) -> None:
    store.enqueue([NewJob("parent")], T0)
    pid = os.fork()
    if pid == 0:  # the child: must not touch the parent's connections
        code = 1
        try:
            store.enqueue([NewJob("child")], T0)
            code = 0 if store.counts().by_state == {"pending": 2} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.counts().by_state == {"pending": 2}
    store.enqueue([NewJob("parent again")], T0)
    assert store.counts().by_state == {"pending": 3}


# Threads keep using the store while the main thread closes and reopens it.
CLOSE_RACE = """
import sys, threading, time
from datetime import UTC, datetime
from conveyor.backends.sqlite import SQLiteBackend
from conveyor.errors import StoreUnavailable
from conveyor.model.job import NewJob

store = SQLiteBackend(sys.argv[1])
now = datetime.now(UTC)
stop = False

def busy(n):
    while not stop:
        try:
            store.wait_for_jobs(0.001) if n % 2 else store.enqueue([NewJob("x")], now)
        except StoreUnavailable:
            pass

for round in range(40):
    store.open()
    stop = False
    threads = [threading.Thread(target=busy, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    # Every other round closes at once, while the threads are still connecting (where a
    # connection used outside its lock crashed within a few rounds), the others mid-call.
    time.sleep(0 if round % 2 == 0 else 0.005)
    store.close()
    stop = True
    for thread in threads:
        thread.join()
"""


@pytest.mark.slow
def test_closing_while_other_threads_use_the_store_never_crashes(path: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-c", CLOSE_RACE, path],  # stacks on a crash
        timeout=120,
        check=False,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr  # a crash (a use-after-close in C) would be -11
    assert done.stderr == ""  # no thread died of anything but StoreUnavailable


def test_a_connection_made_while_the_store_closes_is_closed_and_refused(
    store: SQLiteBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[sqlite3.Connection] = []
    connect = database_module.Database._connect

    def connect_then_close(db: database_module.Database) -> Any:
        conn = connect(db)
        made.append(conn)
        closer = threading.Thread(target=store.close)  # another thread closes the store
        closer.start()
        closer.join()
        return conn

    monkeypatch.setattr(database_module.Database, "_connect", connect_then_close)
    with pytest.raises(StoreUnavailable, match="closed during the call"):
        store.get("x")
    assert len(made) == 1
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        made[0].execute("SELECT 1")  # not left open behind the closed store
