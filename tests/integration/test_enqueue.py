"""Enqueueing: by function and by name, sync and async, delays, unique keys, bad input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

import conveyor
from conveyor import JobState
from helpers import nonzero, wait_until_async


def _define(app: conveyor.App) -> conveyor.JobFunction:  # type: ignore[type-arg]
    @app.job(queue="emails", priority=3, max_attempts=4)
    async def send_welcome(ctx: conveyor.Context, user_id: int) -> int:
        return user_id

    return send_welcome


async def test_enqueue_from_sync_and_async_code(app: conveyor.App) -> None:
    send = _define(app)
    sync_handle = send.enqueue(user_id=1)
    async_handle = await send.enqueue_async(user_id=2)
    by_name = await app.enqueue_async("send_welcome", {"user_id": 3})
    for handle in (sync_handle, async_handle, by_name):
        assert handle.created
        assert handle.job.queue == "emails"
        assert handle.job.priority == 3
        assert handle.job.max_attempts == 4
        assert handle.job.state is JobState.PENDING
    async with app.worker():
        results = [(await h.wait_async(10)).result for h in (sync_handle, async_handle, by_name)]
    assert results == [1, 2, 3]


async def test_bulk_enqueue_keeps_order_in_one_call(app: conveyor.App) -> None:
    send = _define(app)
    handles = await app.enqueue_many_async([send.request(user_id=i) for i in range(50)])
    assert [h.job.args["user_id"] for h in handles] == list(range(50))
    assert len({h.id for h in handles}) == 50
    assert app.jobs.counts().by_state.get("pending") == 50


def test_delay_and_run_at_schedule_for_later(app: conveyor.App) -> None:
    send = _define(app)
    delayed = send.with_options(delay=3600).enqueue(user_id=1)
    when = datetime.now(UTC) + timedelta(days=1)
    at = send.with_options(run_at=when).enqueue(user_id=2)
    assert delayed.job.state is JobState.SCHEDULED
    assert delayed.job.run_at > datetime.now(UTC) + timedelta(minutes=59)
    assert at.job.run_at == when
    assert at.job.state is JobState.SCHEDULED


async def test_delayed_job_runs_when_due(app: conveyor.App) -> None:
    send = _define(app)
    handle = send.with_options(delay=0.3).enqueue(user_id=9)
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.result == 9
    assert job.started_at is not None
    assert job.started_at >= handle.job.run_at


def test_unique_key_returns_the_existing_job_and_says_so(app: conveyor.App) -> None:
    send = _define(app)
    first = send.with_options(unique_key="welcome:42").enqueue(user_id=42)
    second = send.with_options(unique_key="welcome:42").enqueue(user_id=42)
    assert first.created
    assert not second.created
    assert second.id == first.id
    assert app.jobs.counts().by_state.get("pending") == 1
    app.jobs.cancel(first.id)
    third = send.with_options(unique_key="welcome:42").enqueue(user_id=42)
    assert third.created
    assert third.id != first.id


def test_unknown_name_is_refused_and_nothing_is_stored(app: conveyor.App) -> None:
    _define(app)
    with pytest.raises(conveyor.UnknownJobError, match="no job named 'send_welcom'"):
        app.enqueue("send_welcom", {"user_id": 1})
    assert nonzero(app.jobs.counts().by_state) == {}


def test_unserialisable_arguments_name_the_path(app: conveyor.App) -> None:
    @app.job(validate=False)
    def unchecked(ctx: conveyor.Context, **args: object) -> None:
        pass

    with pytest.raises(conveyor.ArgumentsNotSerializable, match=r"args\.user_id \(a datetime\)"):
        unchecked.enqueue(user_id=datetime.now(UTC))
    with pytest.raises(conveyor.ArgumentsNotSerializable, match=r"args\.user\.tags\[1\] \(a set\)"):
        app.enqueue("unchecked", {"user": {"tags": ["a", {1}]}})
    assert nonzero(app.jobs.counts().by_state) == {}


def test_arguments_that_do_not_fit_the_signature_are_refused(app: conveyor.App) -> None:
    send = _define(app)
    with pytest.raises(conveyor.InvalidArguments, match="'user_id' expects int, got datetime"):
        send.enqueue(user_id=datetime.now(UTC))  # type: ignore[arg-type]
    with pytest.raises(conveyor.InvalidArguments, match="unknown argument 'user'"):
        app.enqueue("send_welcome", {"user": {"tags": ["a", {1}]}})
    assert nonzero(app.jobs.counts().by_state) == {}


def test_bad_options_are_refused_at_the_call(app: conveyor.App) -> None:
    send = _define(app)
    with pytest.raises(conveyor.ConfigurationError, match="unknown job option"):
        send.with_options(dealy=5)
    with pytest.raises(conveyor.ConfigurationError, match="timezone-aware"):
        send.with_options(run_at=datetime(2030, 1, 1))
    with pytest.raises(conveyor.ConfigurationError, match="unknown setting"):
        conveyor.App("memory://", concurrancy=3)
    with pytest.raises(conveyor.ConfigurationError, match="unsupported store URL"):
        _ = conveyor.App("mysql://x").backend


def test_queue_management_through_app_jobs(app: conveyor.App) -> None:
    send = _define(app)
    handles = [send.enqueue(user_id=i) for i in range(5)]
    page = app.jobs.list(state="pending", name="send_welcome", per_page=2, page=2)
    assert page.total == 5
    assert len(page.jobs) == 2
    assert [j.id for j in page.jobs] == [handles[2].id, handles[1].id]  # newest first
    assert {q: nonzero(c) for q, c in app.jobs.counts().by_queue.items()} == {
        "emails": {"pending": 5}
    }
    app.jobs.delete(handles[0].id)
    assert app.jobs.get(handles[0].id) is None
    with pytest.raises(conveyor.JobNotFound):
        app.jobs.cancel("no-such-id")
    with pytest.raises(conveyor.ConveyorError, match="only failed or cancelled"):
        app.jobs.retry(handles[1].id)
    with pytest.raises(conveyor.ConveyorError, match="unknown job state"):
        app.jobs.list(state="done")


async def test_memory_store_refuses_when_full() -> None:
    app = conveyor.App("memory://", max_queue_size=2, queue_full="refuse")
    send = _define(app)
    send.enqueue(user_id=1)
    send.enqueue(user_id=2)
    with pytest.raises(conveyor.QueueFull):
        send.enqueue(user_id=3)
    assert nonzero(app.jobs.counts().by_state) == {"pending": 2}


async def test_memory_store_waits_for_room_when_full() -> None:
    app = conveyor.App("memory://", max_queue_size=1, queue_full="wait", queue_full_timeout=10)
    send = _define(app)
    send.enqueue(user_id=1)
    waiting = asyncio.ensure_future(send.enqueue_async(user_id=2))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # backpressure: the producer waits
    async with app.worker():
        second = await asyncio.wait_for(waiting, 10)
        assert (await second.wait_async(10)).result == 2


async def test_memory_store_wait_gives_up_after_its_timeout() -> None:
    app = conveyor.App("memory://", max_queue_size=1, queue_full="wait", queue_full_timeout=0.1)
    send = _define(app)
    send.enqueue(user_id=1)
    with pytest.raises(conveyor.QueueFull):
        await send.enqueue_async(user_id=2)


async def test_expired_lease_is_rescued_and_the_attempt_counted(app: conveyor.App) -> None:
    """A worker that died mid-job (simulated: claimed, then silent) loses the job to others."""
    send = _define(app)
    handle = send.enqueue(user_id=5)
    from conveyor.backends.records import ClaimRequest

    now = datetime.now(UTC)
    claimed = app.backend.claim(ClaimRequest("dead-worker", 1, now, now + timedelta(seconds=0.2)))
    assert [j.id for j in claimed.jobs] == [handle.id]
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.COMPLETED
    assert job.attempt == 2
    assert job.errors[0].kind == "lost"


async def test_sweeper_prunes_finished_jobs_after_retention() -> None:
    ahead = [timedelta(0)]  # the app's clock runs this far ahead of the real one
    app = conveyor.App(
        "memory://", retention_completed=0.0, retention_failed=3600.0, sweep_interval=0.05,
        prune_interval=0.05, clock=lambda: datetime.now(UTC) + ahead[0],
    )  # fmt: skip
    send = _define(app)

    @app.job(max_attempts=1)
    async def broken(ctx: conveyor.Context) -> None:
        raise ValueError("x")

    done, failed = send.enqueue(user_id=1), broken.enqueue()
    async with app.worker():
        await done.wait_async(10)
        # a job is pruned only once its minute is rolled up into the history, which waits
        # for the minute to close and ROLL_UP_DELAY to pass
        assert app.jobs.get(done.id) is not None
        ahead[0] = timedelta(minutes=3)
        await wait_until_async(lambda: app.jobs.get(done.id) is None, what="pruning")
        assert failed.refresh().state is JobState.FAILED  # failed jobs are kept longer
        assert sum(p.completed for p in app.jobs.history("1h")) == 1
