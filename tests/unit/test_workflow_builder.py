"""Building workflows: names, chains and groups, and what is refused before anything is stored."""

from __future__ import annotations

import asyncio

import pytest

import conveyor
from conveyor import InvalidJobOptions, InvalidWorkflow, UsageError


@pytest.fixture
def app() -> conveyor.App:
    app = conveyor.App("memory://")

    @app.job
    def step(ctx: conveyor.Context, n: int = 0) -> int:
        return n + sum(v or 0 for v in ctx.parent_results().values())

    return app


def test_step_names_default_to_the_job_name_numbered_when_repeated(app: conveyor.App) -> None:
    wf = app.workflow("w")
    names = [wf.add(app.request("step")).name for _ in range(3)]
    named = wf.add(app.request("step"), name="last")

    assert names == ["step", "step-2", "step-3"] and named.name == "last"
    with pytest.raises(InvalidWorkflow, match="already has a step named 'last'"):
        wf.add(app.request("step"), name="last")


def test_the_same_request_added_twice_becomes_two_jobs(app: conveyor.App) -> None:
    wf = app.workflow("w")
    request = app.request("step")
    first, second = wf.add(request), wf.add(request)

    assert first.id != second.id
    assert len({job.id for job in wf.requests()}) == 2


def test_chain_and_group_build_the_edges(app: conveyor.App) -> None:
    chained = conveyor.chain(*(app.request("step", {"n": n}) for n in range(3)))
    grouped = conveyor.group(
        *(app.request("step", {"n": n}) for n in range(3)), then=app.request("step")
    )

    a, b, c = chained.requests()
    assert (a.after, b.after, c.after) == ((), (a.id,), (b.id,))
    *members, then = grouped.requests()
    assert all(m.after == () for m in members) and then.after == tuple(m.id for m in members)
    with pytest.raises(UsageError, match=r"app\.enqueue_workflow"):
        chained.enqueue()

    handle = app.enqueue_workflow(chained)
    app.testing.drain()
    assert handle.steps["step-3"].refresh().result == 0 + 1 + 2  # n + the parent's result


def test_a_step_of_another_workflow_is_refused(app: conveyor.App) -> None:
    one, other = app.workflow("one"), app.workflow("other")
    foreign = one.add(app.request("step"))

    with pytest.raises(InvalidWorkflow, match="belongs to workflow 'one'"):
        other.add(app.request("step"), after=[foreign])


def test_what_is_refused_before_anything_is_stored(app: conveyor.App) -> None:
    with pytest.raises(InvalidWorkflow, match="has no steps"):
        app.workflow("empty").enqueue()
    with pytest.raises(InvalidWorkflow, match="job request"):
        app.workflow("w").add("step")  # type: ignore[arg-type]
    with pytest.raises(InvalidJobOptions, match="on_parent_failure"):
        app.workflow("w").add(app.request("step"), on_parent_failure="maybe")
    with pytest.raises(InvalidJobOptions, match="list of job ids"):
        app.request("step", after="abc")  # type: ignore[arg-type]
    wf = app.workflow("w")
    wf.add(app.request("step", unique_key="k"))
    with pytest.raises(InvalidJobOptions, match="unique_key"):
        wf.enqueue()
    unknown = app.request("step", after=["01a24259-7398-7efe-ac87-6e76a68b7474"])
    with pytest.raises(InvalidWorkflow, match="which is not stored"):
        app.enqueue_many([unknown])
    assert app.jobs.counts().by_state == {}


def test_a_plain_job_waits_on_handles_and_ids(app: conveyor.App) -> None:
    @app.job
    def total(ctx: conveyor.Context, n: int) -> int:
        return n + sum(ctx.parent_results().values())

    first = app.enqueue("step", {"n": 1})
    second = app.enqueue("step", {"n": 2})

    handle = total.with_options(after=[first, second.id]).enqueue(n=10)

    assert handle.job.state is conveyor.JobState.WAITING
    app.testing.drain()
    assert handle.refresh().result == 10 + 1 + 2


def test_enqueue_async_and_wait(app: conveyor.App) -> None:
    async def main() -> conveyor.StoredWorkflow:
        wf = app.workflow("w")
        wf.add(app.request("step", {"n": 5}))
        handle = await wf.enqueue_async()
        await asyncio.to_thread(app.testing.drain)
        return await handle.wait_async(timeout=5)

    assert asyncio.run(main()).state == "completed"
