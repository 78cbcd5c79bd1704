"""Helpers for users' own tests: see what was enqueued, run queued jobs inline as a worker does.

app = conveyor.App("memory://")
signup(user_id=7)                                # code under test enqueues a job
app.testing.assert_enqueued("send_welcome", {"user_id": 7})
result = app.testing.drain()                     # runs it, and anything it enqueues, as a
assert result.failed == []                       # worker would (hooks, middleware, retries)
assert app.testing.run(send_welcome, user_id=7) is None   # one job's body, nothing stored
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from conveyor.backends.records import ClaimRequest, JobFilter, Outcome
from conveyor.context import Context, ReportSink, call_in_scope
from conveyor.errors import InvalidResult, Retry, UnknownJobError, UsageError
from conveyor.model.job import QUEUED_STATES, Job, JobState, new_job_id
from conveyor.model.validation import check_arguments, result_problem
from conveyor.runtime.attempt import Attempts
from conveyor.runtime.environment import Environment
from conveyor.runtime.executor import RunningJob
from conveyor.runtime.registry import JobDefinition
from conveyor.runtime.reporting import ReportBuffer
from conveyor.runtime.threads import DaemonThreadPool

_NOT_STARTED = QUEUED_STATES | {JobState.WAITING}  # what `enqueued` lists
TEST_WORKER_ID = "conveyor-testing"
log = logging.getLogger("conveyor.testing")


class RegisteredJob(Protocol):
    """What @app.job returns (a JobFunction), as far as `app.testing.run` needs it."""

    @property
    def definition(self) -> JobDefinition:
        """The registered job's name, callable and options."""
        ...


JobRef = RegisteredJob | str


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

    def __init__(
        self,
        environment: Callable[[], Environment],
        registry: Callable[[], Mapping[str, JobDefinition]],
        clock: Callable[[], datetime],
    ) -> None:
        self._environment = environment
        self._registry = registry  # for run(), which must not open the store
        self._clock = clock
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
        """Jobs waiting to run (scheduled, pending, or a workflow step waiting on its
        parents), oldest first."""
        backend = self._environment().backend
        page = backend.list_jobs(JobFilter(_NOT_STARTED, name, queue, None, 1, 1000))
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
        self,
        *,
        include_scheduled: bool = True,
        max_attempts_run: int = 10_000,
        fail_fast: bool = False,
    ) -> DrainResult:
        """Run waiting jobs inline, one at a time, until none is left (including jobs they
        enqueue), each as a worker runs it: hooks, middleware, timeouts, retries, outcomes.
        With `include_scheduled`, delayed jobs and retries run without waiting.

        With `fail_fast`, the first attempt that fails stops the drain and its exception is
        raised here, once its outcome is recorded (a Retry the job raised to run again is no
        failure; an error without an exception, such as an unknown job, is an AssertionError).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(
                self.drain_async(
                    include_scheduled=include_scheduled,
                    max_attempts_run=max_attempts_run,
                    fail_fast=fail_fast,
                )
            )
        raise UsageError("drain() was called inside an event loop: use await drain_async()")

    async def drain_async(
        self,
        *,
        include_scheduled: bool = True,
        max_attempts_run: int = 10_000,
        fail_fast: bool = False,
    ) -> DrainResult:
        """`drain` for async tests."""
        env = self._environment()
        backend, settings = env.backend, env.settings
        threads = DaemonThreadPool(4, "conveyor-testing")
        reports = ReportBuffer(settings.progress_flush_count, lambda: None)
        attempts = Attempts(env, TEST_WORKER_ID, threads, reports, keep_exceptions=fail_fast)
        result = DrainResult()
        now = env.clock()
        try:
            while result.ran < max_attempts_run:
                now = max(now, env.clock())
                lease = now + timedelta(seconds=settings.lease_seconds)
                request = ClaimRequest(TEST_WORKER_ID, 1, now, lease)
                claimed = backend.claim(request)
                if not claimed.jobs:
                    if include_scheduled and claimed.next_run_at is not None:
                        now = max(now, claimed.next_run_at)
                        continue
                    break
                attempts.claimed(claimed.jobs, 1)
                job = claimed.jobs[0]
                running = attempts.prepare(job)
                outcome = await attempts.run(running)
                # as the worker's writer: reports, then the outcome, then its hooks
                backend.report(reports.take(), settings.max_log_lines)
                if not backend.finish([outcome]):
                    attempts.acknowledged(job, outcome)
                stored = backend.get(job.id) or job
                {
                    JobState.COMPLETED: result.completed,
                    JobState.FAILED: result.failed,
                    JobState.CANCELLED: result.cancelled,
                }.get(outcome.state, result.retried).append(stored)
                failure = _failure(running, outcome) if fail_fast else None
                if failure is not None:
                    raise failure
        finally:
            threads.shutdown(wait=False)
        return result

    def run(self, job: JobRef, /, **args: Any) -> Any:
        """Call one job's body now with `args` and a real Context; return what it returns,
        raise what it raises. `job` is what @app.job returned, or a registered name.

        Nothing is stored and no hook, middleware, timeout or retry applies: the body only.
        The Context is the one a worker gives (attempt 1), with this app's resources and their
        overrides, closed when the body ends; its progress and log lines go to the
        `conveyor.testing` logger. Arguments are checked as enqueue checks them, and the result
        must be JSON-encodable, as in a worker. An async job runs in a new event loop (inside
        one, use `await run_async()`).
        """
        definition = self._definition(job)
        if definition.is_async:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return asyncio.run(self.run_async(job, **args))
            raise UsageError("run() of an async job was called in an event loop: await run_async()")
        ctx, positional, named = self._context(definition, args)
        target = _body(definition)
        return _checked_result(definition, call_in_scope(ctx, target, positional, named))

    async def run_async(self, job: JobRef, /, **args: Any) -> Any:
        """`run` for async tests: a sync job's body runs on a thread, as in a worker."""
        definition = self._definition(job)
        if not definition.is_async:
            return await asyncio.to_thread(functools.partial(self.run, job, **args))
        ctx, positional, named = self._context(definition, args)
        target = _body(definition)
        try:
            value = await target(ctx, *positional, **named)
        except BaseException as exc:
            if ctx._scope is not None:
                await ctx._scope.aclose(exc)
            raise
        if ctx._scope is not None:
            await ctx._scope.aclose()
        return _checked_result(definition, value)

    def _definition(self, job: JobRef) -> JobDefinition:
        if not isinstance(job, str):
            return job.definition
        definition = self._registry().get(job)
        if definition is None:
            known = ", ".join(sorted(self._registry())) or "none yet"
            raise UnknownJobError(
                f"no job named {job!r} is registered in this app (known: {known})"
            )
        return definition

    def _context(
        self, definition: JobDefinition, args: dict[str, Any]
    ) -> tuple[Context, tuple[Any, ...], dict[str, Any]]:
        """The Context, and the call's values as a worker rebuilds them from the stored JSON."""
        spec = definition.spec
        if spec is not None:
            args = spec.bind((), args)  # what enqueue refuses, run refuses too
        check_arguments(args)
        positional, named = spec.decode(args) if spec is not None else ((), args)
        options, now = definition.options, self._clock()
        job = Job(
            id=new_job_id(), name=definition.name, queue=options.queue, args=dict(args),
            priority=options.priority, state=JobState.RUNNING, attempt=1,
            max_attempts=options.max_attempts, timeout=options.timeout, run_at=now,
            created_at=now, started_at=now, worker_id=TEST_WORKER_ID,
        )  # fmt: skip
        return Context(job, _log_report(job), self.resource_overrides), positional, named


