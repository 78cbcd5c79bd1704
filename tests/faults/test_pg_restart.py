"""A real PostgreSQL restart under two busy worker processes: they reconnect by themselves and
no job is lost or left stuck (a job may run twice only if its lease expired meanwhile, and
then the store says so with a `lost` error).

tests/postgres/test_restart.py restarts the server too, with a producer enqueueing through it
(errors, not silent drops, while it is down); this is the fault suite's short version, about
the workers, on the same cluster controls. The server is running again when the test ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor.errors import StoreUnavailable
from faults.stores import make_url
from faults.support import Pool, RunLog, audit, completed, enqueue_records
from helpers import wait_until

pytest.importorskip("psycopg", reason='psycopg missing: pip install -e ".[dev]"')
from postgres.test_restart import cluster_version, pg_ctl, server_ready

pytestmark = pytest.mark.slow
JOBS = 2000
SECONDS = 0.02  # 2 workers of 4 slots: at least 5 s of work, so the restart comes mid-run


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    """PostgreSQL only, here."""
    yield from make_url("postgres", tmp_path)


@pytest.fixture
def version(url: str) -> Iterator[str]:
    """The cluster to restart; accepting connections again after the test (before the
    test's schema is dropped, which is why it depends on `url`)."""
    found = cluster_version()
    if found is None:
        pytest.skip("needs pg_ctlcluster and a cluster under /etc/postgresql")
    try:
        yield found
    finally:
        if not server_ready():
            pg_ctl(found, "start", check=False)
        wait_until(server_ready, 60, "PostgreSQL to accept connections again")


def completed_or_zero(app: conveyor.App) -> int:
    """`completed`, or 0 while the store is unreachable."""
    try:
        return completed(app)
    except StoreUnavailable:
        return 0


def test_workers_reconnect_after_a_postgres_restart_and_lose_no_job(
    app: conveyor.App, pool: Pool, runs: RunLog, version: str
) -> None:
    workers = [pool.start(concurrency=4) for _ in range(2)]
    wait_until(lambda: len(app.jobs.workers()) == 2, 60, "both workers up")
    ids = enqueue_records(app, JOBS, SECONDS)
    wait_until(lambda: completed(app) >= 100, 60, "work to flow before the restart")
    pg_ctl(version, "restart")
    back = time.time()

    def worked_since_restart() -> bool:  # each worker started jobs on a new connection
        pids = {run.pid for run in runs.read() if run.event == "start" and run.at > back}
        return all(proc.pid in pids for proc in workers)

    wait_until(worked_since_restart, 60, "both workers to run jobs after the restart")
    wait_until(lambda: completed_or_zero(app) == JOBS, 120, "every job to complete")
    assert app.jobs.counts().by_state == {"completed": JOBS}  # none stuck

    found = audit(app, ids, runs, killed=set())
    print(found.summary())  # shown with -s
    assert found.ok, found.summary()
    assert not pool.unexpected_exits(), pool.unexpected_exits()  # they rode it out
    assert all(proc.poll() is None for proc in workers)
