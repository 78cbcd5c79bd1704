"""A long job is never rescued while its worker lives, with the default 10 s lease, even when the
worker's cores are busy: the heartbeat (one per worker process) keeps renewing its lease."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from conveyor.model.settings import Settings
from helpers import wait_until

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
LONG_JOB_SECONDS = 60.0


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_a_60_second_job_on_a_loaded_worker_keeps_its_lease(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    defaults = Settings()
    assert defaults.lease_seconds <= 10 < LONG_JOB_SECONDS / 2  # the default is what is tested
    url = f"sqlite:///{tmp_path}/jobs.db"
    env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": str(HERE)}
    producer = conveyor.App(url)
    producer.declare("long_job", max_attempts=1)
    producer.declare("burn", max_attempts=1)
    try:
        long = producer.enqueue("long_job", {"seconds": LONG_JOB_SECONDS})
        burners = [producer.enqueue("burn", {"seconds": LONG_JOB_SECONDS}) for _ in range(3)]
        # two workers: the idle one's sweeper would rescue the long job the moment its lease
        # lapsed; two busy loops outside keep both cores of this machine loaded
        for _ in range(2):
            processes.append(
                subprocess.Popen([sys.executable, str(HERE / "live_lease_app.py")], env=env)
            )
        for _ in range(2):
            processes.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))

        wait_until(
            lambda: (
                long.refresh().state is JobState.COMPLETED
                or long.job.attempt > 1
                or bool(long.job.errors)
            ),
            LONG_JOB_SECONDS * 3,
            "the long job to finish",
        )

        job = long.refresh()
        assert (job.state, job.attempt, job.errors) == (JobState.COMPLETED, 1, ())
        for handle in burners:
            wait_until(
                lambda h=handle: h.refresh().state is JobState.COMPLETED,
                LONG_JOB_SECONDS * 2,
                "the CPU-bound jobs to finish",
            )
            assert handle.job.errors == ()
    finally:
        producer.close()
