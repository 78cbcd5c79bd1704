"""Workflows across real worker processes, on SQLite and PostgreSQL: a fan-in released exactly
once by many workers, and a workflow that completes although a worker was SIGKILLed in it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from helpers import wait_until
from integration.test_processes import HERE, Workers
from integration_support import store

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store(request.param, tmp_path) as found:
        yield found


@pytest.fixture
def producer(url: str) -> Iterator[conveyor.App]:
    sys.path.insert(0, str(HERE))
    os.environ["CONVEYOR_URL"] = url
    import process_app

    process_app.app.close()
    process_app.app.url = url
    yield process_app.app
    process_app.app.close()
    sys.path.remove(str(HERE))


@pytest.fixture
def workers(url: str) -> Iterator[Workers]:
    pool = Workers(url)
    yield pool
    pool.stop_all()


def fan(app: conveyor.App, width: int) -> conveyor.Workflow:
    """record(0) → record(1..width) → record(-1)."""
    wf = app.workflow("fan")
    first = wf.add(app.request("record", {"n": 0}), name="first")
    middle = [
        wf.add(app.request("record", {"n": n}), after=[first], name=f"part-{n}")
        for n in range(1, width + 1)
    ]
    wf.add(app.request("record", {"n": -1}), after=middle, name="last")
    return wf


def test_three_workers_release_each_fan_in_child_once(
    producer: conveyor.App, workers: Workers
) -> None:
    for _ in range(3):
        workers.start(concurrency=4)
    wait_until(lambda: len(producer.jobs.workers()) == 3, 30, "three workers to start")
    handles = [fan(producer, 40).enqueue() for _ in range(3)]

    for handle in handles:
        stored = handle.wait(timeout=60)
        assert stored.state == "completed", stored.counts
        steps = {job.step: job for job in stored.steps}
        assert all(job.attempt == 1 for job in stored.steps)  # each ran exactly once
        last, first = steps["last"], steps["first"]
        parts = [job for name, job in steps.items() if name.startswith("part-")]
        assert last.result["start"] >= max(job.result["end"] for job in parts)
        assert min(job.result["start"] for job in parts) >= first.result["end"]
    pids = {job.result["pid"] for h in handles for job in h.get().steps}
    assert len(pids) > 1, "the steps were shared between worker processes"


def test_a_workflow_completes_after_a_worker_is_killed_in_it(
    producer: conveyor.App, workers: Workers
) -> None:
    wf = producer.workflow("survivor")
    before = wf.add(producer.request("record", {"n": 1}), name="before")
    hold = wf.add(producer.request("sleepy_first", {"seconds": 30}), after=[before], name="hold")
    wf.add(producer.request("record", {"n": 2}), after=[hold], name="after")
    handle = wf.enqueue()
    victim = workers.start()
    job = handle.steps["hold"]
    wait_until(lambda: job.refresh().state is JobState.RUNNING, 30, "the long step to start")

    victim.kill()  # SIGKILL in the middle of the workflow
    victim.wait(10)
    assert handle.steps["after"].refresh().state is JobState.WAITING
    workers.start()
    wait_until(lambda: job.refresh().attempt == 2, 30, "the rescue of the long step")
    assert job.job.errors[0].kind == "lost"
    stored = handle.wait(timeout=60)

    assert stored.state == "completed"
    attempts = {step.step: step.attempt for step in stored.steps}
    assert attempts == {"before": 1, "hold": 2, "after": 1}
