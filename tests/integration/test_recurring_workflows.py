"""Recurring workflows: each tick stores the workflow a factory builds, overlap applies to
whole workflows, and a retried tick never stores it twice."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from integration.test_recurring import Clock, scheduler_of
from integration_support import FAST, STORES, store


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store(request.param, tmp_path) as store_url:
        yield store_url


def make_app(url: str, clock: Clock, overlap: str) -> conveyor.App:
    app = conveyor.App(url, clock=clock, **FAST)

    @app.job(queue="steps")
    def fetch(ctx: conveyor.Context, day: str) -> str:
        return day

    @app.job(queue="steps")
    def publish(ctx: conveyor.Context) -> str:
        return f"published {ctx.parent_results()['fetch']}"

    def nightly(day: str) -> conveyor.Workflow:
        wf = app.workflow("nightly")
        first = wf.add(fetch.request(day=day))
        wf.add(publish.request(), after=[first])
        return wf

    app.recurring("nightly", "0 3 * * *", workflow=nightly, kwargs={"day": "auto"}, overlap=overlap)  # type: ignore[arg-type]
    return app


def fire_and_launch(app: conveyor.App, clock: Clock) -> None:
    """One tick: the scheduler fires the run's job, which stores the workflow (whose steps
    wait in the paused queue "steps" until `run_steps`)."""
    app.jobs.pause_queue("steps", create=True)
    clock.advance(days=1)
    fired, _ = scheduler_of(app).tick()
    assert len(fired) == 1
    app.testing.drain()


def run_steps(app: conveyor.App) -> None:
    app.jobs.resume_queue("steps")
    app.testing.drain()


def test_each_tick_stores_and_runs_the_workflow(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock, "skip")
    scheduler_of(app).sync()

    fire_and_launch(app, clock)
    [summary] = app.workflows.list().workflows
    run_steps(app)

    stored = app.workflows.get(summary.id)
    assert stored.state == "completed"
    assert stored.step("publish").result == "published auto"
    launcher = app.jobs.require(summary.id)  # the run's job id is the workflow's id
    assert launcher.recurring_name == "nightly"
    assert launcher.result == {"workflow_id": summary.id, "steps": 2}


def test_skip_stores_nothing_while_an_earlier_run_is_unfinished(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock, "skip")
    scheduler_of(app).sync()
    fire_and_launch(app, clock)
    fire_and_launch(app, clock)  # the first workflow has not run yet

    assert len(app.workflows.list().workflows) == 1
    skipped = app.jobs.list(name="workflow:nightly", state="completed").jobs
    assert any(job.result.get("skipped") for job in skipped)
    run_steps(app)
    fire_and_launch(app, clock)  # the first one finished: the next tick runs
    assert len(app.workflows.list().workflows) == 2


def test_queue_makes_the_next_run_wait_for_the_earlier_one(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock, "queue")
    scheduler_of(app).sync()
    fire_and_launch(app, clock)
    fire_and_launch(app, clock)

    second, first = app.workflows.list().workflows
    waiting = app.workflows.get(second.id).step("fetch")
    assert waiting.state is JobState.WAITING
    assert {p.id for p in app.backend.parents(waiting.id)} == {
        app.workflows.get(first.id).step("publish").id
    }
    run_steps(app)
    assert app.workflows.get(second.id).state == "completed"
    fetched = app.workflows.get(first.id).step("publish").finished_at
    assert fetched is not None
    started = app.workflows.get(second.id).step("fetch").started_at
    assert started is not None and started >= fetched


def test_a_retried_launch_does_not_store_the_workflow_twice(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock, "allow")
    scheduler_of(app).sync()
    clock.advance(days=1)
    [fired], _ = scheduler_of(app).tick()
    body = app.environment().registry["workflow:nightly"].func
    ctx = conveyor.Context(fired.job, lambda *a: None)

    first = body(ctx, day="x")
    again = body(ctx, day="x")  # the same run's next attempt, after a lost lease

    assert first == again == {"workflow_id": fired.job.id, "steps": 2}
    assert len(app.workflows.list().workflows) == 1


def test_a_factory_that_returns_no_workflow_fails_the_run(url: str) -> None:
    clock = Clock()
    app = conveyor.App(url, clock=clock, **FAST)
    app.recurring("bad", "0 3 * * *", workflow=lambda: None, overlap="allow")  # type: ignore[arg-type,return-value]
    scheduler_of(app).sync()
    clock.advance(days=1)
    scheduler_of(app).tick()
    app.testing.drain()

    [run] = app.jobs.list(name="workflow:bad").jobs
    assert run.state is JobState.FAILED
    assert "returned NoneType" in run.errors[-1].message
    with pytest.raises(conveyor.ConfigurationError, match="not both"):
        app.recurring("both", "* * * * *", "x", workflow=lambda: None)  # type: ignore[arg-type]
