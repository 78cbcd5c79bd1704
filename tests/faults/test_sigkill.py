"""SIGKILLs of worker processes mid-run, on SQLite and PostgreSQL: no job is lost, none is left
stuck, and a job runs twice only when an earlier attempt of it died with a killed process."""

from __future__ import annotations

import random
import subprocess
import time
from functools import partial

import pytest

import conveyor
from faults.support import Pool, RunLog, audit, completed, enqueue_records
from helpers import wait_until

pytestmark = pytest.mark.slow
JOBS = 500
SECONDS = 0.2  # each job's length: 3 workers of 4 slots need about 8 s for them all
WORKERS = 3
KILLS = 5
PACE = 1.0  # seconds between kills


def test_sigkills_lose_no_job_and_rerun_only_killed_attempts(
    app: conveyor.App, pool: Pool, runs: RunLog
) -> None:
    rng = random.Random()
    ids = enqueue_records(app, JOBS, SECONDS)
    for _ in range(WORKERS):
        pool.start(concurrency=4)

    busy: list[subprocess.Popen[bytes]] = []  # live workers with a job's body running

    def victims(due: float) -> list[subprocess.Popen[bytes]]:  # found once it is time
        flying = runs.in_flight() if time.monotonic() >= due else {}
        busy[:] = [proc for proc in pool.alive() if flying.get(proc.pid)]
        return busy

    for kill in range(KILLS):
        due = time.monotonic() + (PACE if kill else 0.0)
        wait_until(partial(victims, due), 60, f"a worker running a job, for kill {kill + 1}")
        pool.kill(rng.choice(busy))
        pool.start(concurrency=4)  # its replacement

    assert completed(app) < JOBS  # the last kill came with work left
    wait_until(lambda: completed(app) == JOBS, 90, "every job to complete")
    assert app.jobs.counts().by_state == {"completed": JOBS}  # nothing left running or pending

    found = audit(app, ids, runs, pool.killed)
    print(found.summary())  # shown with -s
    assert found.ok, found.summary()
    assert (found.completed, found.lost, found.stuck) == (JOBS, [], [])
    assert found.interrupted >= 1  # the kills did cut jobs short, and those jobs ran again
    assert found.duplicates <= found.extra_runs
    assert len(pool.killed) == KILLS
    assert not pool.unexpected_exits(), pool.unexpected_exits()
