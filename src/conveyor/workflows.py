"""Workflows: jobs that run after other jobs, built in code and stored in one transaction.

`app.workflow(name)` (or `chain(...)`, `group(...)`) builds a `Workflow`: `add` takes a job
request (`fn.request(...)`) and the steps it runs after. `enqueue()` stores every step at
once; a step is `waiting` until its parents have completed, and the store releases it in the
same transaction that records its last parent's outcome (docs/workflows.md).
`app.workflows` looks at stored workflows and cancels them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor.backends.protocol import WorkflowStore
from conveyor.errors import (
    InvalidFilter,
    InvalidWorkflow,
    UsageError,
    WaitTimeout,
    WorkflowNotFound,
)
from conveyor.model.job import NewJob, new_job_id
from conveyor.model.validation import NAME_MAX, check_after, check_failure_policy, check_text
from conveyor.model.workflow import StoredWorkflow, WorkflowPage

if TYPE_CHECKING:
    from conveyor.app import App, JobHandle

__all__ = [
    "Step",
    "Workflow",
    "WorkflowHandle",
    "WorkflowService",
    "chain",
    "group",
    "launcher",
    "launcher_name",
]


class Step:
    """One step of a workflow being built: pass it in another step's `after`."""

    __slots__ = ("name", "request", "workflow")

    def __init__(self, workflow: Workflow, name: str, request: NewJob) -> None:
        self.workflow = workflow
        self.name = name
        self.request = request

    @property
    def id(self) -> str:
        """The id its job will have once the workflow is enqueued."""
        return self.request.id

    def __repr__(self) -> str:
        return f"<Step {self.name} of workflow {self.workflow.name}>"


class Workflow:
    """A workflow being built: steps (job requests) and which steps each one runs after.

    Steps may only run after steps added before them (or after jobs already enqueued, by
    id or handle), so a workflow can never hold a cycle."""

    def __init__(self, name: str, app: App | None = None, *, id: str | None = None) -> None:
        self.name = check_text(name, "the workflow name", NAME_MAX)
        self.id = id or new_job_id()
        self._app = app
        self._steps: dict[str, Step] = {}
        self._ids: set[str] = set()

    @property
    def steps(self) -> list[Step]:
        """The steps in the order they were added."""
        return list(self._steps.values())

    def add(
        self,
        request: NewJob,
        *,
        after: Iterable[Step | str | Any] = (),
        name: str | None = None,
        on_parent_failure: str = "cancel",
    ) -> Step:
        """Add a step: `request` (from `fn.request(...)` or `app.request(...)`) runs once
        every step or job in `after` has completed. `name` defaults to the job's name (with
        a number when it repeats). `on_parent_failure`: "cancel" this step when a parent
        fails for good or is cancelled (the default), or "run" it anyway."""
        if not isinstance(request, NewJob):
            raise InvalidWorkflow(
                f"add() takes a job request (fn.request(...)), not {type(request).__name__}"
            )
        policy = check_failure_policy(on_parent_failure)
        parents: list[str] = []
        for parent in after:
            if isinstance(parent, Step):
                if parent.workflow is not self or parent.name not in self._steps:
                    raise InvalidWorkflow(
                        f"step {parent.name!r} belongs to workflow {parent.workflow.name!r}, "
                        f"not to {self.name!r}: a step may only wait on steps of its own "
                        "workflow (or on enqueued jobs, by id)"
                    )
                parents.append(parent.id)
            else:
                parents.extend(check_after([parent]))
        step_name = self._step_name(name, request.name)
        job_id = request.id if request.id not in self._ids else new_job_id()
        step = Step(
            self,
            step_name,
            replace(
                request,
                id=job_id,
                after=check_after([*request.after, *parents]),
                on_parent_failure=policy,
                workflow_id=self.id,
                step=step_name,
            ),
        )
        self._steps[step_name] = step
        self._ids.add(job_id)
        return step

    def _step_name(self, name: str | None, job_name: str) -> str:
        if name is not None:
            check_text(name, "the step name", NAME_MAX)
            if name in self._steps:
                raise InvalidWorkflow(
                    f"workflow {self.name!r} already has a step named {name!r}: "
                    "give each step its own name"
                )
            return name
        if job_name not in self._steps:
            return job_name
        number = 2
        while f"{job_name}-{number}" in self._steps:
            number += 1
        return f"{job_name}-{number}"

    def requests(self) -> list[NewJob]:
        """Its steps' job requests, in order; InvalidWorkflow when it has none."""
        if not self._steps:
            raise InvalidWorkflow(f"workflow {self.name!r} has no steps: add() at least one")
        return [step.request for step in self._steps.values()]

    def enqueue(self) -> WorkflowHandle:
        """Store every step in one transaction; returns the workflow's handle."""
        return self._bound().enqueue_workflow(self)

    async def enqueue_async(self) -> WorkflowHandle:
        """`enqueue` for async code."""
        return await self._bound().enqueue_workflow_async(self)

    def enqueue_in(self, connection: Any) -> WorkflowHandle:
        """Store every step inside the caller's open transaction on a psycopg
        `connection` (PostgreSQL): rolled back means no step is stored."""
        return self._bound().enqueue_workflow(self, connection=connection)

    def _bound(self) -> App:
        if self._app is None:
            raise UsageError(
                f"workflow {self.name!r} was built without an app: store it with "
                "app.enqueue_workflow(wf), or build it with app.workflow(name)"
            )
        return self._app

    def __repr__(self) -> str:
        return f"<Workflow {self.name} {self.id}: {len(self._steps)} steps>"


