"""How fast the dashboard lists jobs with 100,000 of them in SQLite (target: under 100 ms).

    .venv/bin/python bench/web_list.py [--jobs 100000] [--runs 30] [--url postgresql://…]

Fills a fresh SQLite store with `--jobs` jobs through app.enqueue_many (a mix of names, queues
and states), then times GET /api/jobs and the /jobs page in-process (no network), each
`--runs` times, and prints the median and the 95th percentile in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from conveyor import App
from conveyor.model.job import JobState
from conveyor.web import create_app

NAMES = ["emails.send", "reports.build", "images.resize", "billing.charge"]
QUEUES = ["default", "emails", "reports"]
TARGET_MS = 100.0

CASES = [
    ("GET /api/jobs", "/api/jobs"),
    ("GET /api/jobs?state=failed", "/api/jobs?state=failed"),
    ("GET /api/jobs?name=…&queue=…", "/api/jobs?name=reports.build&queue=reports"),
    ("GET /api/jobs?q=<id prefix>", "/api/jobs?q={search}"),
    ("GET /api/jobs?page=100", "/api/jobs?page=100"),
    ("GET /api/jobs?state=pending&page=100", "/api/jobs?state=pending&page=100"),
    ("GET /jobs (page)", "/jobs"),
    ("GET /jobs?state=pending (page)", "/jobs?state=pending"),
]


def fill(app: App, total: int) -> str:
    """Enqueue `total` jobs in batches, cancel 1,000; returns the start of the first id."""
    for name in NAMES:
        app.declare(name)
    batch = 5000
    first_id = ""
    for start in range(0, total, batch):
        requests = [
            app.request(
                NAMES[i % len(NAMES)],
                {"n": i, "payload": "x" * 300},
                queue=QUEUES[i % len(QUEUES)],
            )
            for i in range(start, min(start + batch, total))
        ]
        handles = app.enqueue_many(requests)
        first_id = first_id or handles[0].id
    # cancel a thousand of them, so the state filters have something to find
    page = app.jobs.list(state=JobState.PENDING, page=3, per_page=1000)
    for job in page.jobs:
        app.jobs.cancel(job.id)
    return first_id[:13]


def measure(client: TestClient, path: str, runs: int) -> list[float]:
    timings = []
    client.get(path)  # warm up: compiled statements, template cache
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument(
        "--url",
        help="an empty store to fill instead of a fresh SQLite file, e.g. "
        "postgresql://postgres@127.0.0.1/test?schema=web_bench (the schema is left behind)",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="conveyor-web-bench-") as folder:
        app = App(options.url or f"sqlite:///{Path(folder) / 'bench.db'}")
        print(f"store: {app.url.split('@')[-1]}")
        started = time.perf_counter()
        search = fill(app, options.jobs)
        print(f"filled {options.jobs:,} jobs in {time.perf_counter() - started:.1f} s")
        web = create_app(app, tokens={"bench": {"view"}})
        headers = {"Authorization": "Bearer bench"}
        print(f"{'request':40} {'median ms':>10} {'p95 ms':>8}  target {TARGET_MS:.0f} ms")
        with TestClient(web, headers=headers) as client:
            for label, path in CASES:
                timings = sorted(measure(client, path.format(search=search), options.runs))
                median = statistics.median(timings)
                p95 = timings[int(len(timings) * 0.95) - 1]
                verdict = "ok" if median < TARGET_MS else "SLOW"
                print(f"{label:40} {median:10.1f} {p95:8.1f}  {verdict}")
        app.close()


if __name__ == "__main__":
    main()
