"""Rate limits through the App and a worker, on every store: a queue's rate and a job's rate
per key hold (never more starts in any window than the rate), a job over the limit waits and
runs when the window allows, and bad rates are refused with a clear error (issue 16, point 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from integration_support import FAST, STORES, store


@pytest.fixture(params=STORES)
def patient_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """An App whose worker polls only every 60 s: anything sooner is a wake-up."""
    with store(request.param, tmp_path) as url:
        application = conveyor.App(url, **{**FAST, "poll_interval": 60.0})
        yield application
        application.close()


def most_in_any_window(starts: list[datetime], window: float) -> int:
    """The most starts inside one window of `window` seconds (half-open)."""
    starts = sorted(starts)
    span = timedelta(seconds=window)
    return max(
        (sum(1 for s in starts[i:] if s < first + span) for i, first in enumerate(starts)),
        default=0,
    )


async def test_a_queue_rate_spreads_its_jobs_over_windows(app: conveyor.App) -> None:
    app.queue("partner-api", rate_limit="4/s")

    @app.job(queue="partner-api")
    async def call(ctx: conveyor.Context, n: int) -> None: ...

    @app.job
    async def other(ctx: conveyor.Context) -> None: ...

    handles = [call.enqueue(n=n) for n in range(10)]
    free = other.enqueue()
    async with app.worker(concurrency=10):
        done = await free.wait_async(10)
        jobs = [await handle.wait_async(20) for handle in handles]
    assert done.state is JobState.COMPLETED
    assert all(job.state is JobState.COMPLETED for job in jobs)
    starts = [job.started_at for job in jobs if job.started_at is not None]
    assert most_in_any_window(starts, 1.0) <= 4
    # the ten took at least two full windows, and the worker woke when each opened
    assert max(starts) - min(starts) >= timedelta(seconds=2)
    assert max(starts) - min(starts) < timedelta(seconds=6)


async def test_a_worker_sleeps_until_the_window_allows_the_next_start(
    patient_app: conveyor.App,
) -> None:
    app = patient_app
    app.queue("partner-api", rate_limit="3/s")

    @app.job(queue="partner-api")
    async def call(ctx: conveyor.Context, n: int) -> None: ...

    handles = [call.enqueue(n=n) for n in range(7)]
    began = time.monotonic()
    async with app.worker(concurrency=10):
        jobs = [await handle.wait_async(15) for handle in handles]
    # three windows (3 + 3 + 1), each opened by the claim's wake-up time, not by the poll
    assert all(job.state is JobState.COMPLETED for job in jobs)
    assert 2.0 <= time.monotonic() - began < 10


async def test_a_job_rate_counts_per_rate_key(app: conveyor.App) -> None:
    @app.job(rate_limit="3/s", rate_key="tenant:{tenant}")
    async def sync(ctx: conveyor.Context, tenant: int) -> None: ...

    handles = [sync.enqueue(tenant=t) for t in (1, 2) for _ in range(5)]
    assert handles[0].job.rate_key == "tenant:1" and handles[0].job.rate_limit == "3/s"
    async with app.worker(concurrency=10):
        jobs = [await handle.wait_async(20) for handle in handles]
    for tenant in ("tenant:1", "tenant:2"):
        starts = [j.started_at for j in jobs if j.rate_key == tenant and j.started_at]
        assert len(starts) == 5 and most_in_any_window(starts, 1.0) <= 3


def test_bad_rates_are_refused_with_a_clear_error(app: conveyor.App) -> None:
    for wrong in ("10", "10/d", "0/s", "-1/s", 10, "ten/m"):
        with pytest.raises(conveyor.InvalidQueueSettings, match="rate_limit"):
            app.queue("q", rate_limit=wrong)  # type: ignore[arg-type]
        with pytest.raises(conveyor.InvalidJobOptions, match="rate_limit"):

            @app.job(name=f"j{wrong!r}", rate_limit=wrong)  # type: ignore[arg-type]
            async def job(ctx: conveyor.Context) -> None: ...

    with pytest.raises(conveyor.InvalidJobOptions, match="give a rate_limit too"):

        @app.job(rate_key="tenant:{tenant}")
        async def keyed(ctx: conveyor.Context, tenant: int) -> None: ...

    with pytest.raises(conveyor.InvalidJobOptions, match="names nope, which the job does not take"):

        @app.job(rate_limit="1/s", rate_key="x:{nope}")
        async def misspelt(ctx: conveyor.Context, tenant: int) -> None: ...

    @app.job(rate_limit=" 100 / m ")
    async def spaced(ctx: conveyor.Context) -> None: ...

    job = spaced.enqueue().job
    assert job.rate_limit == "100/m" and job.rate_key == "spaced"  # the job's name by default
