"""What happens to a job's dependents when it ends: the rules every store applies.

A job enqueued `after` other jobs is `waiting`, with one open edge per parent. When a parent
reaches a final state, each open edge to it is decided here:

- the parent completed (or was skipped): the edge is *satisfied* (resolved); a child whose
  last open edge is satisfied is released (pending, or scheduled if it was given a later
  run_at) in the same transaction;
- the parent failed for good or was cancelled: a child added with `on_parent_failure="run"`
  counts the edge as satisfied all the same; any other child is *cancelled* with an error of
  kind `parent` naming the parent, and its own dependents are decided in turn. The edge stays
  open, so retrying the parent re-arms the child (it waits again).

A store implements `DependencyGraph` on its own rows, inside the transaction that recorded the
parents' outcome, and calls `settle`; it never decides itself. So the three stores agree on
every release and cascade (the contract suite checks it), and a crash between an outcome and
its release cannot happen: they commit together.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Container, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from conveyor.errors import InvalidWorkflow
from conveyor.model.job import AttemptError, JobState, NewJob

__all__ = [
    "FAILURE_POLICIES",
    "PARENT_ERROR_KIND",
    "Cancellation",
    "DependencyGraph",
    "OpenEdge",
    "check_parents",
    "outside_parents",
    "parent_error",
    "rearm",
    "settle",
    "unknown_parent_message",
]

#: What a step does when a parent fails for good or is cancelled.
FAILURE_POLICIES = ("cancel", "run")
#: The error kind recorded on a step cancelled because a parent did not complete.
PARENT_ERROR_KIND = "parent"
_SATISFYING = frozenset({JobState.COMPLETED, JobState.SKIPPED})
_FAILING = frozenset({JobState.FAILED, JobState.CANCELLED})


class OpenEdge(NamedTuple):
    """An unresolved dependency of `child_id` on `parent_id`, with what deciding it needs."""

    parent_id: str
    child_id: str
    parent_state: JobState
    parent_label: str  # the parent's step name, or its job name, for messages
    child_policy: str  # "cancel" | "run"


class Cancellation(NamedTuple):
    """A waiting child to cancel because `parent_id` did not complete, with its error."""

    child_id: str
    parent_id: str
    error: AttemptError


class DependencyGraph(Protocol):
    """A store's edges and waiting jobs, seen from inside one of its transactions."""

    def open_edges(self, parent_ids: Sequence[str]) -> list[OpenEdge]:
        """The unresolved edges from these parents, with each parent's current state."""

    def satisfy(self, edges: Sequence[OpenEdge], now: datetime) -> None:
        """Resolve these edges; a waiting child left with none open is released at `now`."""

    def cancel_children(self, cancellations: Sequence[Cancellation], now: datetime) -> list[str]:
        """Cancel the children that are still waiting, each recording its error and the
        parent that caused it (so retrying that parent re-arms it); return the ids cancelled."""

    def blocked_children(self, parent_ids: Sequence[str]) -> list[str]:
        """Children cancelled because one of these parents did not complete."""

    def rearm_children(self, child_ids: Sequence[str], now: datetime) -> list[str]:
        """Put these cancelled children back to waiting, unless another open parent of
        theirs failed or was cancelled; return the ids re-armed."""


def parent_error(edge: OpenEdge, now: datetime) -> AttemptError:
    """The error a child records when it is cancelled because of `edge`'s parent."""
    how = "failed" if edge.parent_state is JobState.FAILED else "was cancelled"
    return AttemptError(
        attempt=0,
        message=(
            f"cancelled because its parent {edge.parent_label} (job {edge.parent_id}) {how}: "
            "retry the parent to run this step after it, or add the step with "
            'on_parent_failure="run" to run it anyway'
        ),
        at=now,
        kind=PARENT_ERROR_KIND,
    )


def outside_parents(jobs: Sequence[NewJob]) -> Counter[str]:
    """The parents a batch names that are not in it, with how many of its jobs name each."""
    batch = {job.id for job in jobs}
    return Counter(p for job in jobs for p in job.after if p not in batch)


def check_parents(jobs: Sequence[NewJob], stored: Container[str]) -> None:
    """InvalidWorkflow unless every job's parents are `stored` or earlier in the batch (so no
    cycle can be stored)."""
    batch = {job.id: index for index, job in enumerate(jobs)}
    for index, job in enumerate(jobs):
        for parent_id in job.after:
            position = batch.get(parent_id)
            known = parent_id in stored if position is None else position < index
            if not known:
                raise InvalidWorkflow(unknown_parent_message(job, parent_id))


def unknown_parent_message(child: NewJob, parent_id: str) -> str:
    """Why a job naming `parent_id` in its `after` is refused (InvalidWorkflow)."""
    what = f"step {child.step!r}" if child.step else f"job {child.name!r}"
    return (
        f"{what} waits on job {parent_id!r}, which is not stored: name only jobs already "
        "enqueued (with their ids), or steps added earlier to the same workflow"
    )


def settle(
    graph: DependencyGraph,
    parent_ids: Iterable[str],
    now: datetime,
    children: Container[str] | None = None,
) -> None:
    """Decide the open edges of parents that just reached a final state, and of the
    children cancelled on the way, level by level. `children` limits the first level to
    the edges into those jobs (a new batch naming parents that had already finished)."""
    level = list(parent_ids)
    while level:
        satisfied: list[OpenEdge] = []
        cancelled: dict[str, Cancellation] = {}
        for edge in graph.open_edges(level):
            if children is not None and edge.child_id not in children:
                continue
            if edge.parent_state in _SATISFYING or (
                edge.parent_state in _FAILING and edge.child_policy == "run"
            ):
                satisfied.append(edge)
            elif edge.parent_state in _FAILING and edge.child_id not in cancelled:
                error = parent_error(edge, now)
                cancelled[edge.child_id] = Cancellation(edge.child_id, edge.parent_id, error)
        if satisfied:
            graph.satisfy(satisfied, now)
        level = graph.cancel_children(list(cancelled.values()), now) if cancelled else []
        children = None


def rearm(graph: DependencyGraph, job_id: str, now: datetime) -> None:
    """After `job_id` was retried: its descendants cancelled because of it wait again."""
    level = [job_id]
    while level:
        children = graph.blocked_children(level)
        level = graph.rearm_children(children, now) if children else []
