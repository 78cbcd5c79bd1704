"""Issue 16's flow-control figures: keyed drain against the same store's unlimited drain, and
a rate limit's measured start rate.

    .venv/bin/python bench/flow_limits.py [--stores sqlite,postgres] [--jobs 10000] [--keys 1000]
                                          [--rate 500] [--seconds 20] [--concurrency 100]

* keyed drain: `--jobs` no-op jobs spread over `--keys` keys with key_concurrency=1, drained by
  one worker process at `--concurrency`, against the same jobs with no key (the ratio is the
  figure; the issue asks for >= 70 %). Timed from the first job's claim to the last job's
  acknowledgement, as the store recorded them (the worker's start-up is not counted).
* rate: a one-key queue with `rate_limit="<rate>/s"` and more jobs than `--seconds` can start:
  the starts in the `--seconds` from the first one, per second (issue: within 5 % of the rate),
  and the most starts in any 1 s window (never above the rate).

The worker is this script re-run as `--child-worker URL CONCURRENCY`; PostgreSQL uses a fresh
schema of $CONVEYOR_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/test), dropped
at the end. Prints one line per figure and the machine's load average before each.
"""

from __future__ import annotations

import argparse
import bisect
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from conveyor import App, Context, Job, JobState

HERE = Path(__file__).resolve()
POSTGRES = os.environ.get("CONVEYOR_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def build_app(url: str) -> App:
    """An App with the bench's jobs, the same in the producer and the worker."""
    app = App(url)

    @app.job(name="flow.plain")
    async def plain(ctx: Context, i: int) -> None:
        return None

    @app.job(name="flow.keyed", concurrency_key="k:{key}")
    async def keyed(ctx: Context, i: int, key: int) -> None:
        return None

    @app.job(name="flow.rated", queue="rated")
    async def rated(ctx: Context, i: int) -> None:
        return None

    return app


def child_worker(url: str, concurrency: int) -> None:
    """One worker process, until killed."""
    build_app(url).worker(concurrency=concurrency).run_forever()


def drain(url: str, requests: list[tuple[str, dict[str, int]]], concurrency: int) -> list[Job]:
    """Enqueue `requests`, run one worker process until all completed; the finished jobs."""
    app = build_app(url)
    handles = app.enqueue_many([app.request(name, args) for name, args in requests])
    worker = subprocess.Popen(
        [sys.executable, str(HERE), "--child-worker", url, str(concurrency)],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while app.jobs.counts().by_state.get("completed", 0) < len(handles):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the drain did not finish")
            time.sleep(0.2)
    finally:
        worker.kill()
        worker.wait()
    jobs = [app.jobs.require(h.id) for h in handles]
    app.close()
    assert all(j.state is JobState.COMPLETED for j in jobs)
    return jobs


def span(jobs: list[Job]) -> float:
    """From the first claim to the last acknowledgement, in seconds."""
    first = min(j.started_at for j in jobs if j.started_at is not None)
    last = max(j.finished_at for j in jobs if j.finished_at is not None)
    return (last - first).total_seconds()


def most_in_a_second(jobs: list[Job]) -> int:
    """The most starts inside any one 1 s window."""
    starts = sorted(j.started_at for j in jobs if j.started_at is not None)
    second = timedelta(seconds=1)
    return max(bisect.bisect_left(starts, s + second, lo=i) - i for i, s in enumerate(starts))


def load() -> str:
    """The load average now."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


class Stores:
    """Fresh stores of each kind, removed at the end."""

    def __init__(self) -> None:
        self.tmp = tempfile.TemporaryDirectory()
        self.schemas: list[str] = []
        self.count = 0

    def url(self, kind: str) -> str:
        self.count += 1
        if kind == "sqlite":
            return f"sqlite:///{self.tmp.name}/flow{self.count}.db"
        schema = f"bench_flow_{os.getpid()}_{self.count}"
        self.schemas.append(schema)
        return f"{POSTGRES}?schema={schema}"

    def close(self) -> None:
        if self.schemas:
            import psycopg

            with psycopg.connect(POSTGRES, autocommit=True) as conn:
                for schema in self.schemas:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]
        self.tmp.cleanup()


def main() -> None:
    """Run the figures asked for and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--keys", type=int, default=1_000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--child-worker", nargs=2, metavar=("URL", "CONCURRENCY"))
    args = parser.parse_args()
    if args.child_worker:
        child_worker(args.child_worker[0], int(args.child_worker[1]))
        return
    stores = Stores()
    try:
        for kind in args.stores.split(","):
            plain = [("flow.plain", {"i": i}) for i in range(args.jobs)]
            keyed = [("flow.keyed", {"i": i, "key": i % args.keys}) for i in range(args.jobs)]
            print(f"[{kind}] load average {load()}", flush=True)
            free = args.jobs / span(drain(stores.url(kind), plain, args.concurrency))
            print(f"[{kind}] unlimited drain: {free:,.0f} jobs/s", flush=True)
            print(f"[{kind}] load average {load()}", flush=True)
            held = args.jobs / span(drain(stores.url(kind), keyed, args.concurrency))
            print(
                f"[{kind}] {args.keys} keys, key_concurrency=1: {held:,.0f} jobs/s "
                f"({100 * held / free:.0f} % of unlimited)",
                flush=True,
            )
            url = stores.url(kind)
            app = build_app(url)
            app.queue("rated", rate_limit=f"{args.rate}/s")
            app.backend  # noqa: B018 - writes the queue's rate to the store
            app.close()
            # more jobs than the run can start, so the queue never runs dry inside it
            n = int(args.rate * (args.seconds + 2))
            print(f"[{kind}] load average {load()}", flush=True)
            jobs = drain(url, [("flow.rated", {"i": i}) for i in range(n)], args.concurrency)
            starts = sorted(j.started_at for j in jobs if j.started_at is not None)
            run = timedelta(seconds=args.seconds)
            inside = bisect.bisect_left(starts, starts[0] + run)
            measured = inside / args.seconds
            print(
                f"[{kind}] rate_limit={args.rate}/s over {args.seconds:g} s: "
                f"{measured:,.1f} starts/s "
                f"({100 * (measured - args.rate) / args.rate:+.1f} %), most in any 1 s: "
                f"{most_in_a_second(jobs)}",
                flush=True,
            )
    finally:
        stores.close()


if __name__ == "__main__":
    main()
