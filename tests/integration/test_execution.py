"""Jobs run, return results, retry, time out and fail as their options say."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import conveyor
from conveyor import JobState
from helpers import wait_until_async


async def test_async_and_sync_jobs_store_their_results(app: conveyor.App) -> None:
    threads: list[str] = []

    @app.job
    async def add(ctx: conveyor.Context, a: int, b: int) -> int:
        return a + b

    @app.job
    def shout(ctx: conveyor.Context, word: str) -> dict[str, str]:
        threads.append(threading.current_thread().name)
        return {"word": word.upper()}

    first, second = add.enqueue(a=2, b=3), shout.enqueue(word="hi")
    async with app.worker():
        assert (await first.wait_async(10)).result == 5
        done = await second.wait_async(10)
    assert done.state is JobState.COMPLETED
    assert done.result == {"word": "HI"}
    assert done.attempt == 1
    assert done.started_at is not None
    assert done.finished_at is not None
    assert threads
    assert threads[0] != threading.main_thread().name


async def test_class_based_handler_runs_under_its_type_name(app: conveyor.App) -> None:
    @app.job(name="mail.send")
    class SendMail:
        def run(self, ctx: conveyor.Context, to: str) -> str:
            return f"sent to {to}"

    handle = app.enqueue("mail.send", {"to": "ada@example.com"}, metadata={"tenant": "t1"})
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.result == "sent to ada@example.com"
    assert job.metadata == {"tenant": "t1"}


async def test_failures_retry_with_backoff_and_keep_every_error(app: conveyor.App) -> None:
    calls = 0

    @app.job(max_attempts=3, backoff=conveyor.Backoff(base=0.05, jitter=0.0))
    def flaky(ctx: conveyor.Context) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(f"boom {calls}")
        return "ok"

    handle = flaky.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.COMPLETED
    assert job.attempt == 3
    assert [e.message for e in job.errors] == ["RuntimeError: boom 1", "RuntimeError: boom 2"]
    assert all("Traceback" in e.traceback and "flaky" in e.traceback for e in job.errors)
    assert [e.attempt for e in job.errors] == [1, 2]


async def test_attempts_exhausted_ends_failed(app: conveyor.App) -> None:
    @app.job(max_attempts=2, backoff=conveyor.Backoff(base=0.01))
    async def broken(ctx: conveyor.Context) -> None:
        raise ValueError("always")

    handle = broken.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED
    assert job.attempt == 2
    assert len(job.errors) == 2


async def test_fail_stops_at_once_and_retry_asks_for_delay(app: conveyor.App) -> None:
    seen: list[float] = []

    @app.job(max_attempts=5)
    async def refuses(ctx: conveyor.Context) -> None:
        raise conveyor.Fail("bad input")

    @app.job(max_attempts=5)
    async def later(ctx: conveyor.Context) -> str:
        seen.append(time.monotonic())
        if len(seen) == 1:
            raise conveyor.Retry(delay=0.3)
        return "second time"

    failed, retried = refuses.enqueue(), later.enqueue()
    async with app.worker():
        failed_job = await failed.wait_async(10)
        retried_job = await retried.wait_async(10)
    assert failed_job.state is JobState.FAILED
    assert failed_job.attempt == 1
    assert failed_job.errors[-1].message == "bad input"
    assert retried_job.state is JobState.COMPLETED
    assert retried_job.attempt == 2
    assert seen[1] - seen[0] >= 0.25  # the requested delay was honoured


async def test_async_timeout_cancels_the_job(app: conveyor.App) -> None:
    cancelled = asyncio.Event()

    @app.job(timeout=0.2, max_attempts=1)
    async def slow(ctx: conveyor.Context) -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    handle = slow.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED
    assert job.errors[-1].kind == "timeout"
    assert "timed out after 0.2 s" in job.errors[-1].message
    assert cancelled.is_set()


async def test_sync_timeout_fails_attempt_and_sets_cancel_requested(app: conveyor.App) -> None:
    saw_cancel = threading.Event()

    @app.job(max_attempts=1)
    def stubborn(ctx: conveyor.Context) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if ctx.cancel_requested:
                saw_cancel.set()
                return
            time.sleep(0.01)

    handle = stubborn.with_options(timeout=0.2).enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
        await wait_until_async(saw_cancel.is_set, what="the thread to see cancel_requested")
    assert job.state is JobState.FAILED
    assert job.errors[-1].kind == "timeout"


async def test_unencodable_result_fails_the_attempt_clearly(app: conveyor.App) -> None:
    @app.job(max_attempts=1)
    async def returns_object(ctx: conveyor.Context) -> object:
        return {"when": object()}

    handle = returns_object.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED
    assert "cannot be stored as JSON" in job.errors[-1].message
    assert "result.when" in job.errors[-1].message


async def test_unknown_job_in_worker_fails_and_stays_retryable(app: conveyor.App) -> None:
    app.declare("not_here", max_attempts=1)
    handle = app.enqueue("not_here", {"x": 1})
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED
    assert "no job named 'not_here' is registered in this worker" in job.errors[-1].message

    @app.job(name="not_here")
    async def now_here(ctx: conveyor.Context, x: int) -> int:
        return x

    app.jobs.retry(job.id)
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.COMPLETED
    assert job.result == 1
    assert len(job.errors) == 1  # the earlier error is kept


async def test_middleware_wraps_execution(app: conveyor.App) -> None:
    order: list[str] = []

    @app.use
    async def outer(ctx: conveyor.Context, call_next):  # type: ignore[no-untyped-def]
        order.append("before")
        result = await call_next()
        order.append("after")
        return {"wrapped": result}

    @app.job
    async def inner(ctx: conveyor.Context) -> int:
        order.append("job")
        return 1

    handle = inner.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert order == ["before", "job", "after"]
    assert job.result == {"wrapped": 1}


async def test_priority_then_fifo_order(app: conveyor.App) -> None:
    ran: list[str] = []

    @app.job
    async def mark(ctx: conveyor.Context, label: str) -> None:
        ran.append(label)

    mark.enqueue(label="low-1")
    mark.with_options(priority=5).enqueue(label="high-1")
    mark.enqueue(label="low-2")
    mark.with_options(priority=5).enqueue(label="high-2")
    async with app.worker(concurrency=1):
        await wait_until_async(lambda: len(ran) == 4)
    assert ran == ["high-1", "high-2", "low-1", "low-2"]


async def test_sync_job_raising_stopiteration_fails_instead_of_hanging(app: conveyor.App) -> None:
    @app.job(max_attempts=1)
    def exhausted(ctx: conveyor.Context) -> None:
        next(iter([]))

    handle = exhausted.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED
    assert "StopIteration" in job.errors[-1].message


async def test_sync_job_wrappers_run_on_the_jobs_thread_around_each_run(
    app: conveyor.App,
) -> None:
    seen: list[tuple[str, int]] = []

    @app.around_sync_jobs
    @contextmanager
    def around() -> Iterator[None]:
        seen.append(("enter", threading.get_ident()))
        try:
            yield
        finally:
            seen.append(("exit", threading.get_ident()))

    @app.job
    def plain(ctx: conveyor.Context) -> int:
        seen.append(("run", threading.get_ident()))
        return threading.get_ident()

    @app.job
    async def on_loop(ctx: conveyor.Context) -> None:
        seen.append(("async", threading.get_ident()))

    async with app.worker(concurrency=1):
        thread = (await plain.enqueue().wait_async(10)).result
        await on_loop.enqueue().wait_async(10)
    assert seen[:3] == [("enter", thread), ("run", thread), ("exit", thread)]
    assert [kind for kind, _ in seen[3:]] == ["async"]  # async jobs are not wrapped