def chain(*requests: NewJob, name: str = "chain") -> Workflow:
    """A workflow running `requests` one after the other (each after the one before)."""
    workflow = Workflow(name)
    previous: list[Step] = []
    for request in requests:
        previous = [workflow.add(request, after=previous)]
    return workflow


def group(*requests: NewJob, then: NewJob | None = None, name: str = "group") -> Workflow:
    """A workflow running `requests` side by side and, when given, `then` once they have
    all completed."""
    workflow = Workflow(name)
    members = [workflow.add(request) for request in requests]
    if then is not None:
        workflow.add(then, after=members)
    return workflow


class WorkflowHandle:
    """What enqueueing a workflow returns: its id, and a handle on each step's job."""

    __slots__ = ("_app", "id", "name", "steps")

    def __init__(self, app: App, workflow: Workflow, handles: Sequence[JobHandle]) -> None:
        self._app = app
        self.id = workflow.id
        self.name = workflow.name
        self.steps: dict[str, JobHandle] = {
            step.name: handle for step, handle in zip(workflow.steps, handles, strict=True)
        }

    def get(self) -> StoredWorkflow:
        """The workflow as stored now: its steps, their states, its edges."""
        return self._app.workflows.get(self.id)

    def cancel(self) -> StoredWorkflow:
        """Cancel every unfinished step."""
        return self._app.workflows.cancel(self.id)

    def wait(self, timeout: float = 30.0, interval: float = 0.05) -> StoredWorkflow:
        """Block until every step has finished; WaitTimeout after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not (stored := self.get()).is_finished():
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"workflow {self.name} ({self.id}) is still {stored.state} after {timeout} s"
                )
            threading.Event().wait(interval)
        return stored

    async def wait_async(self, timeout: float = 30.0, interval: float = 0.05) -> StoredWorkflow:
        """`wait` for async code."""
        deadline = time.monotonic() + timeout
        while not (stored := await asyncio.to_thread(self.get)).is_finished():
            if time.monotonic() > deadline:
                raise WaitTimeout(
                    f"workflow {self.name} ({self.id}) is still {stored.state} after {timeout} s"
                )
            await asyncio.sleep(interval)
        return stored

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.name} {self.id}: {len(self.steps)} steps>"


class WorkflowService:
    """`app.workflows`: stored workflows, their steps and edges; cancelling them."""

    def __init__(self, backend: Callable[[], WorkflowStore], clock: Callable[[], datetime]) -> None:
        self._backend = backend
        self._clock = clock

    def get(self, workflow_id: str) -> StoredWorkflow:
        """One workflow with its steps and edges; WorkflowNotFound if there is none."""
        stored = self._backend().workflow(workflow_id)
        if stored is None:
            raise WorkflowNotFound(
                f"no workflow has id {workflow_id!r}: see `conveyor workflows ls`"
            )
        return stored

    def list(self, *, page: int = 1, per_page: int = 50, name: str | None = None) -> WorkflowPage:
        """Workflows newest first, each with its steps counted by state."""
        if page < 1 or not 1 <= per_page <= 1000:
            raise InvalidFilter("page must be ≥ 1 and per_page between 1 and 1000")
        return self._backend().list_workflows(page, per_page, name)

    def cancel(self, workflow_id: str) -> StoredWorkflow:
        """Cancel every unfinished step of a workflow (running ones are asked to stop)."""
        stored = self._backend().cancel_workflow(workflow_id, self._clock())
        if stored is None:
            raise WorkflowNotFound(
                f"no workflow has id {workflow_id!r}: see `conveyor workflows ls`"
            )
        return stored


# recurring workflows -----------------------------------------------------------------------------
def launcher_name(recurring_name: str) -> str:
    """The job a recurring workflow fires at each tick."""
    return f"workflow:{recurring_name}"


def launcher(
    app: App, factory: Callable[..., Workflow], overlap: str
) -> Callable[..., dict[str, Any]]:
    """The body of a recurring workflow's job: build the workflow with `factory(**kwargs)` and
    store it under the job's own id (so a retried run never stores it twice), applying
    `overlap` to whole workflows: "skip" stores nothing while an earlier run of the same name
    is unfinished, "queue" makes the new run's first steps wait for the earlier run's last
    ones (and run whatever they did), "allow" runs them side by side."""

    def launch(ctx: Any, **kwargs: Any) -> dict[str, Any]:
        stored = app.backend.workflow(ctx.id)
        if stored is not None:  # an earlier attempt stored it and then lost its lease
            return {"workflow_id": stored.id, "steps": len(stored.steps)}
        built = factory(**kwargs)
        if not isinstance(built, Workflow):
            raise InvalidWorkflow(
                f"the workflow factory of {ctx.name!r} returned {type(built).__name__}: "
                "make it return the workflow it builds (app.workflow(name) ... return wf)"
            )
        workflow = Workflow(built.name, app, id=ctx.id)
        workflow._steps, workflow._ids = built._steps, built._ids
        for step in workflow.steps:
            step.workflow = workflow
            step.request.workflow_id = ctx.id
        earlier = _unfinished_leaves(app, workflow.name, ctx.id)
        if earlier and overlap == "skip":
            ctx.log(f"skipped: an earlier run of workflow {workflow.name!r} is unfinished")
            return {"skipped": True, "unfinished_steps": len(earlier)}
        if earlier and overlap == "queue":
            for step in workflow.steps:
                if not step.request.after:
                    step.request.after = tuple(earlier)
                    step.request.on_parent_failure = "run"
        handle = app.enqueue_workflow(workflow)
        return {"workflow_id": handle.id, "steps": len(handle.steps)}

    return launch


def _unfinished_leaves(app: App, name: str, own_id: str) -> list[str]:
    """The unfinished steps, with no step after them, of earlier workflows named `name`:
    when they have all finished, so has every step of those workflows."""
    leaves: list[str] = []
    page = app.workflows.list(name=name, per_page=100)
    for summary in page.workflows:
        if summary.id == own_id or summary.state != "running":
            continue
        stored = app.workflows.get(summary.id)
        parents = {parent for parent, _ in stored.edges}
        leaves += [job.id for job in stored.steps if job.id not in parents and not job.is_finished]
    return leaves
