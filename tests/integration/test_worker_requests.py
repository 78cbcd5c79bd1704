"""Quieting, resuming and stopping a live worker through the store (its heartbeat reads the
operator's request), on every store."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

import conveyor
from conveyor import JobState
from conveyor.backends.records import WorkerInfo
from helpers import wait_until_async


@contextmanager
def operator_of(app: conveyor.App) -> Iterator[conveyor.App]:
    """Another App object on the same store, as an operator's CLI or dashboard in another
    process would be (the memory store cannot be shared: the app itself then)."""
    if app.url == "memory://":
        yield app
        return
    operator = conveyor.App(app.url)
    try:
        yield operator
    finally:
        operator.close()


def seen(app: conveyor.App, worker_id: str) -> WorkerInfo | None:
    return next((w for w in app.jobs.workers() if w.id == worker_id), None)


async def beats_after(app: conveyor.App, worker_id: str, count: int) -> None:
    """Wait until the worker has sent `count` more heartbeats (its last_seen_at moved on)."""
    for _ in range(count):
        before = seen(app, worker_id)
        assert before is not None
        await wait_until_async(
            lambda b=before: (
                (w := seen(app, worker_id)) is not None and w.last_seen_at > b.last_seen_at
            ),
            what="the worker's next heartbeat",
        )


async def test_a_quiet_worker_claims_nothing_new_finishes_its_job_and_resumes(
    app: conveyor.App,
) -> None:
    release = asyncio.Event()
    started: list[int] = []

    @app.job
    async def work(ctx: conveyor.Context, n: int) -> int:
        started.append(n)
        if n == 1:
            await release.wait()
        return n

    first = work.enqueue(n=1)
    with operator_of(app) as operator:
        async with app.worker(concurrency=4) as worker:
            await wait_until_async(lambda: started == [1], what="the first job to start")
            asked = operator.jobs.quiet_worker(worker.id)
            assert asked.requested == "quiet"
            await wait_until_async(
                lambda: (w := seen(operator, worker.id)) is not None and w.mode == "quiet",
                what="the worker to report itself quiet",
            )
            assert worker.mode == "quiet"
            second = work.enqueue(n=2)
            release.set()
            assert (await first.wait_async(10)).state is JobState.COMPLETED  # it finished
            await beats_after(operator, worker.id, 3)  # alive, and still claiming nothing
            assert second.refresh().state is JobState.PENDING
            assert started == [1]

            operator.jobs.resume_worker(worker.id)
            assert (await second.wait_async(10)).state is JobState.COMPLETED
            await wait_until_async(
                lambda: (w := seen(operator, worker.id)) is not None and w.mode == "running",
                what="the worker to report itself running again",
            )
    assert started == [1, 2]


async def test_a_stopped_worker_finishes_its_job_claims_nothing_and_exits(
    app: conveyor.App,
) -> None:
    release = asyncio.Event()
    started: list[int] = []

    @app.job
    async def work(ctx: conveyor.Context, n: int) -> int:
        started.append(n)
        if n == 1:
            await release.wait()
        return n

    first = work.enqueue(n=1)
    with operator_of(app) as operator:
        worker = app.worker(concurrency=4)
        await worker.start()
        try:
            await wait_until_async(lambda: started == [1], what="the first job to start")
            operator.jobs.stop_worker(worker.id)
            await wait_until_async(
                lambda: (w := seen(operator, worker.id)) is not None and w.mode == "stopping",
                what="the worker to report itself stopping",
            )
            second = work.enqueue(n=2)
            with pytest.raises(conveyor.WorkerStateConflict):
                operator.jobs.quiet_worker(worker.id)
            release.set()
            await asyncio.wait_for(worker.wait_stopped(), 10)
        finally:
            await worker.stop()  # a no-op once it stopped itself
        assert first.refresh().state is JobState.COMPLETED
        assert second.refresh().state is JobState.PENDING
        assert started == [1]
        assert seen(operator, worker.id) is None  # it unregistered
        with pytest.raises(conveyor.WorkerNotFound):
            operator.jobs.stop_worker(worker.id)


async def test_a_quiet_worker_can_be_stopped(app: conveyor.App) -> None:
    async with app.worker() as worker:
        app.jobs.quiet_worker(worker.id)
        await wait_until_async(lambda: worker.mode == "quiet", what="the worker to go quiet")
        app.jobs.stop_worker(worker.id)
        await asyncio.wait_for(worker.wait_stopped(), 10)
        assert worker.mode == "stopping"
    assert app.jobs.workers() == []


async def test_another_caller_of_stop_waits_for_the_operator_s_stop(app: conveyor.App) -> None:
    release = asyncio.Event()

    @app.job
    async def slow(ctx: conveyor.Context) -> None:
        await release.wait()

    handle = slow.enqueue()
    worker = app.worker()
    await worker.start()
    await wait_until_async(lambda: handle.refresh().state is JobState.RUNNING)
    app.jobs.stop_worker(worker.id)
    await wait_until_async(lambda: worker.mode == "stopping", what="the stop to begin")
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0)
    assert not stopping.done()  # the job still runs: stop() waits with the operator's stop
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert handle.refresh().state is JobState.COMPLETED
