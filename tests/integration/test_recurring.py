"""Recurring jobs end to end: definitions, exactly-once ticks, overlap, catch-up, run now."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import conveyor
from conveyor import JobState
from conveyor.runtime.scheduler import Scheduler
from integration_support import FAST, STORES, store

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def make_app(url: str, clock: Clock) -> conveyor.App:
    app = conveyor.App(url, clock=clock, **FAST)

    @app.job(name="report")
    async def report(ctx: conveyor.Context, month: str = "auto") -> str:
        return month

    return app


def scheduler_of(app: conveyor.App) -> Scheduler:
    env = app.environment()
    return Scheduler(env.backend, env.registry, env.clock, env.recurring)


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with store(request.param, tmp_path) as store_url:
        yield store_url


def test_definition_is_validated_where_it_is_made(url: str) -> None:
    app = make_app(url, Clock())
    with pytest.raises(conveyor.ConfigurationError, match="minute field"):
        app.recurring("bad", "61 * * * *", "report")
    with pytest.raises(conveyor.ConfigurationError, match="unknown time zone"):
        app.recurring("bad", "* * * * *", "report", timezone="Nowhere/City")
    with pytest.raises(conveyor.UnknownJobError):
        app.recurring("bad", "* * * * *", "no_such_job")
    with pytest.raises(conveyor.ConfigurationError, match="overlap"):
        app.recurring("bad", "* * * * *", "report", overlap="sometimes")
    with pytest.raises(conveyor.InvalidArguments, match="unknown argument 'when'"):
        app.recurring("bad", "* * * * *", "report", kwargs={"when": "today"})
    with pytest.raises(conveyor.InvalidArguments, match="'month' expects str, got object"):
        app.recurring("bad", "* * * * *", "report", kwargs={"month": object()})


def test_three_schedulers_fire_each_tick_once(url: str) -> None:
    if url == "memory://":
        pytest.skip("schedulers in several processes need a shared store")
    clock = Clock()
    apps = [make_app(url, clock) for _ in range(3)]
    for app in apps:
        app.recurring("every-minute", "* * * * *", "report")
    schedulers = [scheduler_of(app) for app in apps]
    for scheduler in schedulers:
        scheduler.sync()
    for _ in range(5):
        clock.advance(minutes=1)
        for scheduler in schedulers:
            scheduler.tick()
    jobs = apps[0].jobs.list(name="report", per_page=100).jobs
    ticks = sorted(j.metadata["conveyor.fire_at"] for j in jobs)
    assert len(ticks) == 5 and len(set(ticks)) == 5
    for app in apps:
        app.close()


def test_missed_ticks_run_once_by_default_or_up_to_catch_up(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock)
    app.recurring("once", "0 * * * *", "report", overlap="allow")
    app.recurring("three", "0 * * * *", "report", overlap="allow", catch_up=3)
    scheduler = scheduler_of(app)
    scheduler.sync()
    clock.advance(hours=10, minutes=30)  # downtime: ten hourly ticks missed
    fired, _ = scheduler.tick()
    by_name: dict[str, list[str]] = {}
    for result in fired:
        by_name.setdefault(str(result.job.recurring_name), []).append(
            result.job.metadata["conveyor.fire_at"]
        )
    assert by_name["once"] == ["2026-05-01T22:00:00+00:00"]  # the latest missed tick
    assert by_name["three"] == [
        "2026-05-01T20:00:00+00:00",
        "2026-05-01T21:00:00+00:00",
        "2026-05-01T22:00:00+00:00",
    ]
    [once] = [r for r in app.recurring_jobs.list() if r.name == "once"]
    assert once.next_fire_at == datetime(2026, 5, 1, 23, tzinfo=UTC)
    assert scheduler.tick()[0] == []  # nothing more until the next tick


def test_visibility_toggle_and_sync_keeps_the_operators_choice(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock)
    app.recurring("monthly", "0 0 1 * *", "report", kwargs={"month": "auto"})
    scheduler_of(app).sync()
    [record] = app.recurring_jobs.list()
    assert record.enabled and record.next_fire_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert record.last_fire_at is None and record.last_job_id is None
    assert app.recurring_jobs.describe(record) == "At 00:00 on the first day of every month"
    app.recurring_jobs.disable("monthly")
    scheduler_of(app).sync()  # a worker restarts: code says enabled, the operator said no
    assert not app.recurring_jobs.get("monthly").enabled
    clock.advance(days=40)
    assert scheduler_of(app).tick()[0] == []
    enabled = app.recurring_jobs.toggle("monthly")
    assert enabled.enabled and enabled.next_fire_at == datetime(2026, 7, 1, tzinfo=UTC)


def test_run_now_is_recorded_as_manual(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock)
    app.recurring("monthly", "0 0 1 * *", "report", kwargs={"month": "may"})
    scheduler_of(app).sync()
    result = app.recurring_jobs.run_now("monthly")
    assert result.job.metadata["conveyor.trigger"] == "manual"
    assert result.job.args == {"month": "may"} and result.job.recurring_name == "monthly"
    record = app.recurring_jobs.get("monthly")
    assert record.last_job_id == result.job.id and record.last_fire_at is None
    with pytest.raises(conveyor.RecurringJobNotFound):
        app.recurring_jobs.run_now("nope")


def test_run_time_add_update_remove(url: str) -> None:
    app = make_app(url, Clock())
    app.recurring_jobs.add("cleanup", "*/5 * * * *", "report", args={"month": "x"})
    updated = app.recurring_jobs.update("cleanup", cron="*/10 * * * *", overlap="queue")
    assert updated.cron == "*/10 * * * *" and updated.overlap == "queue"
    assert updated.next_fire_at == T0 + timedelta(minutes=10)
    with pytest.raises(conveyor.ConfigurationError, match="hour field"):
        app.recurring_jobs.update("cleanup", cron="0 99 * * *")
    app.recurring_jobs.remove("cleanup")
    assert app.recurring_jobs.list() == []
    with pytest.raises(conveyor.RecurringJobNotFound):
        app.recurring_jobs.remove("cleanup")


async def test_skip_overlap_records_a_skipped_run_with_a_real_worker(url: str) -> None:
    clock = Clock()
    app = conveyor.App(url, clock=clock, **FAST)
    release = asyncio.Event()

    @app.job(name="slow")
    async def slow(ctx: conveyor.Context) -> None:
        await release.wait()

    app.recurring("minutely", "* * * * *", "slow")
    scheduler = scheduler_of(app)
    scheduler.sync()
    async with app.worker():
        clock.advance(minutes=1)
        [first] = scheduler.tick()[0]
        deadline = time.monotonic() + 10
        while app.jobs.require(first.job.id).state is not JobState.RUNNING:
            assert time.monotonic() < deadline, "the first run did not start"
            await asyncio.sleep(0.01)
        clock.advance(minutes=1)
        [second] = scheduler.tick()[0]
        assert second.job.state is JobState.SKIPPED
        assert app.recurring_jobs.get("minutely").last_job_state is JobState.SKIPPED
        release.set()
    app.close()


async def test_every_two_seconds_fires_on_time_in_real_time(tmp_path: Path) -> None:
    app = conveyor.App(f"sqlite:///{tmp_path}/rt.db", **FAST)
    started: list[float] = []

    @app.job(name="tick")
    async def tick(ctx: conveyor.Context) -> None:
        started.append(time.time())

    app.recurring("fast", "*/2 * * * * *", "tick", overlap="allow")
    async with app.worker():
        deadline = time.monotonic() + 15
        while len(started) < 3:
            assert time.monotonic() < deadline, f"only {len(started)} runs in time"
            await asyncio.sleep(0.05)
    for moment in started[:3]:
        lateness = moment - (int(moment) - int(moment) % 2)
        assert lateness < 1.0, f"a run started {lateness:.2f} s after its tick"
    app.close()


class CountingBackend:
    """Wraps a store and counts calls per verb."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> object:
        target = getattr(self._inner, name)
        if not callable(target):
            return target

        def counted(*args: object, **kwargs: object) -> object:
            self.calls[name] = self.calls.get(name, 0) + 1
            return target(*args, **kwargs)

        return counted


