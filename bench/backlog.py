"""Pickup latency of a worker of one queue while another queue holds a large due backlog.

    .venv/bin/python bench/backlog.py [--backlog 1000000] [--samples 50] [--url URL]

Bulk-loads `--backlog` pending jobs into queue `default` (default store: a fresh SQLite file),
then runs a worker of `--queues fast` only and enqueues `--samples` jobs to `fast`, one at a
time, each after the previous one started: enqueue → start latency (the job's `started_at`
minus its `created_at`) p50 and p99. The same with an empty `default` queue is printed first,
for comparison. A claim that walked the other queue's backlog would grow with it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import conveyor
from conveyor.model.job import JobState


async def fast_job(ctx: conveyor.Context) -> None:
    """The job picked up: nothing to do."""


async def pickup(app: conveyor.App, samples: int) -> list[float]:
    """Enqueue→start seconds of `samples` fast jobs, one after another."""
    latencies = []
    async with app.worker(queues=["fast"]):
        for _ in range(samples):
            handle = app.enqueue("fast_job")
            job = await handle.wait_async(30)
            assert job.state is JobState.COMPLETED and job.started_at is not None
            latencies.append((job.started_at - job.created_at).total_seconds())
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--url", help="a store URL (default: a fresh SQLite file)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = options.url or f"sqlite:///{Path(folder) / 'backlog.db'}"
        app = conveyor.App(url)
        app.declare("slow_job")  # a job of another service: never run here
        app.job(queue="fast")(fast_job)
        try:
            for label, size in (("empty", 0), ("backlog", options.backlog)):
                started = time.perf_counter()
                for start in range(0, size, 10_000):
                    batch = min(10_000, size - start)
                    app.enqueue_many([app.request("slow_job") for _ in range(batch)])
                if size:
                    rate = size / (time.perf_counter() - started)
                    print(f"loaded {size:,} pending jobs into 'default' at {rate:,.0f}/s")
                values = asyncio.run(pickup(app, options.samples))
                p50 = statistics.median(values) * 1000
                p99 = statistics.quantiles(values, n=100)[98] * 1000
                print(f"{label:>8}: pickup of a 'fast' job p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        finally:
            app.close()


if __name__ == "__main__":
    sys.exit(main())
