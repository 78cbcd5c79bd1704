"""Workflows against plain jobs on the same store: a fan-out/fan-in of 1 → N → 1 no-op steps,
and a chain of M steps, with one worker (default settings) in this process.

    .venv/bin/python bench/workflows.py [--width 10000] [--chain 1000] [--repeat 3]
                                        [--stores sqlite,postgres]

For each store, in interleaved rounds on fresh stores: the plain drain (N + 2 no-op jobs,
enqueued in batches of 1,000), the fan-out (enqueue time of the whole workflow, drain time)
and the chain (enqueue, drain). Drain time runs from the worker's start until every job
completed (checked in the store). Release latency is, for each step with parents, its
`started_at` minus the latest `finished_at` of its parents, read from the store: the
acknowledgement, the finish transaction that releases the step, the wake-up and the claim.
Medians and min-max over the rounds are printed, with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import PostgresStore, SQLiteStore, Store

import conveyor


def new_app(url: str) -> tuple[conveyor.App, Any]:
    app = conveyor.App(url, max_queue_size=0)

    @app.job
    async def noop(ctx: conveyor.Context) -> None:
        return None

    _ = app.backend  # open the store (and create its schema) outside any timing
    return app, noop


async def drain(app: conveyor.App, count: int) -> float:
    """Seconds from the worker's start until `count` jobs succeeded."""
    done = asyncio.Event()
    seen = [0]

    def succeeded(event: Any) -> None:
        seen[0] += 1
        if seen[0] == count:
            done.set()

    app.on("succeeded")(succeeded)
    started = time.perf_counter()
    async with app.worker():
        await asyncio.wait_for(done.wait(), 900)
        # the worker's shutdown (its notification thread's wait ends within 0.5 s) is not
        # part of the drain: counting it quantised the figure to half seconds
        elapsed = time.perf_counter() - started
    completed = app.jobs.counts().by_state.get("completed", 0)
    assert completed == count, f"{completed} of {count} jobs completed"
    return elapsed


def latencies(app: conveyor.App, workflow_id: str) -> list[float]:
    """Release latency (ms) of each step with parents: started minus its last parent's end."""
    stored = app.workflows.get(workflow_id)
    finished: dict[str, datetime] = {}
    for job in stored.steps:
        assert job.finished_at is not None
        finished[job.id] = job.finished_at
    last_parent: dict[str, datetime] = {}
    for parent, child in stored.edges:
        moment = finished[parent]
        if child not in last_parent or moment > last_parent[child]:
            last_parent[child] = moment
    out = []
    for job in stored.steps:
        if job.id in last_parent:
            assert job.started_at is not None
            out.append((job.started_at - last_parent[job.id]).total_seconds() * 1000)
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def plain_round(store: Store, count: int) -> dict[str, float]:
    app, noop = new_app(store.new_url())
    try:
        started = time.perf_counter()
        for start in range(0, count, 1000):
            app.enqueue_many([noop.request() for _ in range(min(1000, count - start))])
        enqueued = time.perf_counter() - started
        seconds = asyncio.run(drain(app, count))
        return {"enqueue_s": enqueued, "drain_s": seconds, "rate": count / seconds}
    finally:
        app.close()


def workflow_round(
    store: Store, build: Callable[[conveyor.App, Any], conveyor.Workflow]
) -> dict[str, float]:
    app, noop = new_app(store.new_url())
    try:
        workflow = build(app, noop)
        count = len(workflow.steps)
        started = time.perf_counter()
        handle = workflow.enqueue()
        enqueued = time.perf_counter() - started
        seconds = asyncio.run(drain(app, count))
        assert handle.get().state == "completed"
        waits = latencies(app, handle.id)
        return {
            "enqueue_s": enqueued,
            "drain_s": seconds,
            "rate": count / seconds,
            "release_p50_ms": percentile(waits, 0.5),
            "release_p99_ms": percentile(waits, 0.99),
            # a fan-out's children queue behind each other: its first release, and the fan-in's
            "first_release_ms": min(waits[:-1]) if len(waits) > 1 else waits[0],
            "last_release_ms": waits[-1],
        }
    finally:
        app.close()


def fan(width: int) -> Callable[[conveyor.App, Any], conveyor.Workflow]:
    def build(app: conveyor.App, noop: Any) -> conveyor.Workflow:
        wf = app.workflow("fan")
        first = wf.add(noop.request(), name="first")
        middle = [wf.add(noop.request(), after=[first], name=f"part-{n}") for n in range(width)]
        wf.add(noop.request(), after=middle, name="last")
        return wf

    return build


def chain(length: int) -> Callable[[conveyor.App, Any], conveyor.Workflow]:
    def build(app: conveyor.App, noop: Any) -> conveyor.Workflow:
        wf = app.workflow("chain")
        previous: list[conveyor.Step] = []
        for n in range(length):
            previous = [wf.add(noop.request(), after=previous, name=f"step-{n}")]
        return wf

    return build


def summary(rounds: list[dict[str, float]], key: str) -> str:
    values = [r[key] for r in rounds]
    return f"{statistics.median(values):,.3g} ({min(values):,.3g}-{max(values):,.3g})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=10_000)
    parser.add_argument("--chain", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    options = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="conveyor-bench-wf-"))
    kinds = {"sqlite": SQLiteStore, "postgres": PostgresStore}
    print(f"load average at start: {os.getloadavg()}")
    for name in options.stores.split(","):
        store = kinds[name](workdir)
        results: dict[str, list[dict[str, float]]] = {"plain": [], "fan": [], "chain": []}
        try:
            for _ in range(options.repeat):
                results["plain"].append(plain_round(store, options.width + 2))
                results["fan"].append(workflow_round(store, fan(options.width)))
                results["chain"].append(workflow_round(store, chain(options.chain)))
        finally:
            if isinstance(store, PostgresStore):
                store.drop_schemas()
        plain = statistics.median(r["rate"] for r in results["plain"])
        fan_rate = statistics.median(r["rate"] for r in results["fan"])
        print(f"\n{name}: {options.repeat} rounds, median (min-max)")
        plain_rounds = results["plain"]
        print(
            f"  plain, {options.width + 2:,} jobs: enqueue {summary(plain_rounds, 'enqueue_s')} s,"
            f" drain {summary(plain_rounds, 'rate')} jobs/s"
        )
        r = results["fan"]
        print(
            f"  1 → {options.width:,} → 1: enqueue {summary(r, 'enqueue_s')} s, drain "
            f"{summary(r, 'rate')} steps/s, first child released after "
            f"{summary(r, 'first_release_ms')} ms, fan-in after {summary(r, 'last_release_ms')} ms"
        )
        r = results["chain"]
        print(
            f"  chain of {options.chain:,}: enqueue {summary(r, 'enqueue_s')} s, drain "
            f"{summary(r, 'rate')} steps/s, release p50 {summary(r, 'release_p50_ms')} ms, "
            f"p99 {summary(r, 'release_p99_ms')} ms"
        )
        print(f"  fan-out drain / plain drain: {fan_rate / plain:.0%}")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
