"""A frozen worker (SIGSTOP) loses its job's lease, another worker runs the job again and
completes it; thawed (SIGCONT), the frozen one finishes its stale attempt and the store refuses
its outcome: the re-run's result stays. On SQLite and PostgreSQL."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from faults.support import Pool, RunLog, freeze
from helpers import wait_until

pytestmark = pytest.mark.slow


def test_a_thawed_workers_stale_outcome_is_refused_and_the_rerun_kept(
    app: conveyor.App, pool: Pool, runs: RunLog, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"  # the job runs until it exists
    frozen = pool.start(concurrency=2)
    handle = app.enqueue("hold", {"gate": str(gate)})
    wait_until(lambda: runs.in_flight().get(frozen.pid), 30, "the first run")
    wait_until(lambda: freeze(frozen, app.url), 10, "the worker frozen")  # a stalled process
    try:
        other = pool.start(concurrency=2)

        def rerun_started() -> bool:
            return handle.id in runs.in_flight().get(other.pid, set())

        wait_until(rerun_started, 30, "the lease to expire and the job to run again")
        gate.touch()  # both runs may end now; the frozen one cannot see it yet
        job = handle.wait(30)
        assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, other.pid)
        assert [error.kind for error in job.errors] == ["lost"]
        assert job.errors[0].attempt == 1
    finally:
        frozen.send_signal(signal.SIGCONT)  # it comes back and ends its stale attempt

    def stale_run_ended() -> bool:
        return any(run.event == "end" and run.pid == frozen.pid for run in runs.by_job()[handle.id])

    wait_until(stale_run_ended, 30, "the thawed worker to finish its stale attempt")

    def refused() -> bool:  # what the worker logs when the store refused its outcome
        lines = pool.output(frozen).splitlines()
        return any(handle.id in line and "was not recorded" in line for line in lines)

    wait_until(refused, 30, "the thawed worker to report its outcome refused")
    job = handle.refresh()
    assert (job.state, job.attempt, job.result) == (JobState.COMPLETED, 2, other.pid)
    assert [error.kind for error in job.errors] == ["lost"]
    assert frozen.poll() is None and other.poll() is None  # both carry on
