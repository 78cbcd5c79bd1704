"""Per-job dependency scopes: lazy, one per job, closed in reverse order whatever happens."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import JobState
from conveyor.errors import ConfigurationError
from conveyor.scope import Scope, ScopeClosed
from helpers import wait_until_async


class Resources:
    """Factories that record when they open and close, on which thread, and what ended them."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.threads: dict[str, str] = {}
        self.exits: dict[str, type[BaseException] | None] = {}
        self.made = 0

    def sync(
        self, name: str, fail_close: bool = False
    ) -> Callable[[], contextlib.AbstractContextManager[str]]:
        @contextlib.contextmanager
        def factory() -> Iterator[str]:
            self.made += 1
            self.events.append(f"open {name}")
            try:
                yield f"{name}#{self.made}"
            except BaseException as exc:
                self.exits[name] = type(exc)
                raise
            else:
                self.exits[name] = None
            finally:
                self.threads[name] = threading.current_thread().name
                self.events.append(f"close {name}")
            if fail_close:
                raise OSError(f"{name} could not close")

        factory.__qualname__ = name
        return factory

    def asynchronous(self, name: str) -> Callable[[], contextlib.AbstractAsyncContextManager[str]]:
        @contextlib.asynccontextmanager
        async def factory() -> AsyncIterator[str]:
            self.events.append(f"open {name}")
            try:
                yield name
            finally:
                self.events.append(f"close {name}")

        factory.__qualname__ = name
        return factory


# the Scope on its own ----------------------------------------------------------------------------
def test_scope_is_lazy_caches_per_factory_and_closes_in_reverse() -> None:
    r = Resources()
    db, http = r.sync("db"), r.sync("http")
    scope = Scope()
    assert r.events == []
    first = scope.resource(db)
    assert scope.resource(db) == first
    scope.resource(http)
    scope.close()
    assert r.events == ["open db", "open http", "close http", "close db"]
    assert scope.closed
    with pytest.raises(ScopeClosed):
        scope.resource(db)


def test_a_close_error_does_not_stop_the_others_and_is_reported() -> None:
    r = Resources()
    reported: list[tuple[str, str]] = []
    scope = Scope(lambda factory, exc: reported.append((factory.__qualname__, str(exc))))
    scope.resource(r.sync("a"))
    scope.resource(r.sync("b", fail_close=True))
    scope.resource(r.sync("c"))
    scope.close()
    assert r.events == ["open a", "open b", "open c", "close c", "close b", "close a"]
    assert reported == [("b", "b could not close")]


def test_the_failure_is_passed_to_exit() -> None:
    r = Resources()
    scope = Scope()
    scope.resource(r.sync("db"))
    scope.close(ValueError("job failed"))
    assert r.exits == {"db": ValueError}


async def test_async_scope_mixes_async_and_sync_factories() -> None:
    r = Resources()
    scope = Scope()
    assert await scope.aresource(r.asynchronous("client")) == "client"
    await scope.aresource(r.sync("db"))
    await scope.aclose()
    assert r.events == ["open client", "open db", "close db", "close client"]


def test_sync_resource_refuses_an_async_factory() -> None:
    r = Resources()
    with pytest.raises(ConfigurationError, match="aresource"):
        Scope().resource(r.asynchronous("client"))
    with pytest.raises(ConfigurationError, match="context manager"):
        Scope().resource(lambda: 42)  # type: ignore[arg-type,return-value]


# scopes around jobs ------------------------------------------------------------------------------
def test_each_job_gets_its_own_resources_closed_in_reverse_order() -> None:
    app = conveyor.App("memory://")
    r = Resources()
    db, http = r.sync("db"), r.sync("http")
    seen: list[str] = []

    @app.job
    def sync_job(ctx: conveyor.Context) -> str:
        session = ctx.resource(db)
        assert ctx.resource(db) is session
        ctx.resource(http)
        seen.append(session)
        return session

    sync_job.enqueue()
    sync_job.enqueue()
    result = app.testing.drain()
    assert [job.state for job in result.completed] == [JobState.COMPLETED] * 2
    assert seen == ["db#1", "db#3"]  # one instance per job
    assert r.events == ["open db", "open http", "close http", "close db"] * 2
    # a sync job's resources close on its own thread, not on the event loop
    assert r.threads["db"] != threading.main_thread().name