def _contains(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(key in actual and actual[key] == value for key, value in expected.items())


def _failure(running: RunningJob, outcome: Outcome) -> BaseException | None:
    """What fail_fast raises for this attempt, if it failed."""
    error = outcome.error
    if error is None:
        return None
    exc = running.exception
    if isinstance(exc, Retry) and outcome.state is not JobState.FAILED:
        return None  # the job asked for another attempt: that is no failure
    if exc is not None:
        return exc
    job = running.job
    return AssertionError(f"job {job.name} {job.id} attempt {job.attempt}: {error.message}")


def _body(definition: JobDefinition) -> Callable[..., Any]:
    """What a worker calls: the function, or a new instance's `run` for a class-based job."""
    return definition.func().run if definition.is_class else definition.func


def _checked_result(definition: JobDefinition, value: Any) -> Any:
    """What the body returned, once it passed what a worker would check."""
    stored = value
    if definition.spec is not None:
        try:
            stored = definition.spec.encode_result(value)
        except InvalidResult as exc:
            raise AssertionError(f"{exc}; a worker would fail the attempt") from None
    bad = result_problem(stored)
    if bad:
        raise AssertionError(f"job {definition.name!r}: {bad}; a worker would fail the attempt")
    return value


def _log_report(job: Job) -> ReportSink:
    """A Context sink for run(): progress and log lines go to the `conveyor.testing` logger."""

    def sink(_job_id: str, pct: float | None, message: str | None, line: str | None) -> None:
        if line is not None:
            log.info("job %s: %s", job.name, line)
        if pct is not None:
            log.info("job %s: progress %g%%%s", job.name, pct, f" {message}" if message else "")

    return sink
