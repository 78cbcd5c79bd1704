"""Throughput of the SQLite store: bulk enqueue, and claim + finish cycles in batches.

Run: .venv/bin/python bench/sqlite_store.py [jobs=10000] [batch=50] [rounds=5]
Each round uses a fresh database file; the median and best rounds are printed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from conveyor.backends.records import ClaimRequest, Outcome
from conveyor.backends.sqlite import SQLiteBackend
from conveyor.model.job import JobState, NewJob, utcnow


def one_round(folder: str, jobs: int, batch: int) -> tuple[float, float]:
    """(enqueue jobs/s, claim+finish jobs/s) on a fresh file."""
    store = SQLiteBackend(str(Path(folder) / f"bench-{time.monotonic_ns()}.db"))
    store.open()
    new = [NewJob("bench.job", args={"n": i, "user": "someone"}) for i in range(jobs)]
    started = time.perf_counter()
    store.enqueue(new, utcnow())
    enqueue_rate = jobs / (time.perf_counter() - started)

    done = 0
    started = time.perf_counter()
    while done < jobs:
        now = utcnow()
        claimed = store.claim(ClaimRequest("bench", batch, now, now + timedelta(seconds=30))).jobs
        outcomes = [
            Outcome(job.id, "bench", job.attempt, JobState.COMPLETED, now, result=job.id)
            for job in claimed
        ]
        assert not store.finish(outcomes)
        done += len(claimed)
    cycle_rate = jobs / (time.perf_counter() - started)
    store.close()
    return enqueue_rate, cycle_rate


def main(jobs: int = 10_000, batch: int = 50, rounds: int = 5) -> None:
    """Print the median and best jobs/s of each measure over `rounds` rounds."""
    with tempfile.TemporaryDirectory() as folder:
        results = [one_round(folder, jobs, batch) for _ in range(rounds)]
    for label, rates in (
        (f"enqueue {jobs} jobs in one call", [r[0] for r in results]),
        (f"claim+finish {jobs} jobs, batches of {batch}", [r[1] for r in results]),
    ):
        median, best = statistics.median(rates), max(rates)
        print(f"{label:<42} median {median:>9,.0f}  best {best:>9,.0f} jobs/s")


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:4]))
