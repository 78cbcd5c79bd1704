"""Claiming ahead: a worker holds short jobs ready for its next free slot, never runs more
than its concurrency, holds nothing ready for long jobs, and loses no job it held ready; with
claims that quick, a retry's attempts overlap their acknowledgements and are each reported."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from conveyor.backends.records import Outcome
from conveyor.model.job import Job
from helpers import wait_until_async
from integration_support import FAST, STORES, store

# Stores where a claim is a round trip (memory claims cost about as much as a no-op job, so
# its plan rarely holds anything ready: the plan's own rule is unit-tested).
ROUND_TRIP_STORES = ["sqlite", "postgres"]


def _app(kind: str, tmp_path: Path, **settings: object) -> Iterator[conveyor.App]:
    with store(kind, tmp_path) as url:
        application = conveyor.App(url, **{**FAST, **settings})
        yield application
        application.close()


@pytest.fixture(params=ROUND_TRIP_STORES)
def round_trip_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """A fresh App on a store whose claims are round trips."""
    yield from _app(request.param, tmp_path)


def _record_claims(app: conveyor.App) -> list[tuple[int, int]]:
    claims: list[tuple[int, int]] = []
    app.hooks.on_claim(lambda claimed, requested: claims.append((claimed, requested)))
    return claims


async def test_short_jobs_are_claimed_ahead_but_never_run_beyond_concurrency(
    round_trip_app: conveyor.App,
) -> None:
    app = round_trip_app
    running, most, ran = 0, 0, []

    @app.job
    async def tick(ctx: conveyor.Context, n: int) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0)
        ran.append(n)
        running -= 1

    claims = _record_claims(app)
    handles = app.enqueue_many([tick.request(n=n) for n in range(300)])
    async with app.worker(concurrency=3):
        for handle in handles:
            assert (await handle.wait_async(30)).state is JobState.COMPLETED
    assert sorted(ran) == list(range(300))
    assert most <= 3
    assert max(requested for _, requested in claims) > 3, claims


@pytest.mark.parametrize("kind", STORES)
async def test_jobs_longer_than_a_claim_are_not_claimed_ahead(kind: str, tmp_path: Path) -> None:
    for app in _app(kind, tmp_path):

        @app.job
        async def slow(ctx: conveyor.Context) -> None:
            await asyncio.sleep(0.1)

        claims = _record_claims(app)
        handles = app.enqueue_many([slow.request() for _ in range(6)])
        async with app.worker(concurrency=2):
            for handle in handles:
                assert (await handle.wait_async(30)).state is JobState.COMPLETED
        assert claims
        assert all(requested <= 2 for _, requested in claims), claims


async def test_prefetch_zero_claims_only_for_free_slots(tmp_path: Path) -> None:
    for app in _app("sqlite", tmp_path, prefetch=0):

        @app.job
        async def tick(ctx: conveyor.Context) -> None:
            return None

        claims = _record_claims(app)
        handles = app.enqueue_many([tick.request() for _ in range(100)])
        async with app.worker(concurrency=3):
            for handle in handles:
                await handle.wait_async(30)
        assert all(requested <= 3 for _, requested in claims), claims


class HeldReady:
    """A job that blocks and one behind it; the worker, trained on short jobs first, takes
    both in one claim and holds the second ready. Define before the worker starts."""

    def __init__(self, app: conveyor.App) -> None:
        self.app, self.gate, self.ran = app, asyncio.Event(), []

        @app.job
        async def quick(ctx: conveyor.Context) -> None:
            return None

        @app.job
        async def blocker(ctx: conveyor.Context) -> None:
            self.ran.append("blocker")
            await self.gate.wait()

        @app.job
        async def behind(ctx: conveyor.Context) -> None:
            self.ran.append("behind")

        self.quick, self.blocker, self.behind = quick, blocker, behind

    async def start(self) -> tuple[conveyor.JobHandle, conveyor.JobHandle]:
        """Train, then enqueue both and wait for the claim that took them together."""
        for handle in self.app.enqueue_many([self.quick.request() for _ in range(30)]):
            await handle.wait_async(30)
        claims = _record_claims(self.app)
        first, second = self.app.enqueue_many([self.blocker.request(), self.behind.request()])
        both = lambda: any(claimed == 2 for claimed, _ in claims)  # noqa: E731
        await wait_until_async(both, what="one claim of both jobs")
        return first, second


async def test_a_job_held_ready_can_be_cancelled_and_never_runs(
    round_trip_app: conveyor.App,
) -> None:
    app = round_trip_app
    held = HeldReady(app)
    async with app.worker(concurrency=1):
        blocked, behind = await held.start()
        app.jobs.cancel(behind.id)
        await wait_until_async(lambda: _state(app, behind) is JobState.CANCELLED, what="cancel")
        held.gate.set()
        assert (await blocked.wait_async(30)).state is JobState.COMPLETED
    assert held.ran == ["blocker"]


async def test_jobs_held_ready_behind_a_long_job_are_handed_back_for_others(
    round_trip_app: conveyor.App,
) -> None:
    app = round_trip_app
    held = HeldReady(app)
    async with app.worker(concurrency=1):
        _, behind = await held.start()
        # the blocker keeps the only slot: the job behind it goes back to the queue, its
        # attempt given back, where another worker could take it
        await wait_until_async(lambda: _state(app, behind) is JobState.PENDING, what="hand-back")
        held.gate.set()
        done = await behind.wait_async(30)
    assert done.state is JobState.COMPLETED
    assert done.attempt == 1
    assert held.ran == ["blocker", "behind"]


def _state(app: conveyor.App, handle: conveyor.JobHandle) -> JobState | None:
    job = app.jobs.get(handle.id)
    return None if job is None else job.state


@pytest.fixture
def sqlite_app(tmp_path: Path) -> Iterator[conveyor.App]:
    """A fresh App on SQLite (a store with an I/O thread, where acknowledgements overlap)."""
    yield from _app("sqlite", tmp_path)


async def test_a_retry_that_ends_before_its_first_attempt_is_acknowledged_is_still_reported(
    sqlite_app: conveyor.App,
) -> None:
    """Attempt 2 of a retried job can end while the worker is still handling the written
    acknowledgement of attempt 1; each attempt's hook must still fire once."""
    app = sqlite_app
    events: list[tuple[str, int]] = []
    app.on("succeeded")(lambda event: events.append(("succeeded", event.job.attempt)))
    app.on("retrying")(lambda event: events.append(("retrying", event.job.attempt)))

    @app.job(max_attempts=2)
    async def flaky(ctx: conveyor.Context) -> None:
        if ctx.job.attempt == 1:
            raise conveyor.Retry(delay=0)

    worker = app.worker(concurrency=2)
    finish = app.backend.finish
    second_recorded = threading.Event()

    def finish_then_hold(outcomes: list[Outcome]) -> list[str]:
        dropped = finish(outcomes)
        if any(o.attempt == 1 for o in outcomes):
            # attempt 1 is stored as pending: let attempt 2 run and end before returning
            assert second_recorded.wait(10), "attempt 2 never ended"
        return dropped

    app.backend.finish = finish_then_hold  # type: ignore[method-assign]
    original_record = worker._record

    def record(job: Job, outcome: Outcome) -> None:
        original_record(job, outcome)
        if outcome.attempt == 2:
            second_recorded.set()

    worker._record = record  # type: ignore[method-assign]
    handle = flaky.enqueue()
    async with worker:
        assert (await handle.wait_async(30)).state is JobState.COMPLETED
        await wait_until_async(lambda: len(events) == 2, what="both attempts' hooks")
    assert events == [("retrying", 1), ("succeeded", 2)]