def test_jobs_that_ask_for_nothing_get_no_scope() -> None:
    app = conveyor.App("memory://")
    contexts: list[conveyor.Context] = []

    @app.job
    async def plain(ctx: conveyor.Context) -> None:
        contexts.append(ctx)

    plain.enqueue()
    app.testing.drain()
    assert contexts[0]._scope is None


def test_resources_close_when_the_job_fails() -> None:
    app = conveyor.App("memory://")
    r = Resources()
    db = r.sync("db")

    @app.job(max_attempts=1)
    def broken(ctx: conveyor.Context) -> None:
        ctx.resource(db)
        raise RuntimeError("boom")

    broken.enqueue()
    result = app.testing.drain()
    assert [job.state for job in result.failed] == [JobState.FAILED]
    assert r.events == ["open db", "close db"]
    assert r.exits == {"db": RuntimeError}


def test_a_close_error_is_logged_on_the_job_and_the_success_kept() -> None:
    app = conveyor.App("memory://")
    r = Resources()
    leaky = r.sync("leaky_session", fail_close=True)

    @app.job
    async def works(ctx: conveyor.Context) -> str:
        await ctx.aresource(leaky)
        return "ok"

    handle = works.enqueue()
    result = app.testing.drain()
    assert [job.state for job in result.completed] == [JobState.COMPLETED]
    job = handle.refresh()
    assert job.result == "ok"
    assert any("leaky_session failed to close" in line.message for line in job.logs)


async def test_async_job_resources_close_after_middleware_and_on_timeout() -> None:
    app = conveyor.App("memory://")
    r = Resources()
    client, db = r.asynchronous("client"), r.sync("db")
    order: list[str] = []

    async def outer(ctx: conveyor.Context, call_next: Callable[[], Any]) -> Any:
        await ctx.aresource(client)
        order.append("mw before")
        try:
            return await call_next()
        finally:
            order.append("mw after")

    app.use(outer)

    @app.job(timeout=0.05, max_attempts=1)
    async def slow(ctx: conveyor.Context) -> None:
        await ctx.aresource(db)
        await asyncio.Event().wait()  # never finishes: the timeout ends it

    slow.enqueue()
    result = await app.testing.drain_async()
    assert [job.state for job in result.failed] == [JobState.FAILED]
    assert order == ["mw before", "mw after"]
    assert r.events == ["open client", "open db", "close db", "close client"]


async def test_scope_with_a_running_worker() -> None:
    app = conveyor.App("memory://", poll_interval=0.05)
    r = Resources()
    db = r.sync("db")

    @app.job
    def uses_db(ctx: conveyor.Context) -> str:
        return ctx.resource(db)

    handle = uses_db.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.result == "db#1"
    assert r.events == ["open db", "close db"]


async def test_a_timed_out_sync_job_closes_its_resources_when_its_thread_returns() -> None:
    app = conveyor.App("memory://")
    r = Resources()
    db = r.sync("db")
    release = threading.Event()

    @app.job(timeout=0.05, max_attempts=1)
    def stuck(ctx: conveyor.Context) -> None:
        ctx.resource(db)
        release.wait(10)  # still using the session after the timeout

    stuck.enqueue()
    result = await app.testing.drain_async()
    assert [job.state for job in result.failed] == [JobState.FAILED]
    assert r.events == ["open db"]  # not closed under the feet of the running thread
    release.set()
    await wait_until_async(lambda: r.events == ["open db", "close db"], what="close on return")
    assert r.threads["db"] != threading.main_thread().name


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_with_a_worker_a_close_error_reaches_the_stored_log(
    kind: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path}/jobs.db" if kind == "sqlite" else "memory://"
    app = conveyor.App(url, poll_interval=0.05, progress_flush_interval=0.05)
    r = Resources()
    leaky = r.sync("leaky", fail_close=True)

    @app.job
    def uses(ctx: conveyor.Context) -> str:
        ctx.resource(leaky)
        return "done"

    handle = uses.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
        await wait_until_async(
            lambda: any("leaky failed to close" in line.message for line in handle.refresh().logs),
            what="the close error in the job's log",
        )
    assert job.state is JobState.COMPLETED
    assert job.result == "done"
    app.close()
