"""The memory store's edges between jobs, decided by `model.dependencies` under the store's
one lock: `Edges` (every edge, which are open, each child's failure policy and what cancelled
it), `Graph` (the `DependencyGraph` the shared rules drive) and `WorkflowRow`.

`JobIndex` owns one `Edges` and calls `Graph` when a job is stored, ends or is removed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from conveyor.model.dependencies import Cancellation, OpenEdge
from conveyor.model.job import JobState, waiting_state

if TYPE_CHECKING:
    from conveyor.backends.memory.index import JobIndex


@dataclass(slots=True)
class Edges:
    """Every edge of a memory store, indexed both ways."""

    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)  # child -> all parents
    children: dict[str, list[str]] = field(default_factory=dict)  # parent -> its children
    open: dict[str, set[str]] = field(default_factory=dict)  # child -> unresolved parents
    policy: dict[str, str] = field(default_factory=dict)  # child -> "run" (default "cancel")
    blocked_by: dict[str, str] = field(default_factory=dict)  # cancelled child -> its parent

    def add(self, child_id: str, parent_ids: Sequence[str], policy: str) -> None:
        """Record a new child's edges, all open."""
        self.parents[child_id] = tuple(parent_ids)
        self.open[child_id] = set(parent_ids)
        for parent_id in parent_ids:
            self.children.setdefault(parent_id, []).append(child_id)
        if policy != "cancel":
            self.policy[child_id] = policy

    def forget(self, job_id: str) -> None:
        """Drop a removed job's edges (as a child; as a parent, its decided ones)."""
        for parent_id in self.parents.pop(job_id, ()):
            siblings = self.children.get(parent_id)
            if siblings is not None and job_id in siblings:
                siblings.remove(job_id)
                if not siblings:
                    del self.children[parent_id]
        self.open.pop(job_id, None)
        self.policy.pop(job_id, None)
        self.blocked_by.pop(job_id, None)
        self.children.pop(job_id, None)


@dataclass(slots=True)
class WorkflowRow:
    """A stored workflow: its name, when it was made, and its step ids in order."""

    id: str
    name: str
    created_at: datetime
    step_ids: dict[str, None] = field(default_factory=dict)  # ordered, O(1) removal


_FAILING = frozenset({JobState.FAILED, JobState.CANCELLED})


class Graph:
    """`model.dependencies.DependencyGraph` over a memory store's jobs (its lock held)."""

    def __init__(self, index: JobIndex) -> None:
        self._index = index

    def open_edges(self, parent_ids: Sequence[str]) -> list[OpenEdge]:
        """Unresolved edges from these parents."""
        index = self._index
        jobs, edges = index._jobs, index._edges
        found: list[OpenEdge] = []
        for parent_id in parent_ids:
            parent = jobs.get(parent_id)
            if parent is None:
                continue
            for child_id in edges.children.get(parent_id, ()):
                if parent_id in edges.open.get(child_id, ()):
                    found.append(
                        OpenEdge(
                            parent_id,
                            child_id,
                            parent.state,
                            parent.step or parent.name,
                            edges.policy.get(child_id, "cancel"),
                        )
                    )
        return found

    def satisfy(self, edges: Sequence[OpenEdge], now: datetime) -> None:
        """Resolve the edges; release waiting children left with none open."""
        index = self._index
        open_parents = index._edges.open
        for edge in edges:
            left = open_parents.get(edge.child_id)
            if left is None:
                continue
            left.discard(edge.parent_id)
            if left:
                continue
            del open_parents[edge.child_id]
            child = index._jobs.get(edge.child_id)
            if child is None or child.state is not JobState.WAITING:
                continue
            run_at = max(child.run_at, now)
            released = replace(child, state=waiting_state(run_at, now), run_at=run_at)
            index._put(released, child)
            index._add_waiting(released, now)

    def cancel_children(self, cancellations: Sequence[Cancellation], now: datetime) -> list[str]:
        """Cancel waiting children, recording why and which parent caused it."""
        index = self._index
        cancelled: list[str] = []
        for cancellation in cancellations:
            child = index._jobs.get(cancellation.child_id)
            if child is None or child.state is not JobState.WAITING:
                continue
            done = replace(
                child,
                state=JobState.CANCELLED,
                finished_at=now,
                errors=(*child.errors, cancellation.error),
            )
            index._put(done, child)
            index._record_finished(done)
            index._edges.blocked_by[child.id] = cancellation.parent_id
            cancelled.append(child.id)
        return cancelled

    def blocked_children(self, parent_ids: Sequence[str]) -> list[str]:
        """Children cancelled because one of these parents did not complete."""
        edges, jobs = self._index._edges, self._index._jobs
        return [
            child_id
            for parent_id in parent_ids
            for child_id in edges.children.get(parent_id, ())
            if edges.blocked_by.get(child_id) == parent_id
            and (child := jobs.get(child_id)) is not None
            and child.state is JobState.CANCELLED
        ]

    def rearm_children(self, child_ids: Sequence[str], now: datetime) -> list[str]:
        """Cancelled children wait again, unless another open parent still blocks them."""
        index = self._index
        edges, jobs = index._edges, index._jobs
        rearmed: list[str] = []
        for child_id in child_ids:
            child = jobs[child_id]
            blocker = next(
                (
                    parent_id
                    for parent_id in edges.open.get(child_id, ())
                    if (parent := jobs.get(parent_id)) is not None and parent.state in _FAILING
                ),
                None,
            )
            if blocker is not None:
                edges.blocked_by[child_id] = blocker
                continue
            del edges.blocked_by[child_id]
            waiting = replace(
                child, state=JobState.WAITING, finished_at=None, cancel_requested=False
            )
            index._put(waiting, child)
            rearmed.append(child_id)
        return rearmed
