"""Store-level figures for the PostgreSQL store (no worker runtime): bulk enqueue, a
claim + finish drain in one thread, and pickup latency with an idle LISTENing worker.

    .venv/bin/python tests/postgres/bench_store.py [--jobs 20000] [--batch 50] [--fast-acks]

Runs on its own schema of the test server (CONVEYOR_TEST_POSTGRES) and drops it after.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent))

from conveyor.backends.postgres import PostgresBackend
from conveyor.backends.records import ClaimRequest, Outcome
from conveyor.model.job import JobState, NewJob
from postgres.server import drop_schema, new_schema_name, url_for

NOW = datetime.now(UTC)
LEASE = NOW + timedelta(minutes=5)


def bulk_enqueue(store: PostgresBackend, jobs: int, batch: int = 1000) -> None:
    requests = [NewJob("noop", args={"i": i}) for i in range(jobs)]
    started = time.perf_counter()
    for i in range(0, jobs, batch):
        store.enqueue(requests[i : i + batch], NOW)
    elapsed = time.perf_counter() - started
    print(f"bulk enqueue   {jobs / elapsed:9,.0f} jobs/s  ({jobs} jobs, batches of {batch})")


def drain(store: PostgresBackend, batch: int) -> None:
    done, started = 0, time.perf_counter()
    while jobs := store.claim(ClaimRequest("w1", batch, NOW, LEASE)).jobs:
        store.finish([Outcome(j.id, "w1", j.attempt, JobState.COMPLETED, NOW) for j in jobs])
        done += len(jobs)
    elapsed = time.perf_counter() - started
    print(f"claim + finish {done / elapsed:9,.0f} jobs/s  (one thread, claims of {batch})")


def pickup(producer: PostgresBackend, worker: PostgresBackend, rounds: int = 200) -> None:
    claimed: dict[str, float] = {}
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            worker.wait_for_jobs(0.2)
            jobs = worker.claim(ClaimRequest("w", 10, NOW, LEASE)).jobs
            at = time.perf_counter()
            claimed.update((job.id, at) for job in jobs)
            if jobs:
                worker.finish(
                    [Outcome(j.id, "w", j.attempt, JobState.COMPLETED, NOW) for j in jobs]
                )

    worker.wait_for_jobs(0.01)  # LISTEN before the first job
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    latencies = []
    for _ in range(rounds):
        time.sleep(0.02)  # the worker is idle, waiting on LISTEN
        started = time.perf_counter()
        [enqueued] = producer.enqueue([NewJob("noop")], NOW)
        while enqueued.job.id not in claimed:
            time.sleep(0.0001)
        latencies.append((claimed[enqueued.job.id] - started) * 1000)
    stop.set()
    thread.join(5)
    latencies.sort()
    p90 = latencies[int(len(latencies) * 0.9)]
    print(f"pickup         p50 {statistics.median(latencies):.2f} ms, p90 {p90:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--fast-acks", action="store_true")
    args = parser.parse_args()
    schema = new_schema_name()
    options = {"fast_acks": "true"} if args.fast_acks else {}
    producer = PostgresBackend.from_url(url_for(schema, **options))
    worker = PostgresBackend.from_url(url_for(schema, **options))
    producer.open()
    worker.open()
    try:
        bulk_enqueue(producer, args.jobs)
        drain(worker, args.batch)
        pickup(producer, worker)
    finally:
        worker.close()
        producer.close()
        drop_schema(schema)


if __name__ == "__main__":
    main()
