"""A worker draining 50,000 queued jobs (SQLite) keeps a flat resident set: what it holds does
not grow with the jobs it has run."""

from __future__ import annotations

from pathlib import Path

import pytest

import conveyor
from faults.support import Pool, completed, rss_kib
from helpers import wait_until

pytestmark = pytest.mark.slow
JOBS = 50_000
# generous (0.1-2 MiB measured), yet a leak of 420 bytes a job, over the 40,000 jobs between
# the two readings, would fail it
GROWTH_LIMIT_KIB = 16 * 1024


@pytest.fixture
def url(tmp_path: Path) -> str:
    """SQLite only, here."""
    return f"sqlite:///{tmp_path}/jobs.db"


def test_a_draining_workers_rss_stays_flat(app: conveyor.App, pool: Pool) -> None:
    for start in range(0, JOBS, 10_000):
        app.enqueue_many([app.request("noop", {"n": n}) for n in range(start, start + 10_000)])
    worker = pool.start(concurrency=10, log_level="warning")
    wait_until(lambda: completed(app) >= JOBS // 10, 120, "a tenth of the jobs done")
    early = rss_kib(worker.pid)
    wait_until(lambda: completed(app) >= JOBS * 9 // 10, 180, "nine tenths done")
    late, peak = rss_kib(worker.pid), rss_kib(worker.pid, "VmHWM")
    wait_until(lambda: completed(app) == JOBS, 60, "every job done")
    assert app.jobs.counts().by_state == {"completed": JOBS}
    print(f"worker RSS {early} KiB at 10 %, {late} KiB at 90 %, peak {peak} KiB")  # with -s
    assert late - early <= GROWTH_LIMIT_KIB, (early, late, peak)
    assert worker.poll() is None  # it is still running
