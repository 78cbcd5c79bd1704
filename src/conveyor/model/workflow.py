"""Stored workflows as the stores return them: a workflow's steps and edges, and its summary.

A workflow is a named set of jobs (its steps) with edges between them; the jobs are ordinary
jobs carrying `workflow_id` and `step`. Its state is not stored: it is read off its steps
(`workflow_state`), so it can never disagree with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from conveyor.errors import NotFound
from conveyor.model.job import ACTIVE_STATES, Job

__all__ = ["StoredWorkflow", "WorkflowPage", "WorkflowSummary", "workflow_state"]


def workflow_state(counts: Mapping[str, int]) -> str:
    """A workflow's state from its steps' counts by state: "running" while any step is
    unfinished, then "failed" if any failed, "cancelled" if any was cancelled, else
    "completed" ("empty" for a workflow with no steps left)."""
    if not any(counts.values()):
        return "empty"
    if any(counts.get(state.value, 0) for state in ACTIVE_STATES):
        return "running"
    for state in ("failed", "cancelled"):
        if counts.get(state, 0):
            return state
    return "completed"


def _counts(jobs: Iterable[Job]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    return counts


@dataclass(frozen=True, slots=True)
class WorkflowSummary:
    """One workflow in a listing: its steps counted by state."""

    id: str
    name: str
    created_at: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def state(self) -> str:
        """running, completed, failed, cancelled (see `workflow_state`)."""
        return workflow_state(self.counts)

    @property
    def total(self) -> int:
        """How many steps it has."""
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class StoredWorkflow:
    """A workflow with its steps (in the order they were added) and its edges, each a
    (parent job id, child job id) pair."""

    id: str
    name: str
    created_at: datetime
    steps: tuple[Job, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()

    @property
    def counts(self) -> dict[str, int]:
        """Its steps counted by state."""
        return _counts(self.steps)

    @property
    def state(self) -> str:
        """running, completed, failed, cancelled (see `workflow_state`)."""
        return workflow_state(self.counts)

    def step(self, name: str) -> Job:
        """The step of this name; NotFound naming the steps there are."""
        for job in self.steps:
            if job.step == name:
                return job
        raise NotFound(f"no step {name!r} in workflow {self.name!r}: it has {self.step_names}")

    @property
    def step_names(self) -> list[str]:
        """The names of its steps, in the order they were added."""
        return [job.step or job.id for job in self.steps]

    def runs_after(self) -> dict[str, list[str]]:
        """For each step's job id, the steps (by name; a job outside it by id) it runs after."""
        names = {job.id: job.step or job.id for job in self.steps}
        after: dict[str, list[str]] = {job.id: [] for job in self.steps}
        for parent, child in self.edges:
            if child in after:
                after[child].append(names.get(parent, parent))
        return after

    def summary(self) -> WorkflowSummary:
        """The listing row of this workflow."""
        return WorkflowSummary(self.id, self.name, self.created_at, self.counts)

    def is_finished(self) -> bool:
        """Whether every step has reached a final state."""
        return all(job.state not in ACTIVE_STATES for job in self.steps)


@dataclass(frozen=True, slots=True)
class WorkflowPage:
    """A page of workflows, newest first."""

    workflows: list[WorkflowSummary]
    page: int
    per_page: int
    has_more: bool = False
