"""Cancellation, progress and logs, hooks, shutdown: steering jobs while they run."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import conveyor
from conveyor import JobState
from conveyor.backends.records import Outcome
from helpers import wait_until, wait_until_async


async def test_cancelled_pending_job_never_runs(app: conveyor.App) -> None:
    ran: list[int] = []

    @app.job
    async def work(ctx: conveyor.Context, n: int) -> None:
        ran.append(n)

    doomed = work.with_options(delay=0.3).enqueue(n=1)
    kept = work.with_options(delay=0.3).enqueue(n=2)
    assert app.jobs.cancel(doomed.id).state is JobState.CANCELLED
    async with app.worker():
        await kept.wait_async(10)
    assert ran == [2]
    assert doomed.refresh().state is JobState.CANCELLED


async def test_cancel_running_async_job_cancels_its_task(app: conveyor.App) -> None:
    started = asyncio.Event()
    got_cancelled = asyncio.Event()

    @app.job
    async def long(ctx: conveyor.Context) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            got_cancelled.set()
            raise

    handle = long.enqueue()
    async with app.worker():
        await asyncio.wait_for(started.wait(), 10)
        app.jobs.cancel(handle.id)
        job = await handle.wait_async(10)
    assert job.state is JobState.CANCELLED
    assert got_cancelled.is_set()


async def test_cancel_running_sync_job_sets_cancel_requested(app: conveyor.App) -> None:
    started, noticed = threading.Event(), threading.Event()

    @app.job
    def loop_until_cancelled(ctx: conveyor.Context) -> str:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if ctx.cancel_requested:
                noticed.set()
                return "stopped early"
            time.sleep(0.01)
        return "ran to the end"

    handle = loop_until_cancelled.enqueue()
    async with app.worker():
        await wait_until_async(started.is_set)
        app.jobs.cancel(handle.id)
        job = await handle.wait_async(10)
        await wait_until_async(noticed.is_set, what="the job to see ctx.cancel_requested")
    assert job.state is JobState.CANCELLED
    assert job.result is None  # a cancelled job's late return value is discarded


async def test_cancel_reaches_a_worker_in_another_app_object(app: conveyor.App) -> None:
    """An operator's App (another object, as in another process) cancels via the store."""
    if app.url == "memory://":
        return  # an in-memory store cannot be shared by two App objects
    started = asyncio.Event()

    @app.job
    async def long(ctx: conveyor.Context) -> None:
        started.set()
        await asyncio.sleep(30)

    handle = long.enqueue()
    operator = conveyor.App(app.url)
    try:
        async with app.worker():
            await asyncio.wait_for(started.wait(), 10)
            operator.jobs.cancel(handle.id)
            job = await handle.wait_async(10)
    finally:
        operator.close()
    assert job.state is JobState.CANCELLED


async def test_progress_and_logs_visible_while_running(app: conveyor.App) -> None:
    release = asyncio.Event()

    @app.job
    async def report(ctx: conveyor.Context) -> None:
        ctx.progress(40, "loading rows")
        ctx.log("first line")
        ctx.log("<script>alert(1)</script>")
        await release.wait()

    handle = report.enqueue()
    async with app.worker():
        await wait_until_async(
            lambda: handle.refresh().progress == 40 and len(handle.job.logs) == 2,
            what="progress and logs to reach the store",
        )
        assert handle.job.state is JobState.RUNNING
        assert handle.job.progress_message == "loading rows"
        assert next(line.message for line in handle.job.logs) == "first line"
        release.set()
        await handle.wait_async(10)


async def test_logs_are_bounded_with_a_marker() -> None:
    app = conveyor.App("memory://", max_log_lines=10, progress_flush_count=7)

    @app.job
    def chatty(ctx: conveyor.Context) -> None:
        for i in range(25):
            ctx.log(f"line {i}")

    handle = chatty.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    messages = [line.message for line in job.logs]
    assert len(messages) == 10
    assert messages[0] == "[16 earlier lines dropped]"
    assert messages[-1] == "line 24"


