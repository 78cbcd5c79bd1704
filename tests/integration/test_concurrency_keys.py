"""Concurrency keys from a job's arguments: one running job per key, on every store, while
jobs of other keys run beside it."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

import conveyor
from conveyor import JobState


async def test_jobs_of_one_key_run_one_at_a_time_and_other_keys_are_not_held_up(
    app: conveyor.App,
) -> None:
    running: Counter[int] = Counter()
    peak: Counter[int] = Counter()
    order: list[tuple[int, int]] = []
    others_started = {1: asyncio.Event(), 2: asyncio.Event()}

    @app.job(concurrency_key="tenant:{tenant_id}")
    async def sync_account(ctx: conveyor.Context, tenant_id: int, n: int) -> None:
        running[tenant_id] += 1
        peak[tenant_id] = max(peak[tenant_id], running[tenant_id])
        order.append((tenant_id, n))
        if n == 0:
            # the first job of each tenant waits until the other tenant's first job started:
            # a key must not hold up jobs of other keys
            others_started[tenant_id].set()
            await asyncio.wait_for(others_started[3 - tenant_id].wait(), 10)
        running[tenant_id] -= 1

    handles = [sync_account.enqueue(tenant_id=t, n=n) for n in range(3) for t in (1, 2)]
    assert {h.job.concurrency_key for h in handles} == {"tenant:1", "tenant:2"}
    async with app.worker(concurrency=6):
        jobs = [await handle.wait_async(20) for handle in handles]
    assert all(job.state is JobState.COMPLETED for job in jobs), [j.errors for j in jobs]
    assert peak == {1: 1, 2: 1}
    for tenant in (1, 2):
        assert [n for t, n in order if t == tenant] == [0, 1, 2]  # in enqueue order


def test_a_key_is_checked_against_the_signature_and_the_arguments(app: conveyor.App) -> None:
    with pytest.raises(conveyor.InvalidJobOptions, match="names tenant, which the job does not"):

        @app.job(concurrency_key="tenant:{tenant}")
        async def misspelt(ctx: conveyor.Context, tenant_id: int) -> None: ...

    @app.job(name="loose", validate=False, concurrency_key="tenant:{tenant_id}")
    async def loose(ctx: conveyor.Context, **args: Any) -> None: ...

    with pytest.raises(conveyor.InvalidArguments, match=r"needs the argument.* tenant_id"):
        loose.enqueue(other=1)
    with pytest.raises(conveyor.InvalidJobOptions, match="must name one argument"):
        loose.with_options(concurrency_key="{tenant_id!r}")
    by_function = loose.with_options(concurrency_key=lambda args: f"region:{args['region']}")
    assert by_function.enqueue(region="eu").job.concurrency_key == "region:eu"
    fixed = loose.with_options(concurrency_key="one-lane").enqueue(region="eu")
    assert fixed.job.concurrency_key == "one-lane"


async def test_key_concurrency_lets_that_many_run_at_once_and_never_more(
    app: conveyor.App,
) -> None:
    running: Counter[int] = Counter()
    peak: Counter[int] = Counter()
    both_running = asyncio.Event()

    @app.job(concurrency_key="tenant:{tenant_id}", key_concurrency=2)
    async def sync_account(ctx: conveyor.Context, tenant_id: int, n: int) -> None:
        running[tenant_id] += 1
        peak[tenant_id] = max(peak[tenant_id], running[tenant_id])
        if tenant_id == 1 and running[1] == 2:
            both_running.set()
        if tenant_id == 1 and n < 2:
            # the first two jobs of tenant 1 wait for each other: two must run at once
            await asyncio.wait_for(both_running.wait(), 10)
        await asyncio.sleep(0)
        running[tenant_id] -= 1

    handles = [sync_account.enqueue(tenant_id=t, n=n) for n in range(6) for t in (1, 2)]
    assert {h.job.key_concurrency for h in handles} == {2}
    async with app.worker(concurrency=8):
        jobs = [await handle.wait_async(20) for handle in handles]
    assert all(job.state is JobState.COMPLETED for job in jobs), [j.errors for j in jobs]
    assert peak[1] == 2 and peak[2] <= 2  # tenant 2 may not overlap: its jobs are short


def test_key_concurrency_is_checked(app: conveyor.App) -> None:
    with pytest.raises(conveyor.InvalidJobOptions, match="give a concurrency_key too"):

        @app.job(key_concurrency=2)
        async def keyless(ctx: conveyor.Context) -> None: ...

    for wrong in (0, True, 10_001, "2"):
        with pytest.raises(conveyor.InvalidJobOptions, match="key_concurrency must be"):

            @app.job(name=f"wrong-{wrong!r}", concurrency_key="k", key_concurrency=wrong)  # type: ignore[arg-type]
            async def wrong_limit(ctx: conveyor.Context) -> None: ...

    @app.job(concurrency_key="k", key_concurrency=3)
    async def wide(ctx: conveyor.Context) -> None: ...

    assert wide.with_options(key_concurrency=5).enqueue().job.key_concurrency == 5
    assert wide.with_options(concurrency_key=None).enqueue().job.key_concurrency == 1


def test_an_enqueue_is_checked_as_a_definition_is(app: conveyor.App) -> None:
    @app.job
    async def plain(ctx: conveyor.Context, tenant: str) -> None: ...

    with pytest.raises(conveyor.InvalidJobOptions, match="give a concurrency_key too"):
        plain.with_options(key_concurrency=2).enqueue(tenant="a")
    with pytest.raises(conveyor.InvalidJobOptions, match="give a rate_limit too"):
        app.enqueue("plain", {"tenant": "a"}, rate_key="t:{tenant}")

    @app.job(rate_limit="5/s", rate_key="t:{tenant}")
    async def rated(ctx: conveyor.Context, tenant: str) -> None: ...

    assert rated.enqueue(tenant="a").job.rate_key == "t:a"
    unrated = rated.with_options(rate_limit=None).enqueue(tenant="a").job
    assert (unrated.rate_limit, unrated.rate_key) == (None, None)
    assert app.jobs.require(unrated.id).rate_key is None
    assert app.jobs.counts().by_state["pending"] == 2  # the refused enqueues stored nothing
