"""AsyncBridge: callbacks on the given loop, awaitable handles, timeouts, shutdown."""

from __future__ import annotations

import asyncio
import functools
import math
import threading
from typing import Any

import pytest

from conveyor.bridge import AsyncBridge, BridgeClosed, CancelToken, WorkCancelled
from conveyor.errors import UsageError


async def test_results_arrive_on_the_loop_and_the_handle_resolves() -> None:
    loop = asyncio.get_running_loop()
    bridge = AsyncBridge(loop, max_workers=4)
    main = threading.get_ident()
    seen: list[tuple[int, int]] = []
    work_threads: list[int] = []

    def work() -> int:
        work_threads.append(threading.get_ident())
        return 42

    handle = bridge.run_in_background(work, lambda v: seen.append((v, threading.get_ident())))
    assert await handle == 42
    assert seen == [(42, main)]
    assert main not in work_threads
    await bridge.shutdown(1)


async def test_async_work_and_errors() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())

    async def fetch() -> str:
        await asyncio.sleep(0)
        return "page"

    async def broken() -> None:
        raise ValueError("nope")

    assert await bridge.run_in_background(fetch) == "page"
    errors: list[BaseException] = []
    handle = bridge.run_in_background(broken, on_error=errors.append)
    with pytest.raises(ValueError, match="nope"):
        await handle
    assert isinstance(errors[0], ValueError)
    await bridge.shutdown(1)


async def test_try_schedule_dedups_and_times_out() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())
    cancelled = threading.Event()

    def work(token: CancelToken) -> str:
        if token.wait(10):
            cancelled.set()
        return "late"

    errors: list[BaseException] = []
    results: list[Any] = []
    handle = bridge.try_schedule("path", "k", work, results.append, errors.append, timeout=0.05)
    assert handle is not None
    assert bridge.try_schedule("path", "k", work, results.append) is None
    with pytest.raises(TimeoutError):
        await handle
    assert isinstance(errors[0], TimeoutError)
    assert await asyncio.to_thread(cancelled.wait, 10)
    assert results == []
    assert not bridge.in_flight("path", "k")
    await bridge.shutdown(1)


async def test_post_from_another_thread_runs_on_the_loop() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    main = threading.get_ident()

    def from_thread() -> None:
        bridge.post(lambda: done.set_result(threading.get_ident()))

    await asyncio.to_thread(from_thread)
    assert await done == main
    await bridge.shutdown(1)


async def test_cancelling_a_handle_cancels_async_work() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())
    started = threading.Event()
    stopped = threading.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    handle = bridge.run_in_background(forever)
    assert await asyncio.to_thread(started.wait, 10)
    handle.cancel()
    assert await asyncio.to_thread(stopped.wait, 10)
    await bridge.shutdown(1)


async def test_shutdown_reports_cancelled_work_and_refuses_more() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())
    bridge.feature("path", concurrency=1)
    release = threading.Event()
    errors: list[BaseException] = []
    first = bridge.try_schedule("path", 1, lambda t: release.wait(10), print, errors.append)
    second = bridge.try_schedule("path", 2, lambda t: None, print, errors.append)
    assert first is not None
    assert second is not None
    try:
        report = await bridge.shutdown(0.05)
    finally:
        release.set()
    assert report.cancelled == 2
    assert all(isinstance(e, WorkCancelled) for e in errors)
    assert len(errors) == 2
    with pytest.raises(WorkCancelled):
        await second
    with pytest.raises(BridgeClosed):
        bridge.run_in_background(lambda: 1)


async def test_methods_must_be_called_on_the_loop() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop())

    def elsewhere() -> None:
        bridge.run_in_background(lambda: 1)

    with pytest.raises(UsageError, match="event loop"):
        await asyncio.to_thread(elsewhere)
    await bridge.shutdown(1)


async def test_process_pool_flavour() -> None:
    bridge = AsyncBridge(asyncio.get_running_loop(), max_workers=1, use_processes=True)
    assert await bridge.run_in_background(functools.partial(math.factorial, 15)) == 1307674368000
    await bridge.shutdown(5)
