"""One claimed job's attempt, as the worker makes it; app.testing.drain() makes it the same way.

    prepare(job)       its Context (progress to the report buffer, and to `progress` hooks)
    await run(...)     the `started` hooks, then the executor: middleware, timeout, resources,
                       the Outcome (retry with backoff, failure, result checks)
    acknowledged(...)  once the store recorded the outcome: the failed attempt's log line and
                       the `succeeded` / `failed` / `retrying` / `cancelled` hooks

Only claiming and writing differ: a worker claims into free slots and writes outcomes in batches;
drain claims and writes one job at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine, Sequence
from contextlib import suppress
from functools import partial
from typing import Any

from conveyor.backends.records import Outcome
from conveyor.context import Context, ReportSink
from conveyor.errors import InvalidResult
from conveyor.model.job import Job, JobState
from conveyor.runtime.environment import Environment
from conveyor.runtime.executor import JobExecutor, RunningJob
from conveyor.runtime.hooks import EventKind, JobEvent
from conveyor.runtime.processes import ProcessPool
from conveyor.runtime.reporting import ReportBuffer

log = logging.getLogger("conveyor.worker")

_EVENT_OF_STATE: dict[JobState, EventKind] = {
    JobState.COMPLETED: "succeeded",
    JobState.FAILED: "failed",
    JobState.SCHEDULED: "retrying",
    JobState.PENDING: "retrying",
    JobState.CANCELLED: "cancelled",
}


class Attempts:
    """Runs claimed jobs with the app's hooks, middleware and resource overrides.

    `keep_exceptions` keeps on each RunningJob the exception that ended its attempt (for
    app.testing's fail_fast); a worker does not, as the exception's frames would hold the job.
    """

    __slots__ = ("_env", "_reports", "executor")

    def __init__(
        self,
        env: Environment,
        worker_id: str,
        threads: Any,
        reports: ReportBuffer,
        *,
        keep_exceptions: bool = False,
        processes: ProcessPool | None = None,
    ) -> None:
        self._env = env
        self._reports = reports
        self.executor = JobExecutor(
            worker_id, env.registry, threads, env.clock, env.middleware, keep_exceptions,
            processes, env.queue_executors, env.sync_wrappers,
        )  # fmt: skip

    def claimed(self, jobs: Sequence[Job], requested: int) -> None:
        """A claim took `jobs` of the `requested`: run the claim hooks (metrics' batch sizes)."""
        if jobs:
            self._env.hooks.emit_claim(len(jobs), requested)

    def prepare(self, job: Job) -> RunningJob:
        """A claimed job with its Context, ready to run."""
        env = self._env
        sink = self._progress_hook_sink(job) if env.hooks.wants("progress") else self._reports.add
        parents = partial(parent_results, env, job.id)
        return RunningJob(job, Context(job, sink, env.resource_overrides, parents))

    def run(self, running: RunningJob) -> Coroutine[Any, Any, Outcome]:
        """Fire the job's `started` hooks and return the run to await for its outcome (the
        executor's own coroutine: no frame of ours stays on the per-job path)."""
        hooks = self._env.hooks
        if hooks.wants("started"):
            hooks.emit(JobEvent("started", running.job))
        return self.executor.run(running)

    def acknowledged(self, job: Job, outcome: Outcome) -> None:
        """The store recorded `outcome`, of an attempt that counts (not dropped, not released):
        log a failed attempt and run the hooks of its outcome."""
        if outcome.error is not None:
            _log_failure(job, outcome)
        kind = _EVENT_OF_STATE[outcome.state]
        hooks = self._env.hooks
        if hooks.wants(kind):
            hooks.emit(JobEvent(kind, job, error=outcome.error, result=outcome.result))

    def _progress_hook_sink(self, job: Job) -> ReportSink:
        hooks, add = self._env.hooks, self._reports.add

        def sink(job_id: str, pct: float | None, message: str | None, line: str | None) -> None:
            add(job_id, pct, message, line)
            if pct is not None:
                hooks.emit(JobEvent("progress", job, progress=pct, message=message))

        return sink


def _log_failure(job: Job, outcome: Outcome) -> None:
    """One log record per failed attempt, carrying the job's identity for structured logs."""
    error = outcome.error
    assert error is not None
    extra = {"job_id": job.id, "job_name": job.name, "queue": job.queue, "attempt": job.attempt}
    if outcome.state is JobState.FAILED:
        log.error(
            "job %s %s failed after attempt %d/%d: %s",
            job.name, job.id, job.attempt, job.max_attempts, error.message, extra=extra,
        )  # fmt: skip
    else:
        log.warning(
            "job %s %s attempt %d/%d failed (%s); it will be retried",
            job.name, job.id, job.attempt, job.max_attempts, error.message, extra=extra,
        )  # fmt: skip


def parent_results(env: Environment, job_id: str) -> dict[str, Any]:
    """What `ctx.parent_results()` returns: each parent's result by step name (job id when
    it is no step), rebuilt by its job's return hint when this app knows the job; None for
    a parent that did not complete."""
    results: dict[str, Any] = {}
    for parent in env.backend.parents(job_id):
        value = parent.result if parent.state is JobState.COMPLETED else None
        definition = env.registry.get(parent.name)
        spec = definition.spec if definition is not None else None
        if value is not None and spec is not None:
            # a middleware may have replaced what the job returned: then given as stored
            with suppress(InvalidResult):
                value = spec.decode_result(value)
        results[parent.step or parent.id] = value
    return results
