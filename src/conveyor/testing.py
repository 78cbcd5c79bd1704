"""Helpers for users' own tests: see what was enqueued, run queued jobs inline.

app = conveyor.App("memory://")
signup(user_id=7)                                # code under test enqueues a job
app.testing.assert_enqueued("send_welcome", {"user_id": 7})
result = app.testing.drain()                     # runs it, and anything it enqueues
assert result.failed == []
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from conveyor.backends.records import ClaimRequest, JobFilter
from conveyor.context import Context
from conveyor.errors import UsageError
from conveyor.model.job import WAITING_STATES, Job, JobState
from conveyor.runtime.environment import Environment
from conveyor.runtime.executor import JobExecutor, RunningJob
from conveyor.runtime.reporting import ReportBuffer
from conveyor.runtime.threads import DaemonThreadPool

TEST_WORKER_ID = "conveyor-testing"


@dataclass(slots=True)
class DrainResult:
    """The jobs a drain ran, by how their last attempt ended."""

    completed: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)
    retried: list[Job] = field(default_factory=list)
    cancelled: list[Job] = field(default_factory=list)

    @property
    def ran(self) -> int:
        """How many attempts ran."""
        return len(self.completed) + len(self.failed) + len(self.retried) + len(self.cancelled)


class Testing:
    """`app.testing`: inspect the queue and run jobs inline, without a worker."""

    def __init__(self, environment: Callable[[], Environment]) -> None:
        self._environment = environment
        #: resource factory -> stand-in, seen by every worker and drain of this app
        self.resource_overrides: dict[Callable[..., Any], Callable[..., Any]] = {}

    @contextlib.contextmanager
    def override_resource(
        self, factory: Callable[..., Any], replacement: Callable[..., Any]
    ) -> Iterator[None]:
        """Within the block, jobs asking for `factory` (ctx.resource / ctx.aresource) get
        what `replacement` makes instead: a context-manager factory too, closed like the
        real one. Applies to `drain()` and to workers of this app, running ones included."""
        missing = object()
        previous = self.resource_overrides.get(factory, missing)
        self.resource_overrides[factory] = replacement
        try:
            yield
        finally:
            if previous is missing:
                self.resource_overrides.pop(factory, None)
            else:
                self.resource_overrides[factory] = previous  # type: ignore[assignment]

    def enqueued(self, name: str | None = None, *, queue: str | None = None) -> list[Job]:
        """Jobs waiting to run (scheduled or pending), oldest first."""
        backend = self._environment().backend
        page = backend.list_jobs(JobFilter(WAITING_STATES, name, queue, None, 1, 1000))
        return list(reversed(page.jobs))

    def assert_enqueued(
        self, name: str, args: dict[str, Any] | None = None, *, count: int | None = None
    ) -> list[Job]:
        """Assert jobs named `name` are waiting, whose args include `args` (all of them when
        None); with `count`, exactly that many. Returns the matching jobs."""
        jobs = self.enqueued(name)
        matching = [j for j in jobs if args is None or _contains(j.args, args)]
        if not matching or (count is not None and len(matching) != count):
            seen = [(j.name, j.args) for j in self.enqueued()]
            wanted = f"{count} job(s)" if count is not None else "a job"
            raise AssertionError(
                f"expected {wanted} {name!r} with args {args or '(any)'}, "
                f"found {len(matching)}; waiting jobs are: {seen}"
            )
        return matching

    def assert_not_enqueued(self, name: str) -> None:
        """Assert no job named `name` is waiting."""
        jobs = self.enqueued(name)
        if jobs:
            raise AssertionError(f"expected no {name!r} job, found {[j.args for j in jobs]}")

    def drain(
        self, *, include_scheduled: bool = True, max_attempts_run: int = 10_000
    ) -> DrainResult:
        """Run waiting jobs inline, one at a time, until none is left (including jobs they
        enqueue). With `include_scheduled`, delayed jobs and retries run without waiting."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.drain_async(
                    include_scheduled=include_scheduled, max_attempts_run=max_attempts_run
                )
            )
        raise UsageError("drain() was called inside an event loop: use await drain_async()")

    async def drain_async(
        self, *, include_scheduled: bool = True, max_attempts_run: int = 10_000
    ) -> DrainResult:
        """`drain` for async tests."""
        env = self._environment()
        backend, settings = env.backend, env.settings
        threads = DaemonThreadPool(4, "conveyor-testing")
        executor = JobExecutor(TEST_WORKER_ID, env.registry, threads, env.clock, env.middleware)
        reports = ReportBuffer(settings.progress_flush_count, lambda: None)
        result = DrainResult()
        now = env.clock()
        try:
            while result.ran < max_attempts_run:
                now = max(now, env.clock())
                lease = now + timedelta(seconds=settings.lease_seconds)
                request = ClaimRequest(TEST_WORKER_ID, 1, now, lease, None, env.queue_limits)
                claimed = backend.claim(request)
                if not claimed.jobs:
                    if include_scheduled and claimed.next_run_at is not None:
                        now = max(now, claimed.next_run_at)
                        continue
                    break
                job = claimed.jobs[0]
                context = Context(job, reports.add, env.resource_overrides)
                outcome = await executor.run(RunningJob(job, context))
                backend.report(reports.take(), settings.max_log_lines)
                backend.finish([outcome])
                stored = backend.get(job.id) or job
                {
                    JobState.COMPLETED: result.completed,
                    JobState.FAILED: result.failed,
                    JobState.CANCELLED: result.cancelled,
                }.get(outcome.state, result.retried).append(stored)
        finally:
            threads.shutdown(wait=False)
        return result


def _contains(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(key in actual and actual[key] == value for key, value in expected.items())
