"""SIGTERM to a worker whose jobs outlast its shutdown timeout, on SQLite and PostgreSQL: it
exits within that timeout, its jobs come back pending with their attempt given back, and they
complete on another worker."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from faults.support import Pool, RunLog
from helpers import wait_until

pytestmark = pytest.mark.slow
SHUTDOWN_TIMEOUT = 1.0
SLOTS = 3


@pytest.fixture
def settings() -> dict[str, float]:
    # a long lease: the jobs must come back because the worker released them, not by a rescue
    return {"lease_seconds": 30.0, "heartbeat_interval": 0.5, "shutdown_timeout": SHUTDOWN_TIMEOUT}


@pytest.mark.parametrize("job", ["hold", "hold_sync"])
def test_sigterm_returns_long_jobs_uncounted_and_another_worker_completes_them(
    app: conveyor.App, pool: Pool, runs: RunLog, tmp_path: Path, job: str
) -> None:
    gate = tmp_path / "gate"  # the jobs run until it exists
    first = pool.start(concurrency=SLOTS)
    handles = [app.enqueue(job, {"gate": str(gate)}) for _ in range(SLOTS)]

    def running_in_first() -> bool:
        return len(runs.in_flight().get(first.pid, ())) == SLOTS

    wait_until(running_in_first, 30, "every job to run in the first worker")
    second = pool.start(concurrency=SLOTS)  # idle until the jobs come back
    wait_until(lambda: len(app.jobs.workers()) == 2, 30, "the second worker up")

    first.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    assert first.wait(SHUTDOWN_TIMEOUT + 10) == 0, pool.output(first)
    took = time.monotonic() - sent
    assert took >= SHUTDOWN_TIMEOUT * 0.9  # it gave the jobs their grace period...
    assert took < SHUTDOWN_TIMEOUT + 5  # ...and no more (a thread job cannot hold it)
    assert f"returned {SLOTS} unfinished job(s) to the queue" in pool.output(first)

    def back() -> bool:  # released by the first worker, maybe claimed by the second already
        jobs = [handle.refresh() for handle in handles]
        return all(j.attempt <= 1 and f":{first.pid}:" not in (j.worker_id or "") for j in jobs)

    wait_until(back, 10, "the jobs to leave the first worker")
    for handle in handles:
        assert handle.job.errors == ()  # a release is not a failed attempt
    gate.touch()
    for handle in handles:
        done = handle.wait(30)
        assert (done.state, done.attempt, done.result) == (JobState.COMPLETED, 1, second.pid)

    by_job = runs.by_job()
    for handle in handles:
        starts = [(run.attempt, run.pid) for run in by_job[handle.id] if run.event == "start"]
        assert starts == [(1, first.pid), (1, second.pid)]  # the same attempt, given back
        ends = [run.pid for run in by_job[handle.id] if run.event == "end"]
        assert ends == [second.pid]  # the first run was cut short
    assert second.poll() is None  # still serving
