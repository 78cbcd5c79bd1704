"""Runs one job: async on the loop, sync on a thread; timeout, cancellation, outcome."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import traceback
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from conveyor.backends.records import Outcome
from conveyor.context import Context
from conveyor.errors import Fail, InvalidArguments, InvalidResult, Retry
from conveyor.model.hints import ANY
from conveyor.model.job import AttemptError, Job, JobState
from conveyor.model.lifecycle import waiting_state
from conveyor.model.options import Backoff
from conveyor.model.validation import result_problem
from conveyor.runtime.middleware import Middleware, compose
from conveyor.runtime.processes import ChildCrashed, ProcessPool, RemoteFailure
from conveyor.runtime.registry import JobDefinition, Registry
from conveyor.runtime.threads import DaemonThreadPool

StopReason = Literal["cancelled", "shutdown", "timeout"]
DEFAULT_BACKOFF = Backoff()


@dataclass(slots=True)
class RunningJob:
    """A job this worker is executing."""

    job: Job
    ctx: Context
    task: asyncio.Task[Any] | None = None
    stop_reason: StopReason | None = None
    #: what ended the attempt, when the executor keeps exceptions (app.testing's fail_fast)
    exception: BaseException | None = None


class JobExecutor:
    """Turns a claimed job into an Outcome by running its handler.

    With `keep_exceptions`, the exception that ended an attempt is kept on its RunningJob.
    """

    def __init__(
        self,
        worker_id: str,
        registry: Registry,
        thread_pool: Any,
        clock: Callable[[], datetime],
        middleware: Sequence[Middleware] = (),
        keep_exceptions: bool = False,
        processes: ProcessPool | None = None,
        queue_executors: Mapping[str, str] | None = None,
        sync_wrappers: Sequence[Callable[[], AbstractContextManager[Any]]] = (),
    ) -> None:
        self._worker_id = worker_id
        self._sync_wrappers = tuple(sync_wrappers)
        self._processes = processes
        self._queue_executors = queue_executors or {}
        self._registry = registry
        self._threads = thread_pool
        self._clock = clock
        self._middleware = tuple(middleware)
        self._keep_exceptions = keep_exceptions

    async def run(self, running: RunningJob) -> Outcome:
        """Run the job to an outcome. Raises CancelledError only if the worker task itself was
        cancelled without a stop reason (a hard stop)."""
        try:
            return await self._attempt(running)
        finally:
            scope = running.ctx._scope
            if scope is not None:
                # the job asked for resources: close them (errors are logged on the job, never
                # raised). A sync job's own resources are closed by its thread (_run_sync).
                definition = self._registry.get(running.job.name)
                sync = definition is not None and not definition.is_async
                await scope.aclose(only_async_opened=sync)

    async def _attempt(self, running: RunningJob) -> Outcome:
        job = running.job
        definition = self._registry.get(job.name)
        if definition is None:
            return self._failure(
                job,
                None,
                AttemptError(
                    job.attempt,
                    f"no job named {job.name!r} is registered in this worker: deploy the code "
                    "that defines it, then retry the job",
                    kind="unknown_job",
                ),
            )
        spec = definition.spec
        positional: tuple[Any, ...] = ()
        args = job.args
        if spec is not None:
            try:
                positional, args = spec.decode(args)
            except InvalidArguments as exc:
                # these arguments can never fit: no retry would help
                now = self._clock()
                error = AttemptError(job.attempt, str(exc), at=now, kind="arguments")
                return Outcome(
                    job.id, self._worker_id, job.attempt, JobState.FAILED, now, error=error
                )
        timeout = job.timeout if job.timeout is not None else definition.options.timeout
        scope: asyncio.Timeout | None = None
        try:
            if timeout is None:
                # no deadline: skip the timeout scope, which could never expire (hot path)
                value = await self._invoke(definition, running, positional, args)
            else:
                async with asyncio.timeout(timeout) as scope:
                    value = await self._invoke(definition, running, positional, args)
        except asyncio.CancelledError:
            reason = running.stop_reason
            task = asyncio.current_task()
            if reason is None or task is None:
                raise
            task.uncancel()
            return self.stopped(job, reason)
        except TimeoutError as exc:
            if self._keep_exceptions:
                running.exception = exc
            if scope is None or not scope.expired():
                return self._from_exception(job, definition, exc)
            running.ctx.cancel_requested = True
            return self._failure(
                job,
                definition,
                AttemptError(
                    job.attempt,
                    f"timed out after {timeout:g} s and was cancelled",
                    kind="timeout",
                    at=self._clock(),
                ),
            )
        except InvalidResult as exc:
            at = self._clock()
            return self._failure(
                job, definition, AttemptError(job.attempt, str(exc), at=at, kind="result")
            )
        except Exception as exc:
            if running.stop_reason is not None:
                return self.stopped(job, running.stop_reason)
            if self._keep_exceptions:
                running.exception = exc
            return self._from_exception(job, definition, exc)
        if running.stop_reason is not None:
            # a cancelled sync job that returned anyway: its result is discarded
            return self.stopped(job, running.stop_reason)
        bad = result_problem(value)
        if bad:
            return self._failure(
                job, definition, AttemptError(job.attempt, bad, kind="result", at=self._clock())
            )
        return Outcome(
            job.id, self._worker_id, job.attempt, JobState.COMPLETED, self._clock(), result=value
        )

    async def _invoke(
        self,
        definition: JobDefinition,
        running: RunningJob,
        positional: tuple[Any, ...],
        args: dict[str, Any],
    ) -> Any:
        ctx = running.ctx
        target = definition.func
        if definition.is_class:
            target = target().run
        spec = definition.spec
        # the result is written by the return hint where the job returns it, before any
        # middleware sees it (as its arguments were rebuilt just before the call)
        encode = spec.encode_result if spec is not None and spec.result is not ANY else None

        if definition.is_async:

            async def innermost() -> Any:
                value = await target(ctx, *positional, **args)
                return value if encode is None else encode(value)
        elif self._processes is not None and self._in_process(definition, running.job):
            pool, job = self._processes, running.job

            async def innermost() -> Any:
                # the child rebuilds the arguments and writes the result by the hints itself;
                # it has no store, so a workflow step's parents' results go with the job
                parents = None if job.workflow_id is None else await ctx.parent_results_async()
                return await pool.run(
                    job, definition, ctx._sink, lambda: running.stop_reason, parents
                )
        else:
            loop, wrappers = asyncio.get_running_loop(), self._sync_wrappers

            async def innermost() -> Any:
                # the context is copied here, not earlier, so contextvars set by middleware
                # (e.g. propagated request ids) are seen by the job's thread
                run = contextvars.copy_context().run
                if wrappers:
                    call = functools.partial(
                        run, _run_wrapped, wrappers, target, ctx, positional, args
                    )
                else:
                    call = functools.partial(run, _run_sync, target, ctx, positional, args)
                if isinstance(self._threads, DaemonThreadPool):
                    value = await self._threads.run_in_loop(loop, call)
                else:
                    value = await loop.run_in_executor(self._threads, call)
                return value if encode is None else encode(value)

        try:
            if not self._middleware:
                return await innermost()
            return await compose(self._middleware, ctx, innermost)()
        except BaseException as exc:
            if ctx._scope is not None:
                ctx._scope.failure = exc
            raise

    def _in_process(self, definition: JobDefinition, job: Job) -> bool:
        """Whether a plain-function job runs in a child process: its own choice, else its
        queue's."""
        if definition.executor is not None:
            return definition.executor == "process"
        return self._queue_executors.get(job.queue) == "process"

    def stopped(self, job: Job, reason: StopReason) -> Outcome:
        """The outcome of a job stopped before it ended: cancelled, or released at shutdown
        (back to pending, the attempt given back)."""
        now = self._clock()
        if reason == "shutdown":
            return Outcome(
                job.id, self._worker_id, job.attempt, JobState.PENDING, now, run_at=now,
                count_attempt=False,
            )  # fmt: skip
        return Outcome(job.id, self._worker_id, job.attempt, JobState.CANCELLED, now)

    def _from_exception(self, job: Job, definition: JobDefinition, exc: BaseException) -> Outcome:
        now = self._clock()
        if isinstance(exc, RemoteFailure):
            return self._remote_failure(job, definition, exc, now)
        if isinstance(exc, ChildCrashed):
            error = AttemptError(job.attempt, str(exc), at=now, kind="crashed")
            return self._failure(job, definition, error)
        text = "".join(traceback.format_exception(exc))
        if isinstance(exc, Fail):
            error = AttemptError(job.attempt, exc.reason, text, now, kind="fail")
            return Outcome(job.id, self._worker_id, job.attempt, JobState.FAILED, now, error=error)
        if isinstance(exc, Retry):
            error = AttemptError(job.attempt, exc.reason, text, now, kind="retry")
            return self._failure(job, definition, error, delay=exc.delay)
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return self._failure(job, definition, AttemptError(job.attempt, message, text, now))

    def _remote_failure(
        self, job: Job, definition: JobDefinition, exc: RemoteFailure, now: datetime
    ) -> Outcome:
        """How a job that raised in a child process ended, as its child reported it."""
        error = AttemptError(job.attempt, exc.message, exc.text, now, kind=exc.kind)
        if exc.kind in ("fail", "arguments"):
            return Outcome(job.id, self._worker_id, job.attempt, JobState.FAILED, now, error=error)
        if exc.kind == "error":
            error = AttemptError(job.attempt, exc.message, exc.text, now)
        return self._failure(job, definition, error, delay=exc.delay)

    def _failure(
        self,
        job: Job,
        definition: JobDefinition | None,
        error: AttemptError,
        delay: float | None = None,
    ) -> Outcome:
        """Another attempt after a backoff if any is left, else failed."""
        now = self._clock()
        if job.attempt >= job.max_attempts:
            return Outcome(job.id, self._worker_id, job.attempt, JobState.FAILED, now, error=error)
        if delay is None:
            backoff = definition.options.backoff if definition else DEFAULT_BACKOFF
            delay = backoff.delay(job.attempt)
        run_at = now + timedelta(seconds=max(delay, 0.0))
        state = waiting_state(run_at, now)
        return Outcome(job.id, self._worker_id, job.attempt, state, now, error=error, run_at=run_at)


def _run_wrapped(
    wrappers: tuple[Callable[[], AbstractContextManager[Any]], ...],
    target: Callable[..., Any],
    ctx: Context,
    positional: tuple[Any, ...],
    args: dict[str, Any],
) -> Any:
    """`_run_sync` inside the app's sync-job wrappers, entered on the job's own thread."""
    with contextlib.ExitStack() as stack:
        for wrapper in wrappers:
            stack.enter_context(wrapper())
        return _run_sync(target, ctx, positional, args)


def _run_sync(
    target: Callable[..., Any], ctx: Context, positional: tuple[Any, ...], args: dict[str, Any]
) -> Any:
    """A sync job on its thread; the resources it opened are closed on that same thread."""
    try:
        try:
            value = target(ctx, *positional, **args)
        except StopIteration as exc:
            # an asyncio future refuses StopIteration, which would leave the job running forever
            raise RuntimeError(f"the job raised StopIteration: {exc!r}") from exc
    except BaseException as exc:
        if ctx._scope is not None:
            ctx._scope.close(exc, only_sync_opened=True)
        raise
    if ctx._scope is not None:
        ctx._scope.close(only_sync_opened=True)
    return value
