"""Claims from many connections at once (as from many processes): never a job twice, serial
queues and concurrency keys stay exclusive, finishes are fenced."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from conveyor.backends.postgres import PostgresBackend
from conveyor.backends.records import ClaimRequest, JobFilter, Outcome
from conveyor.model.job import Job, JobState, NewJob
from postgres.conftest import MakeStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORKERS = 6


def request(worker: str, limit: int, **options: object) -> ClaimRequest:
    return ClaimRequest(
        worker_id=worker,
        limit=limit,
        now=T0,
        lease_expires_at=T0 + timedelta(minutes=5),
        **options,  # type: ignore[arg-type]
    )


def done(job: Job) -> Outcome:
    assert job.worker_id is not None
    return Outcome(job.id, job.worker_id, job.attempt, JobState.COMPLETED, T0)


def run_workers(
    stores: list[PostgresBackend], work: Callable[[int, PostgresBackend], None]
) -> None:
    """Run `work` on one thread per store (each store has its own connections, like a
    process), re-raising the first error."""
    errors: list[BaseException] = []

    def target(index: int) -> None:
        try:
            work(index, stores[index])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=target, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []


def test_concurrent_claims_never_take_a_job_twice(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(WORKERS)]
    enqueued = stores[0].enqueue([NewJob("t") for _ in range(3000)], T0)
    taken: list[list[str]] = [[] for _ in stores]

    def work(index: int, store: PostgresBackend) -> None:
        while jobs := store.claim(request(f"w{index}", 25)).jobs:
            taken[index].extend(job.id for job in jobs)
            assert store.finish([done(job) for job in jobs]) == []

    run_workers(stores, work)

    every = [job_id for ids in taken for job_id in ids]
    assert len(every) == len(set(every)) == 3000
    assert set(every) == {e.job.id for e in enqueued}
    assert stores[0].counts().by_state == {"completed": 3000}


def test_a_serial_queue_stays_serial_across_connections(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(WORKERS)]
    stores[0].enqueue([NewJob("s", queue="serial") for _ in range(60)], T0)
    stores[0].enqueue([NewJob("o", queue="other") for _ in range(300)], T0)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def work(index: int, store: PostgresBackend) -> None:
        limits = {"serial": 1}
        while jobs := store.claim(request(f"w{index}", 4, queue_limits=limits)).jobs:
            start = time.monotonic()
            time.sleep(0.001)
            end = time.monotonic()
            with lock:
                spans.extend((start, end) for job in jobs if job.queue == "serial")
            assert store.finish([done(job) for job in jobs]) == []

    run_workers(stores, work)

    assert len(spans) == 60
    ordered = sorted(spans)
    overlaps = [(a, b) for a, b in itertools.pairwise(ordered) if b[0] < a[1]]
    assert overlaps == []
    assert stores[0].counts().by_state == {"completed": 360}


def test_jobs_sharing_a_concurrency_key_never_run_together(make_store: MakeStore) -> None:
    stores = [make_store() for _ in range(WORKERS)]
    stores[0].enqueue([NewJob("k", concurrency_key="account:1") for _ in range(40)], T0)
    stores[0].enqueue([NewJob("free") for _ in range(200)], T0)
    running: set[str] = set()
    lock = threading.Lock()
    clashes: list[str] = []

    def work(index: int, store: PostgresBackend) -> None:
        while jobs := store.claim(request(f"w{index}", 5)).jobs:
            keyed = [job for job in jobs if job.concurrency_key]
            with lock:
                for job in keyed:
                    if job.concurrency_key in running:
                        clashes.append(job.id)
                    running.add(job.concurrency_key or "")
            time.sleep(0.001)
            with lock:
                running.difference_update(job.concurrency_key or "" for job in keyed)
            store.finish([done(job) for job in jobs])

    run_workers(stores, work)

    assert clashes == []
    assert stores[0].list_jobs(JobFilter(states=frozenset({JobState.COMPLETED}))).total == 240


def test_a_worker_that_lost_its_lease_cannot_overwrite_the_new_run(make_store: MakeStore) -> None:
    store = make_store()
    store.enqueue([NewJob("t")], T0)
    [lost] = store.claim(request("paused-worker", 1)).jobs
    later = T0 + timedelta(minutes=10)
    assert store.rescue_expired(later) == [lost.id]
    [rerun] = store.claim(ClaimRequest("w2", 1, later, later + timedelta(minutes=5))).jobs

    assert store.finish([done(lost)]) == [lost.id]  # the paused worker comes back: dropped
    assert store.finish([done(rerun)]) == []
    final = store.get(lost.id)
    assert final is not None
    assert (final.state, final.attempt, final.errors[0].kind) == (JobState.COMPLETED, 2, "lost")
