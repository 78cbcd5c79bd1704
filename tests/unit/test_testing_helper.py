"""app.testing: what users' own tests use to check and run their jobs inline."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import conveyor
from conveyor import JobState
from conveyor.errors import UsageError


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
