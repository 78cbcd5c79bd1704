"""Where a PostgreSQL drain's time goes: time the worker's store calls (claim, finish).

    .venv/bin/python bench/postgres_drain_profile.py [--concurrency 10] [--fast-acks]

One in-process `app.worker(concurrency=c)` drains 10,000 queued no-op jobs in a fresh schema
of $CONVEYOR_BENCH_POSTGRES (default the local test database), dropped after. The backend's
claim and finish are wrapped in timers (a diagnostic, not a benchmark figure): the output
gives their count, batch size, median duration and share of the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import time
from typing import Any

import psycopg

from conveyor import App, Context
from conveyor.backends.postgres import PostgresBackend

BASE = os.environ.get("CONVEYOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CALLS: dict[str, list[tuple[float, int]]] = {"claim": [], "finish": []}


def timed(name: str) -> None:
    original = getattr(PostgresBackend, name)

    def wrapper(self: PostgresBackend, arg: Any) -> Any:
        started = time.perf_counter()
        result = original(self, arg)
        size = len(result.jobs) if name == "claim" else len(arg)
        CALLS[name].append((time.perf_counter() - started, size))
        return result

    setattr(PostgresBackend, name, wrapper)


async def drain(app: App, n: int, concurrency: int) -> float:
    worker = app.worker(concurrency=concurrency)
    started = time.perf_counter()
    await worker.start()
    # polling: the store is the only place that knows when the jobs are done
    while app.jobs.counts().by_state.get("completed", 0) < n:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - started
    await worker.stop()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--fast-acks", action="store_true")
    args = parser.parse_args()
    timed("claim")
    timed("finish")
    schema = f"bench_profile_{secrets.token_hex(4)}"
    options = "&fast_acks=true" if args.fast_acks else ""
    app = App(f"{BASE}?schema={schema}{options}")

    @app.job(name="bench.noop")
    async def noop(ctx: Context, i: int) -> None:
        return None

    try:
        app.enqueue_many([noop.request(i=i) for i in range(args.jobs)])
        elapsed = asyncio.run(drain(app, args.jobs, args.concurrency))
    finally:
        app.close()
        with psycopg.connect(BASE, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    print(
        f"fast_acks={args.fast_acks} c={args.concurrency}: {args.jobs / elapsed:,.0f} jobs/s, "
        f"wall {elapsed:.2f} s"
    )
    for name, calls in CALLS.items():
        seconds = [s for s, _ in calls]
        sizes = [n for _, n in calls]
        print(
            f"  {name}: {len(calls)} calls, mean batch {statistics.fmean(sizes):.1f}, "
            f"median {statistics.median(seconds) * 1e3:.2f} ms, total {sum(seconds):.2f} s "
            f"({sum(seconds) / elapsed * 100:.0f}% of the wall time)"
        )


if __name__ == "__main__":
    main()
