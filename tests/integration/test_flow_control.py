"""Queue settings through the App: declarations reach the store when it opens, a worker that
never declared a queue honours its stored limit, operators' changes win over code, and bounded
queues refuse or wait through app.enqueue (issue 16, points 1 and 4)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState, QueueFull, QueueSettings
from helpers import wait_until_async
from integration_support import FAST, store

SHARED = ["sqlite", "postgres"]  # stores that two Apps (two processes) share


@pytest.fixture(params=SHARED)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store that several Apps can open."""
    with store(request.param, tmp_path) as found:
        yield found


def stored(app: conveyor.App, name: str) -> conveyor.QueueSettings:
    """The queue's settings as the store holds them."""
    return app.jobs.queue(name, known=False).settings


def test_declarations_reach_the_store_when_it_opens(url: str) -> None:
    code = conveyor.App(url, **FAST)
    code.queue("reports", concurrency=1, max_size=100, when_full="refuse")
    other = conveyor.App(url, **FAST)  # declares nothing
    try:
        assert stored(other, "reports") == QueueSettings()  # nothing opened `code` yet
        code.backend  # noqa: B018 - opening the store writes the declarations
        assert stored(other, "reports") == QueueSettings(1, 100, "refuse")
        code.queue("late", concurrency=3)  # the store is open: written at once
        assert stored(other, "late").concurrency == 3
    finally:
        code.close()
        other.close()


def test_an_operators_change_survives_a_deploy_until_reset(url: str) -> None:
    first = conveyor.App(url, **FAST)
    first.queue("reports", concurrency=1, max_size=100)
    first.jobs.set_queue_settings("reports", {"concurrency": 4})
    first.close()
    deploy = conveyor.App(url, **FAST)
    deploy.queue("reports", concurrency=2, max_size=50)
    try:
        kept = deploy.jobs.queue("reports")
        assert (kept.concurrency, kept.max_size, kept.operator_set) == (4, 50, ("concurrency",))
        reset = deploy.jobs.reset_queue_settings("reports")
        assert (reset.concurrency, reset.max_size, reset.operator_set) == (2, 50, ())
    finally:
        deploy.close()


async def test_a_worker_that_never_declared_the_queue_honours_its_limit(url: str) -> None:
    declaring = conveyor.App(url, **FAST)
    declaring.queue("serial", concurrency=1)
    declaring.backend  # noqa: B018 - a producer's store opens: the limit is stored
    worker_app = conveyor.App(url, **FAST)  # never calls app.queue("serial")
    active, peak, order = 0, 0, []

    @worker_app.job(queue="serial")
    async def step(ctx: conveyor.Context, n: int) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        order.append(n)
        await asyncio.sleep(0.005)
        active -= 1

    declaring.declare("step", queue="serial")
    handles = declaring.enqueue_many([declaring.request("step", {"n": i}) for i in range(12)])
    try:
        async with worker_app.worker(concurrency=8):
            for handle in handles:
                await handle.wait_async(20)
        assert peak == 1 and order == list(range(12))
    finally:
        declaring.close()
        worker_app.close()


async def test_an_operator_lifts_a_limit_while_the_worker_runs(url: str) -> None:
    app = conveyor.App(url, **FAST)
    app.queue("reports", concurrency=1)
    release = threading.Event()

    @app.job(queue="reports")
    def report(ctx: conveyor.Context) -> None:
        release.wait(20)

    handles = app.enqueue_many([report.request() for _ in range(3)])

    def running() -> int:
        return sum(h.refresh().state is JobState.RUNNING for h in handles)

    try:
        async with app.worker(concurrency=4):
            await wait_until_async(lambda: running() == 1)
            operator = conveyor.App(url, **FAST)  # another process: the CLI, the dashboard
            operator.jobs.set_queue_settings("reports", {"concurrency": None})
            operator.close()
            await wait_until_async(lambda: running() == 3)
            release.set()
            for handle in handles:
                await handle.wait_async(20)
    finally:
        release.set()
        app.close()


def test_app_enqueue_into_a_full_queue(url: str) -> None:
    app = conveyor.App(url, queue_full_timeout=0.05, **FAST)
    app.queue("imports", max_size=2, when_full="refuse")
    app.queue("buffered", max_size=1)  # when_full="wait", for 0.05 s here
    app.declare("load", queue="imports")
    try:
        app.enqueue("load")
        with pytest.raises(QueueFull, match=r"queue 'imports' is full .*max_size=2"):
            app.enqueue_many([app.request("load"), app.request("load")])
        assert app.jobs.queue("imports").waiting == 1  # all or nothing
        app.enqueue("load")
        with pytest.raises(QueueFull, match="'imports'"):
            app.enqueue("load")
        app.enqueue("load", queue="buffered")
        with pytest.raises(QueueFull, match=r"still full after waiting 0\.05s"):
            app.enqueue("load", queue="buffered")
    finally:
        app.close()


async def test_an_async_enqueue_waits_for_room_without_blocking_the_loop(url: str) -> None:
    app = conveyor.App(url, queue_full_timeout=20.0, **FAST)
    app.queue("buffered", max_size=1)
    app.declare("load", queue="buffered")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    try:
        await app.enqueue_async("load")
        ticker = asyncio.create_task(tick())
        waiting = asyncio.create_task(app.enqueue_async("load"))
        await wait_until_async(lambda: ticks > 20)  # the loop runs while the enqueue waits
        assert not waiting.done()
        worker_app = conveyor.App(url, **FAST)

        @worker_app.job(name="load", queue="buffered")
        async def load(ctx: conveyor.Context) -> None:
            await asyncio.sleep(0)

        async with worker_app.worker():
            handle = await asyncio.wait_for(waiting, 20)
            await handle.wait_async(20)
        worker_app.close()
        ticker.cancel()
        assert handle.created
    finally:
        app.close()


async def test_the_memory_store_waits_for_room_off_the_loop_too() -> None:
    app = conveyor.App("memory://", queue_full="refuse", queue_full_timeout=20.0, **FAST)
    app.queue("buffered", max_size=1)  # a queue's own bound waits, whatever queue_full says
    app.declare("load", queue="buffered")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    first = await app.enqueue_async("load")
    ticker = asyncio.create_task(tick())
    waiting = asyncio.create_task(app.enqueue_async("load"))
    await wait_until_async(lambda: ticks > 20)
    assert not waiting.done()
    app.jobs.cancel(first.id)  # room: the waiting enqueue goes through
    handle = await asyncio.wait_for(waiting, 20)
    ticker.cancel()
    assert handle.created and handle.job.queue == "buffered"
