"""How fast the dashboard lists, filters and searches jobs in a large store (issue 19).

    .venv/bin/python bench/web_list.py --store sqlite --jobs 1000000
    .venv/bin/python bench/web_list.py --store postgres --jobs 1000000 [--url postgresql://…]
    .venv/bin/python bench/web_list.py --store sqlite --jobs 20000 --runs 3   # a smoke run

Fills a fresh store (SQLite: a file in a temporary folder; PostgreSQL: a new schema, dropped at
the end unless --keep) with `--jobs` jobs written straight into the jobs table, the way a store
that has run for a week looks: mostly completed, some failed with errors of every kind, a
backlog of pending and scheduled jobs, a few running on workers; names, queues, arguments
with e-mail addresses and order numbers, metadata, creation times over seven days. The rows
go in by COPY (PostgreSQL) or one executemany transaction (SQLite), then ANALYZE (PostgreSQL:
VACUUM ANALYZE, as autovacuum would, which also merges the search index's pending entries).

Then it times, in-process (no network), each `--runs` times: every list page (first, deep,
by state, by queue, by name), every filter (part of a name, created and finished ranges,
worker, error kind, combined), searches (a rare address, a common word, an error message, an
id prefix, two letters), through the API and the page; the overview; and the live poll (the
list and the overview fetched with X-Conveyor-Live). It prints the median and 95th percentile
in milliseconds against the issue's targets: 300 ms for a list, filter or search on
PostgreSQL, 200 ms for the overview, 20 ms for the live poll (SQLite is held to the same).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from conveyor import App
from conveyor.web import create_app

NAMES = ["emails.send_welcome", "reports.build", "images.resize", "billing.charge_card"]
QUEUES = ["default", "emails", "reports", "billing"]
KINDS = [
    ("error", "ValueError: card declined by issuer"),
    ("timeout", "timed out after 30 s"),
    ("lost", "the worker died (lease expired)"),
    ("crashed", "process exited on SIGKILL"),
]
# (state, share of jobs): a week of history and a backlog
STATES = [("completed", 0.80), ("failed", 0.05), ("cancelled", 0.01), ("pending", 0.10),
          ("scheduled", 0.03), ("running", 0.01)]  # fmt: skip
WORKERS = [f"worker-{n}" for n in range(8)]
NOW = datetime.now(UTC).replace(microsecond=0)
WEEK = 7 * 86_400.0

LIST_MS, OVERVIEW_MS, POLL_MS = 300.0, 200.0, 20.0
LIVE = {"X-Conveyor-Live": "1"}


@dataclass(frozen=True)
class Case:
    label: str
    path: str
    target: float
    live: bool = False


def cases(rare: str, id_prefix: str) -> list[Case]:
    """Every request timed; `rare` is one job's e-mail address, `id_prefix` one job's id."""
    lists = [
        ("list: first page", "/jobs"),
        ("list: page 100", "/jobs?page=100"),
        ("list: state=failed", "/jobs?state=failed"),
        ("list: state=pending page 100", "/jobs?state=pending&page=100"),
        ("list: queue=reports", "/jobs?queue=reports"),
        ("list: name + queue", "/jobs?name=reports.build&queue=reports"),
        ("filter: name contains", "/jobs?name_contains=charge"),
        ("filter: created in the last hour", "/jobs?created_after=1h"),
        ("filter: created 3-4 days ago", "/jobs?created_after=4d&created_before=3d"),
        ("filter: finished in the last hour", "/jobs?finished_after=1h"),
        ("filter: worker", "/jobs?worker=worker-3"),
        ("filter: error kind timeout", "/jobs?error_kind=timeout"),
        ("filter: failed + kind + 1 day", "/jobs?state=failed&error_kind=lost&finished_after=1d"),
        ("search: one address", f"/jobs?q={rare}"),
        ("search: a common word", "/jobs?q=example"),
        ("search: an error message", "/jobs?q=declined"),
        ("search: error text + kind", "/jobs?q=declined&error_kind=error"),
        ("search: an id prefix", f"/jobs?q={id_prefix}"),
        ("search: two letters", "/jobs?q=zq"),
        ("search: page 20", "/jobs?q=example&page=20"),
    ]
    found = [Case(label, path, LIST_MS) for label, path in lists]
    found += [Case("api " + label, "/api" + path, LIST_MS) for label, path in lists[::3]]
    found += [
        Case("overview", "/", OVERVIEW_MS),
        Case("api stats", "/api/stats", OVERVIEW_MS),
        Case("live poll: list", "/jobs", POLL_MS, live=True),
        Case("live poll: overview", "/", POLL_MS, live=True),
    ]
    return found


def rows(total: int, seed: int = 19) -> Iterator[dict[str, Any]]:
    """`total` job rows, oldest first (ids sort by creation time, as the store's do)."""
    rng = random.Random(seed)
    weights = [share for _, share in STATES]
    names = [state for state, _ in STATES]
    start = NOW.timestamp() - WEEK
    for i in range(total):
        created = start + WEEK * i / total
        ms = int(created * 1000)
        job_id = (
            f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-7{rng.getrandbits(12):03x}-"
            f"{0x8000 | rng.getrandbits(14):04x}-{rng.getrandbits(48):012x}"
        )
        state = rng.choices(names, weights)[0]
        if state in ("pending", "scheduled", "running"):
            created = NOW.timestamp() - rng.random() * 3600  # the backlog is recent
        name = NAMES[i % len(NAMES)]
        row: dict[str, Any] = {
            "id": job_id,
            "name": name,
            "queue": QUEUES[i % len(QUEUES)],
            "args": {"email": f"user{i}@example.org", "order": 100_000 + i, "note": "x" * 40},
            "metadata": {"tenant": f"tenant-{i % 50}"},
            "state": state,
            "attempt": 0 if state in ("pending", "scheduled") else 1,
            "max_attempts": 3,
            "run_at": created + (3600 if state == "scheduled" else 0),
            "created_at": created,
            "started_at": None,
            "finished_at": None,
            "errors": [],
            "worker_id": None,
            "lease_expires_at": None,
        }
        if state in ("completed", "failed", "cancelled", "running"):
            row["started_at"] = created + 0.05
        if state in ("completed", "failed", "cancelled"):
            row["finished_at"] = created + 0.05 + rng.random() * 5
        if state == "failed":
            kind, message = KINDS[i % len(KINDS)]
            row["errors"] = [{"attempt": 1, "message": message, "traceback": "Traceback …",
                              "at": row["finished_at"], "kind": kind}]  # fmt: skip
        if state == "running":
            row["worker_id"] = WORKERS[i % len(WORKERS)]
            row["lease_expires_at"] = NOW.timestamp() + 300
        yield row


COLUMNS = ["id", "name", "queue", "args", "metadata", "state", "attempt", "max_attempts",
           "run_at", "created_at", "started_at", "finished_at", "errors", "worker_id",
           "lease_expires_at"]  # fmt: skip
JSON_COLUMNS = {"args", "metadata", "errors"}
TIME_COLUMNS = {"run_at", "created_at", "started_at", "finished_at", "lease_expires_at"}


def fill_sqlite(path: Path, total: int) -> None:
    """Insert the rows in one transaction (executemany), then ANALYZE."""
    conn = sqlite3.connect(path)
    marks = ", ".join("?" for _ in COLUMNS)
    sql = f"INSERT INTO conveyor_jobs ({', '.join(COLUMNS)}) VALUES ({marks})"

    def values() -> Iterator[tuple[Any, ...]]:
        for row in rows(total):
            yield tuple(json.dumps(row[c]) if c in JSON_COLUMNS else row[c] for c in COLUMNS)

    with conn:
        conn.executemany(sql, values())
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(base_url: str, schema: str, total: int) -> None:
    """COPY the rows into the schema's jobs table, then VACUUM ANALYZE."""
    import psycopg

    def value(column: str, v: Any) -> Any:
        if v is None:
            return None
        if column in JSON_COLUMNS:
            return json.dumps(v)
        if column in TIME_COLUMNS:
            return datetime.fromtimestamp(v, UTC)
        return v

    with psycopg.connect(base_url) as conn:
        copy_sql = f'COPY "{schema}".jobs ({", ".join(COLUMNS)}) FROM STDIN'
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for row in rows(total):
                copy.write_row([value(c, row[c]) for c in COLUMNS])
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'VACUUM ANALYZE "{schema}".jobs')