async def test_hooks_see_every_event_and_a_raising_hook_breaks_nothing(app: conveyor.App) -> None:
    events: list[tuple[str, str]] = []
    for kind in ("enqueued", "started", "progress", "succeeded", "failed", "retrying"):
        app.hooks.add(kind, lambda e: events.append((e.kind, e.job.name)))  # type: ignore[arg-type]

    @app.on("succeeded")
    def explode(event: conveyor.JobEvent) -> None:
        raise RuntimeError("hook bug")

    attempts = 0

    @app.job(max_attempts=2, backoff=conveyor.Backoff(base=0.01))
    async def twice(ctx: conveyor.Context) -> None:
        nonlocal attempts
        attempts += 1
        ctx.progress(50)
        if attempts == 1:
            raise RuntimeError("first")

    @app.job(max_attempts=1)
    async def never(ctx: conveyor.Context) -> None:
        raise RuntimeError("no")

    a, b = twice.enqueue(), never.enqueue()
    async with app.worker():
        assert (await a.wait_async(10)).state is JobState.COMPLETED
        assert (await b.wait_async(10)).state is JobState.FAILED
        await wait_until_async(lambda: ("failed", "never") in events)
    kinds = {kind for kind, name in events if name == "twice"}
    assert kinds == {"enqueued", "started", "progress", "retrying", "succeeded"}


async def test_graceful_shutdown_returns_unfinished_jobs_without_counting(
    app: conveyor.App,
) -> None:
    started = asyncio.Event()

    @app.job
    async def endless(ctx: conveyor.Context) -> None:
        started.set()
        await asyncio.sleep(60)

    handle = endless.enqueue()
    worker = app.worker()
    await worker.start()
    await asyncio.wait_for(started.wait(), 10)
    await worker.stop(timeout=0.1)
    job = handle.refresh()
    assert job.state is JobState.PENDING
    assert job.attempt == 0  # the interrupted attempt was given back


async def test_stopping_while_outcomes_are_written_still_acknowledges_them(
    app: conveyor.App,
) -> None:
    """stop() must let an acknowledgement in flight complete: cut off, its jobs are stored
    completed but their `succeeded` hooks never fire and the worker's stats miss them."""
    if not app.backend.blocking:
        pytest.skip("this store writes on the event loop: a write cannot be in flight")
    ran: list[int] = []
    succeeded: list[str] = []
    app.on("succeeded")(lambda event: succeeded.append(event.job.id))

    @app.job
    async def tick(ctx: conveyor.Context, n: int) -> None:
        ran.append(n)

    handles = app.enqueue_many([tick.request(n=n) for n in range(20)])
    worker = app.worker(concurrency=5)
    writing, finish = threading.Event(), app.backend.finish

    def finish_held_until_stopping(outcomes: list[Outcome]) -> list[str]:
        if not writing.is_set():
            writing.set()
            # the first write is held until stop() has dealt with the writer task
            wait_until(
                lambda: getattr(worker, "_writer_done", False) or worker._tasks[1].cancelling(),
                what="stop() to reach the writer",
            )
        return finish(outcomes)

    app.backend.finish = finish_held_until_stopping  # type: ignore[method-assign]
    await worker.start()
    await wait_until_async(
        lambda: len(ran) == 20 and writing.is_set(), what="every job to run, and a write"
    )
    await worker.stop()
    assert worker.stats.succeeded == 20
    assert sorted(succeeded) == sorted(handle.id for handle in handles)
    assert all(handle.refresh().state is JobState.COMPLETED for handle in handles)


async def test_serial_queue_runs_one_at_a_time_in_order(app: conveyor.App) -> None:
    app.queue("serial", concurrency=1)
    active, peak, order = 0, 0, []

    @app.job(queue="serial")
    async def step(ctx: conveyor.Context, n: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        order.append(n)
        await asyncio.sleep(0.005)
        active -= 1

    handles = app.enqueue_many([step.request(n=i) for i in range(15)])
    async with app.worker(concurrency=8):
        for handle in handles:
            await handle.wait_async(20)
    assert peak == 1
    assert order == list(range(15))


async def test_paused_queue_waits_until_resumed(app: conveyor.App) -> None:
    ran: list[str] = []

    @app.job(queue="mail")
    async def send(ctx: conveyor.Context) -> None:
        ran.append("mail")

    @app.job
    async def other(ctx: conveyor.Context) -> None:
        ran.append("other")

    app.jobs.pause_queue("mail")
    held, free = send.enqueue(), other.enqueue()
    async with app.worker():
        await free.wait_async(10)
        assert held.refresh().state is JobState.PENDING
        [mail] = [q for q in app.jobs.queues() if q.name == "mail"]
        assert mail.paused and mail.waiting == 1
        app.jobs.resume_queue("mail")
        await held.wait_async(10)
    assert ran == ["other", "mail"]
    assert sum(t.completed for t in app.jobs.throughput()) == 2
