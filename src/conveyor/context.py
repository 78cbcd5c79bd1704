"""The Context a running job receives: progress, logs, cancellation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, TypeVar

from conveyor.model.job import Job
from conveyor.scope import Scope, describe_close_error

T = TypeVar("T")
_log = logging.getLogger("conveyor.scope")

#: Where a context sends its progress and log lines (the worker's buffer).
ReportSink = Callable[[str, "float | None", "str | None", "str | None"], None]
#: Reads a job's parents' results from the store, by step name (or job id), when first asked.
ParentResults = Callable[[], dict[str, Any]]


def _no_parents() -> dict[str, Any]:
    return {}


class Context:
    """Handed to every job as its first argument.

    `progress()` and `log()` are buffered by the worker and written to the store in batches, so
    calling them often is cheap. `cancel_requested` becomes True when an operator cancels the job
    or its timeout passes: sync jobs should check it in their loops (threads cannot be killed).
    """

    __slots__ = (
        "_overrides",
        "_parent_results",
        "_parents",
        "_scope",
        "_sink",
        "cancel_requested",
        "job",
    )

    def __init__(
        self,
        job: Job,
        sink: ReportSink,
        overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
        parents: ParentResults = _no_parents,
    ) -> None:
        self.job = job
        self._sink = sink
        self.cancel_requested = False
        self._scope: Scope | None = None
        self._overrides = overrides  # resource factory -> stand-in (app.testing)
        self._parents = parents
        self._parent_results: dict[str, Any] | None = None

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def name(self) -> str:
        """The job's registered name."""
        return self.job.name

    @property
    def attempt(self) -> int:
        """This attempt's number, starting at 1."""
        return self.job.attempt

    @property
    def args(self) -> dict[str, Any]:
        """The job's arguments."""
        return self.job.args

    @property
    def metadata(self) -> dict[str, str]:
        """The metadata given at enqueue time."""
        return self.job.metadata

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress from 0 to 100, with an optional message."""
        percent = min(max(float(percent), 0.0), 100.0)
        self._sink(self.job.id, percent, message, None)

    def log(self, message: str) -> None:
        """Append a timestamped line to the job's log."""
        self._sink(self.job.id, None, None, str(message))

    def parent_results(self) -> dict[str, Any]:
        """The results of the jobs this one ran after, by step name (by job id for a parent
        that is no workflow step): read from the store on first call, then kept. A parent
        that failed (a step added with on_parent_failure="run") has None."""
        if self._parent_results is None:
            self._parent_results = self._parents()
        return self._parent_results

    async def parent_results_async(self) -> dict[str, Any]:
        """`parent_results` for async jobs: the store is read on a thread."""
        if self._parent_results is None:
            self._parent_results = await asyncio.to_thread(self._parents)
        return self._parent_results

    # per-job dependency scope (created only when a job asks for a resource) -----------------
    @property
    def scope(self) -> Scope:
        """This attempt's dependency scope, created on first use; closed when the job ends."""
        if self._scope is None:
            self._scope = Scope(self._close_error, self._overrides)
        return self._scope

    def resource(self, factory: Callable[[], AbstractContextManager[T]]) -> T:
        """The resource made by `factory` (a context-manager factory) for this job: created on
        first use, the same instance afterwards, closed when the job ends (reverse order)."""
        return self.scope.resource(factory)

    async def aresource(
        self,
        factory: Callable[[], AbstractAsyncContextManager[T] | AbstractContextManager[T]],
    ) -> T:
        """`resource` for async jobs: accepts async and sync context-manager factories."""
        return await self.scope.aresource(factory)

    def _close_error(self, factory: Callable[..., Any], error: BaseException) -> None:
        line = describe_close_error(factory, error)
        _log.error("job %s (%s): %s", self.job.id, self.job.name, line, exc_info=error)
        self.log(line)

    def __repr__(self) -> str:
        return f"<Context {self.job.name} {self.job.id} attempt {self.job.attempt}>"


def call_in_scope(
    ctx: Context, target: Callable[..., Any], positional: tuple[Any, ...], named: dict[str, Any]
) -> Any:
    """Call a sync job body with `ctx`, then close the resources it opened (with the error,
    if it raised). The worker's threads close only what they opened themselves; this is for a
    body that owns its scope alone (a child process, `app.testing.run`)."""
    try:
        value = target(ctx, *positional, **named)
    except BaseException as exc:
        if ctx._scope is not None:
            ctx._scope.close(exc)
        raise
    if ctx._scope is not None:
        ctx._scope.close()
    return value


__all__ = ["Context", "ReportSink", "call_in_scope"]