def _migrate(url: str) -> None:
    """Open the store once, so that it creates and migrates its tables."""
    app = App(url)
    app.jobs.counts()
    app.close()


@contextmanager
def bench_store(kind: str, jobs: int, url: str, keep: bool) -> Iterator[App]:
    """An app on a freshly filled store of `kind`."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="conveyor-web-bench-") as folder:
            path = Path(folder) / "bench.db"
            _migrate(f"sqlite:///{path}")
            fill_sqlite(path, jobs)
            app = App(f"sqlite:///{path}")
            try:
                yield app
            finally:
                app.close()
        return
    schema = f"web_bench_{secrets.token_hex(4)}"
    store_url = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    _migrate(store_url)
    fill_postgres(url, schema, jobs)
    app = App(store_url)
    try:
        yield app
    finally:
        app.close()
        if not keep:
            import psycopg

            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        else:
            print(f"kept schema {schema}")


def measure(client: TestClient, case: Case, runs: int) -> list[float]:
    headers = LIVE if case.live else {}
    client.get(case.path, headers=headers)  # warm up: prepared statements, template cache
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(case.path, headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (case.path, response.status_code, response.text[:300])
    return sorted(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="the PostgreSQL database for --store postgres")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema")
    options = parser.parse_args()
    started = time.perf_counter()
    with bench_store(options.store, options.jobs, options.url, options.keep) as app:
        print(f"{options.store}: {options.jobs:,} jobs in {time.perf_counter() - started:.1f} s")
        first = app.jobs.list(per_page=1).jobs
        id_prefix = first[0].id[:13] if first else "0000"
        rare = f"user{options.jobs // 2}@example.org"
        web = create_app(app, tokens={"bench": {"view"}})
        print(f"{'request':44} {'median ms':>10} {'p95 ms':>8} {'target':>7}")
        slow = 0
        bearer = {"Authorization": "Bearer bench"}
        with TestClient(web, base_url="http://localhost", headers=bearer) as client:
            for case in cases(rare, id_prefix):
                timings = measure(client, case, options.runs)
                median = statistics.median(timings)
                p95 = timings[max(int(len(timings) * 0.95) - 1, 0)]
                verdict = "ok" if median < case.target else "SLOW"
                slow += verdict == "SLOW"
                print(f"{case.label:44} {median:10.1f} {p95:8.1f} {case.target:7.0f}  {verdict}")
        print(f"{slow} of {len(cases(rare, id_prefix))} over target")


if __name__ == "__main__":
    main()