def test_a_thousand_schedules_cost_two_store_calls_per_tick(url: str) -> None:
    clock = Clock()
    app = make_app(url, clock)
    for n in range(1000):
        app.recurring(f"job-{n}", "* * * * *", "report", overlap="allow")
    env = app.environment()
    counting = CountingBackend(env.backend)
    scheduler = Scheduler(counting, env.registry, clock, env.recurring)  # type: ignore[arg-type]
    scheduler.sync()
    counting.calls.clear()
    clock.advance(minutes=1)
    fired, _ = scheduler.tick()
    assert len(fired) == 1000
    assert counting.calls == {"due_recurring": 1, "fire_recurring": 1}


@pytest.mark.parametrize("overlap", ["skip", "queue", "allow"])
@pytest.mark.parametrize("catch_up", [1, 3])
@pytest.mark.parametrize("first_pass", [0, 35], ids=["prompt-pass", "late-pass"])
def test_after_downtime_the_latest_missed_ticks_run_then_the_schedule_continues(
    url: str, overlap: str, catch_up: int, first_pass: int
) -> None:
    clock = Clock(T0 + timedelta(seconds=30))
    app = make_app(url, clock)
    app.recurring("r", "* * * * *", "report", overlap=overlap, catch_up=catch_up)

    def fire_times(fired: list[conveyor.Enqueued]) -> list[tuple[str, str]]:
        return [(f.job.metadata["conveyor.fire_at"][11:16], f.job.state.value) for f in fired]

    try:
        first = scheduler_of(app)
        first.sync()
        clock.advance(minutes=1)  # 12:01:30
        assert fire_times(first.tick()[0]) == [("12:01", "pending")]
        app.testing.drain()
        # downtime: nobody fires 12:02 .. 12:10; a new worker's scheduler starts at 12:10:30
        clock.advance(minutes=9)
        restarted = scheduler_of(app)
        restarted.sync()
        clock.advance(seconds=first_pass)  # its first pass: at once, or after 12:11 was due
        fired = fire_times(restarted.tick()[0])

        missed = [f"12:{minute:02d}" for minute in range(11 - catch_up, 11)]
        regular = ["12:11"] if first_pass else []
        assert [tick for tick, _ in fired] == missed + regular
        assert {state for _, state in fired} == {"pending"}
        app.testing.drain()
        assert {j.state for j in app.jobs.list(per_page=100).jobs} == {JobState.COMPLETED}
        clock.advance(minutes=1)  # the schedule continues, nothing skipped
        next_regular = "12:12" if first_pass else "12:11"
        assert fire_times(restarted.tick()[0]) == [(next_regular, "pending")]
        assert restarted.tick()[0] == []
    finally:
        app.close()
