"""Where a bulk enqueue's Python time goes, piece by piece, without a database.

    .venv/bin/python bench/enqueue_pieces.py [--jobs 10000]

Times, for `--jobs` no-op requests: building them (`fn.request`), stamping them into stored
records (`NewJob.to_job`), the PostgreSQL store's COPY text (`rows.copy_text`), grouping the
batch with its answers, and making the handles. Prints microseconds per job for each (best of
5 rounds). The server's own COPY work comes on top; bench/RESULTS.md puts the two together.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from conveyor import App, Context
from conveyor.backends.postgres.enqueue import _Batch
from conveyor.backends.postgres.rows import copy_text
from conveyor.model.job import utcnow


def best_of(rounds: int, n: int, step: Callable[[], Any]) -> tuple[float, Any]:
    """The fastest of `rounds` runs of `step`, in microseconds per job, and its last result."""
    best, result = float("inf"), None
    for _ in range(rounds):
        start = time.perf_counter()
        result = step()
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    n = parser.parse_args().jobs
    app = App("memory://")

    @app.job(name="bench.noop")
    async def noop(ctx: Context, i: int) -> None:
        return None

    now = utcnow()
    timed, requests = best_of(5, n, lambda: [noop.request(i=i) for i in range(n)])
    print(f"{'build requests':16} {timed:6.2f} us/job")
    timed, stamped = best_of(5, n, lambda: [r.to_job(now) for r in requests])
    print(f"{'stamp (to_job)':16} {timed:6.2f} us/job")
    timed, _ = best_of(5, n, lambda: copy_text(stamped))
    print(f"{'COPY text':16} {timed:6.2f} us/job")
    timed, batch = best_of(5, n, lambda: _Batch.of(stamped))
    print(f"{'batch, answers':16} {timed:6.2f} us/job")
    results = batch.resolve(set(), {})
    timed, _ = best_of(5, n, lambda: app._announce(results))
    print(f"{'handles':16} {timed:6.2f} us/job")
    app.close()


if __name__ == "__main__":
    main()
