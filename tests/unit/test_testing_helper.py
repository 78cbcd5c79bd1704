"""app.testing: what users' own tests use to check and run their jobs inline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import conveyor
from conveyor import Backoff, JobState
from conveyor.errors import ArgumentsNotSerializable, UnknownJobError, UsageError
from helpers import wait_until_async


def make_app() -> tuple[conveyor.App, list[str]]:
    app = conveyor.App("memory://")
    sent: list[str] = []

    @app.job
    def send_welcome(ctx: conveyor.Context, user_id: int) -> None:
        sent.append(f"welcome {user_id}")
        follow_up.with_options(delay=3600).enqueue(user_id=user_id)

    @app.job
    async def follow_up(ctx: conveyor.Context, user_id: int) -> None:
        sent.append(f"follow-up {user_id}")

    @app.job(max_attempts=3)
    async def flaky(ctx: conveyor.Context) -> None:
        raise RuntimeError("down")

    return app, sent


def test_assert_enqueued_matches_name_and_args() -> None:
    app, _ = make_app()
    app.enqueue("send_welcome", {"user_id": 7})
    [job] = app.testing.assert_enqueued("send_welcome", {"user_id": 7})
    assert job.args == {"user_id": 7}
    app.testing.assert_enqueued("send_welcome", count=1)
    app.testing.assert_not_enqueued("follow_up")
    with pytest.raises(AssertionError, match="found 0"):
        app.testing.assert_enqueued("send_welcome", {"user_id": 8})


def test_drain_runs_jobs_and_what_they_enqueue_including_delayed() -> None:
    app, sent = make_app()
    app.enqueue("send_welcome", {"user_id": 7})
    result = app.testing.drain()
    assert sent == ["welcome 7", "follow-up 7"]
    assert [j.name for j in result.completed] == ["send_welcome", "follow_up"]
    assert app.testing.enqueued() == []


def test_drain_without_scheduled_leaves_delayed_jobs() -> None:
    app, sent = make_app()
    app.enqueue("send_welcome", {"user_id": 1})
    app.testing.drain(include_scheduled=False)
    assert sent == ["welcome 1"]
    app.testing.assert_enqueued("follow_up", {"user_id": 1})


def test_drain_runs_retries_to_their_end() -> None:
    app, _ = make_app()
    handle = app.enqueue("flaky")
    result = app.testing.drain()
    assert len(result.retried) == 2
    assert len(result.failed) == 1
    assert handle.refresh().state is JobState.FAILED
    assert handle.job.attempt == 3


async def test_drain_async_inside_an_event_loop() -> None:
    app, sent = make_app()
    await app.enqueue_async("follow_up", {"user_id": 3})
    with pytest.raises(UsageError, match="drain_async"):
        app.testing.drain()
    await app.testing.drain_async()
    assert sent == ["follow-up 3"]


class Session:
    """A stand-in resource that records what happened to it."""

    def __init__(self, kind: str, trail: list[str]) -> None:
        self.kind, self.trail = kind, trail


def sessions(kind: str, trail: list[str]) -> Iterator[Session]:
    trail.append(f"open {kind}")
    yield Session(kind, trail)
    trail.append(f"close {kind}")


def test_override_resource_swaps_a_factory_for_drain_and_restores_it() -> None:
    app = conveyor.App("memory://")
    trail: list[str] = []
    used: list[str] = []
    real = contextlib.contextmanager(lambda: sessions("real", trail))
    fake = contextlib.contextmanager(lambda: sessions("fake", trail))

    @app.job
    def sync_job(ctx: conveyor.Context) -> None:
        used.append(ctx.resource(real).kind)

    @app.job
    async def async_job(ctx: conveyor.Context) -> None:
        used.append((await ctx.aresource(real)).kind)

    with app.testing.override_resource(real, fake):
        sync_job.enqueue()
        async_job.enqueue()
        assert len(app.testing.drain().completed) == 2
    assert used == ["fake", "fake"]
    assert trail == ["open fake", "close fake"] * 2

    sync_job.enqueue()
    app.testing.drain()
    assert used[-1] == "real"


async def test_override_resource_reaches_a_running_worker() -> None:
    app = conveyor.App("memory://")
    trail: list[str] = []
    real = contextlib.contextmanager(lambda: sessions("real", trail))
    fake = contextlib.contextmanager(lambda: sessions("fake", trail))

    @app.job
    async def uses(ctx: conveyor.Context) -> str:
        return (await ctx.aresource(real)).kind

    async with app.worker():
        with app.testing.override_resource(real, fake):
            assert (await uses.enqueue().wait_async(10)).result == "fake"
        assert (await uses.enqueue().wait_async(10)).result == "real"
    assert trail == ["open fake", "close fake", "open real", "close real"]


# drain is the worker's own step ------------------------------------------------------------------
Event = tuple[str, int, object]  # (kind, attempt, error message / result / progress)


def hooked_app() -> tuple[conveyor.App, dict[str, list[Event]], list[int]]:
    """An app recording, per job name, the hooks each attempt fired, and its claim sizes."""
    app = conveyor.App("memory://", poll_interval=0.05)
    events: dict[str, list[Event]] = {}
    claims: list[int] = []

    def record(event: conveyor.JobEvent) -> None:
        detail = event.error.message if event.error else event.result
        if event.kind == "progress":
            detail = event.progress
        events.setdefault(event.job.name, []).append((event.kind, event.job.attempt, detail))

    for kind in ("started", "progress", "succeeded", "failed", "retrying", "cancelled"):
        app.on(kind)(record)
    app.hooks.on_claim(lambda claimed, _requested: claims.append(claimed))

    @app.job(max_attempts=2, backoff=Backoff(base=0, jitter=0))
    async def flaky(ctx: conveyor.Context) -> None:
        raise RuntimeError("down")

    @app.job
    def reports(ctx: conveyor.Context) -> str:
        ctx.progress(50, "half")
        return "done"

    return app, events, claims


EXPECTED_HOOKS = {
    "flaky": [
        ("started", 1, None),
        ("retrying", 1, "RuntimeError: down"),
        ("started", 2, None),
        ("failed", 2, "RuntimeError: down"),
    ],
    "reports": [("started", 1, None), ("progress", 1, 50.0), ("succeeded", 1, "done")],
}


@pytest.mark.parametrize("runner", ["drain", "worker"])
async def test_drain_fires_the_hooks_a_worker_fires(runner: str) -> None:
    app, events, claims = hooked_app()
    app.enqueue("flaky")
    app.enqueue("reports")
    if runner == "drain":
        result = await app.testing.drain_async()
        assert (len(result.retried), len(result.failed), len(result.completed)) == (1, 1, 1)
        assert claims == [1, 1, 1]  # one job per claim
    else:
        async with app.worker(concurrency=1):
            await wait_until_async(lambda: events == EXPECTED_HOOKS, what="every hook")
        assert sum(claims) >= 3
    assert events == EXPECTED_HOOKS


def test_drain_runs_middleware_around_each_attempt() -> None:
    app = conveyor.App("memory://")
    seen: list[tuple[str, str, int]] = []

    async def around(ctx: conveyor.Context, call_next: Callable[[], Awaitable[Any]]) -> Any:
        seen.append(("before", ctx.name, ctx.attempt))
        try:
            return f"{await call_next()}!"
        finally:
            seen.append(("after", ctx.name, ctx.attempt))

    app.use(around)
    tries = {"n": 0}

    @app.job(backoff=Backoff(base=0, jitter=0))
    def shout(ctx: conveyor.Context) -> str:
        tries["n"] += 1
        if tries["n"] == 1:
            raise RuntimeError("once")
        return "hi"

    handle = shout.enqueue()
    app.testing.drain()
    assert seen == [(step, "shout", n) for n in (1, 2) for step in ("before", "after")]
    assert handle.refresh().result == "hi!"  # what the middleware made of the result


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_drain_retries_after_the_backoff_as_a_worker_does() -> None:
    clock = Clock()
    app = conveyor.App("memory://", clock=clock)
    retrying: list[conveyor.JobEvent] = []
    app.on("retrying")(retrying.append)

    @app.job(max_attempts=3, backoff=Backoff(base=10, jitter=0))
    def down(ctx: conveyor.Context) -> None:
        raise RuntimeError("down")

    handle = down.enqueue()
    assert app.testing.drain(include_scheduled=False).ran == 1
    job = handle.refresh()
    assert (job.state, job.attempt) == (JobState.SCHEDULED, 1)
    assert job.run_at == clock.now + timedelta(seconds=10)  # the job's own backoff
    assert [e.error.message for e in retrying if e.error] == ["RuntimeError: down"]

    assert app.testing.drain(include_scheduled=False).ran == 0  # not due yet
    clock.now += timedelta(seconds=10)
    assert app.testing.drain(include_scheduled=False).ran == 1
    job = handle.refresh()
    assert (job.state, job.attempt) == (JobState.SCHEDULED, 2)
    assert job.run_at == clock.now + timedelta(seconds=20)  # doubled for the second attempt

    result = app.testing.drain()  # runs the last attempt without waiting
    assert [j.attempt for j in result.failed] == [3]
    assert len(handle.refresh().errors) == 3


def test_drain_fail_fast_raises_the_jobs_own_exception_once_recorded() -> None:
    app = conveyor.App("memory://")
    boom = KeyError("missing")
    retrying: list[int] = []
    app.on("retrying")(lambda event: retrying.append(event.job.attempt))

    @app.job(max_attempts=2)
    def broken(ctx: conveyor.Context) -> None:
        raise boom

    @app.job
    def later(ctx: conveyor.Context) -> None:
        pass

    handle = broken.enqueue()
    later.enqueue()
    with pytest.raises(KeyError) as raised:
        app.testing.drain(fail_fast=True)
    assert raised.value is boom
    job = handle.refresh()  # recorded as a worker records it: a retry is scheduled
    assert (job.state, job.attempt) == (JobState.SCHEDULED, 1)
    assert [e.message for e in job.errors] == ["KeyError: 'missing'"]
    assert retrying == [1]  # its hook fired before the drain stopped
    app.testing.assert_enqueued("later")  # the drain stopped at the first failure

    result = app.testing.drain()  # without fail_fast, failures are only counted
    assert [j.name for j in result.failed] == ["broken"]


def test_drain_fail_fast_lets_retry_requests_through_and_raises_timeouts_and_unknown_jobs() -> None:
    app = conveyor.App("memory://")
    tries = {"n": 0}

    @app.job
    def polls(ctx: conveyor.Context) -> str:
        tries["n"] += 1
        if tries["n"] == 1:
            raise conveyor.Retry(delay=0, reason="not ready")
        return "ready"

    handle = polls.enqueue()
    result = app.testing.drain(fail_fast=True)
    assert [j.name for j in result.retried] == ["polls"]
    assert handle.refresh().result == "ready"

    @app.job(timeout=0.01, max_attempts=1)
    async def hangs(ctx: conveyor.Context) -> None:
        await asyncio.Event().wait()

    handle = hangs.enqueue()
    with pytest.raises(TimeoutError):
        app.testing.drain(fail_fast=True)
    error = handle.refresh().last_error
    assert error is not None and error.kind == "timeout"

    app.declare("ghost")
    app.enqueue("ghost")
    with pytest.raises(AssertionError, match="no job named 'ghost' is registered"):
        app.testing.drain(fail_fast=True)


# testing.run: one job's body ---------------------------------------------------------------------
def test_run_calls_the_body_with_a_real_context_and_returns_its_result(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = conveyor.App("memory://")
    trail: list[str] = []
    real = contextlib.contextmanager(lambda: sessions("real", trail))
    fake = contextlib.contextmanager(lambda: sessions("fake", trail))
    contexts: list[conveyor.Context] = []

    @app.job(queue="images")
    def resize(ctx: conveyor.Context, image_id: int) -> str:
        contexts.append(ctx)
        ctx.progress(50, "half way")
        ctx.log("resized")
        return f"{image_id}:{ctx.resource(real).kind}"

    caplog.set_level(logging.INFO, logger="conveyor.testing")
    assert app.testing.run(resize, image_id=3) == "3:real"
    with app.testing.override_resource(real, fake):
        assert app.testing.run("resize", image_id=4) == "4:fake"
    assert trail == ["open real", "close real", "open fake", "close fake"]
    ctx = contexts[0]
    assert type(ctx) is conveyor.Context
    assert (ctx.name, ctx.attempt, ctx.args, ctx.job.queue) == (
        "resize",
        1,
        {"image_id": 3},
        "images",
    )
    assert ctx._scope is not None and ctx._scope.closed
    lines = [r.getMessage() for r in caplog.records if r.name == "conveyor.testing"]
    assert "job resize: resized" in lines
    assert "job resize: progress 50% half way" in lines
    assert sum(app.jobs.counts().by_state.values()) == 0  # nothing was stored


def test_run_raises_the_jobs_exception_after_closing_its_resources() -> None:
    app = conveyor.App("memory://")
    trail: list[str] = []
    boom = ValueError("bad image")

    @contextlib.contextmanager
    def session() -> Iterator[str]:
        try:
            yield "session"
        except ValueError as exc:
            trail.append(f"closed on {exc}")
            raise

    @app.job
    async def resize(ctx: conveyor.Context) -> None:
        await ctx.aresource(session)
        raise boom

    with pytest.raises(ValueError, match="bad image") as raised:
        app.testing.run(resize)
    assert raised.value is boom
    assert trail == ["closed on bad image"]  # closed with the failure, as in a worker
    with pytest.raises(UnknownJobError, match="no job named 'nope'"):
        app.testing.run("nope")

    @app.job
    def unstorable(ctx: conveyor.Context) -> object:
        return object()

    with pytest.raises(AssertionError, match="cannot be stored as JSON"):
        app.testing.run(unstorable)
    with pytest.raises(conveyor.InvalidArguments, match="unknown argument 'when'"):
        app.testing.run(resize, when="now")  # what enqueue would refuse

    @app.job
    def anything(ctx: conveyor.Context, **values: Any) -> None:
        pass

    with pytest.raises(ArgumentsNotSerializable):  # what enqueue would refuse
        app.testing.run(anything, when=object())


async def test_run_async_runs_async_and_sync_bodies() -> None:
    app = conveyor.App("memory://")

    @app.job
    async def double(ctx: conveyor.Context, n: int) -> int:
        return 2 * n

    @app.job
    def where(ctx: conveyor.Context) -> str:
        return threading.current_thread().name

    assert await app.testing.run_async(double, n=21) == 42
    assert await app.testing.run_async(where) != threading.current_thread().name
    with pytest.raises(UsageError, match="run_async"):
        app.testing.run(double, n=1)
    assert app.testing.run(where) == threading.current_thread().name  # a sync body: right here


def test_run_rebuilds_arguments_as_a_worker_does_and_checks_the_result() -> None:
    from datetime import date

    app = conveyor.App("memory://")

    @app.job
    def due(ctx: conveyor.Context, day: date, weeks: int = 1) -> date:
        return day

    assert app.testing.run(due, day="2026-05-01") == date(2026, 5, 1)  # the JSON form, rebuilt
    assert app.testing.run(due, day=date(2026, 5, 2)) == date(2026, 5, 2)
    with pytest.raises(conveyor.InvalidArguments, match="'weeks' expects int"):
        app.testing.run(due, day=date(2026, 5, 2), weeks="2")

    @app.job
    def wrong(ctx: conveyor.Context) -> int:
        return "two"  # type: ignore[return-value]

    with pytest.raises(AssertionError, match="does not fit its return hint"):
        app.testing.run(wrong)
