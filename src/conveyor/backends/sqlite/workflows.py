"""The SQLite store's dependencies and workflows: `SQLiteGraph` (the `DependencyGraph` the
shared rules of `model.dependencies` drive, on the connection of the caller's transaction),
`link` (a new batch's edges) and `WorkflowVerbs` (a mixin of SQLiteBackend)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime

from conveyor.backends.sqlite.database import Database
from conveyor.backends.sqlite.rows import dt, error_json, job_from_row, json_list, ts
from conveyor.backends.sqlite.sql import Q
from conveyor.model.dependencies import (
    Cancellation,
    OpenEdge,
    check_parents,
    outside_parents,
    rearm,
    settle,
)
from conveyor.model.job import FINISHED_STATES, Enqueued, Job, JobState, NewJob
from conveyor.model.workflow import StoredWorkflow, WorkflowPage, WorkflowSummary


class SQLiteGraph:
    """`model.dependencies.DependencyGraph` on a connection inside a write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def open_edges(self, parent_ids: Sequence[str]) -> list[OpenEdge]:
        """Unresolved edges from these parents."""
        rows = self._conn.execute(Q["open_edges"], (json_list(parent_ids),))
        return [OpenEdge(row[0], row[1], JobState(row[2]), row[3], row[4]) for row in rows]

    def satisfy(self, edges: Sequence[OpenEdge], now: datetime) -> None:
        """Resolve the edges; release waiting children left with none open."""
        conn = self._conn
        conn.executemany(Q["resolve_edge"], [(e.parent_id, e.child_id) for e in edges])
        per_child = Counter(edge.child_id for edge in edges)
        moment = ts(now)
        conn.executemany(
            Q["release_child"],
            [{"id": child, "n": n, "now": moment} for child, n in per_child.items()],
        )

    def cancel_children(self, cancellations: Sequence[Cancellation], now: datetime) -> list[str]:
        """Cancel waiting children; return those cancelled that have dependents."""
        moment = ts(now)
        parents: list[str] = []
        for cancellation in cancellations:
            row = self._conn.execute(
                Q["cancel_child"],
                {
                    "id": cancellation.child_id,
                    "parent": cancellation.parent_id,
                    "error": error_json(cancellation.error),
                    "now": moment,
                },
            ).fetchone()
            if row is not None and row[1]:
                parents.append(row[0])
        return parents

    def blocked_children(self, parent_ids: Sequence[str]) -> list[str]:
        """Children cancelled because one of these parents did not complete."""
        rows = self._conn.execute(Q["blocked_children"], (json_list(parent_ids),))
        return [row[0] for row in rows]

    def rearm_children(self, child_ids: Sequence[str], now: datetime) -> list[str]:
        """Cancelled children wait again, unless another open parent still blocks them."""
        ids = json_list(child_ids)
        rearmed = [row[0] for row in self._conn.execute(Q["rearm_children"], {"ids": ids})]
        if len(rearmed) < len(child_ids):
            self._conn.execute(Q["reblock_children"], {"ids": ids})
        return rearmed


def link(conn: sqlite3.Connection, jobs: Sequence[NewJob], now: datetime) -> bool:
    """Record the edges of a batch just inserted (in the same transaction): every parent
    must be stored or earlier in the batch; parents already finished are decided now (then
    True: the batch's rows changed since they were inserted)."""
    waiting = [job for job in jobs if job.after]
    if not waiting:
        return False
    outside = outside_parents(jobs)
    states = {
        row[0]: JobState(row[1])
        for row in conn.execute(Q["existing_parents"], (json_list(outside),))
    }
    check_parents(jobs, states)
    conn.executemany(
        Q["insert_edge"],
        [(p, job.id, position) for job in waiting for position, p in enumerate(job.after)],
    )
    counts = Counter(p for job in waiting for p in job.after)
    conn.executemany(Q["add_dependents"], [{"id": p, "n": n} for p, n in counts.items()])
    ended = sorted(p for p, state in states.items() if state in FINISHED_STATES)
    if ended:
        settle(SQLiteGraph(conn), ended, now, children={job.id for job in jobs})
    return bool(ended)


def forget(conn: sqlite3.Connection, deleted: Iterable[sqlite3.Row]) -> None:
    """Drop the edges of deleted jobs (rows of id, workflow_id), and workflows left with
    no step."""
    rows = list(deleted)
    if not rows:
        return
    conn.execute(Q["forget_edges"], {"ids": json_list(row[0] for row in rows)})
    workflows = {row[1] for row in rows if row[1] is not None}
    if workflows:
        conn.execute(Q["forget_empty_workflows"], {"ids": json_list(workflows)})


class WorkflowVerbs:
    """The workflow verbs of the protocol, on `self._db`."""

    _db: Database

    def _enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime,
        workflow: tuple[str, str] | None = None,
    ) -> list[Enqueued]:  # provided by SQLiteBackend
        raise NotImplementedError

    def enqueue_workflow(
        self, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Store a workflow and its steps in one transaction."""
        return self._enqueue(jobs, now, (workflow_id, name))

    def workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """A workflow with its steps and edges, or None."""
        with self._db.read(consistent=True) as conn:
            row = conn.execute(Q["workflow_row"], (workflow_id,)).fetchone()
            if row is None:
                return None
            steps = tuple(
                job_from_row(step) for step in conn.execute(Q["workflow_steps"], (workflow_id,))
            )
            edges = tuple(
                (edge[0], edge[1]) for edge in conn.execute(Q["workflow_edges"], (workflow_id,))
            )
        return StoredWorkflow(row["id"], row["name"], dt(row["created_at"]), steps, edges)

    def list_workflows(self, page: int, per_page: int, name: str | None = None) -> WorkflowPage:
        """Workflows newest first, their steps counted by state."""
        page, per_page = max(page, 1), max(per_page, 1)
        params = {"name": name, "limit": per_page + 1, "offset": (page - 1) * per_page}
        with self._db.read(consistent=True) as conn:
            query = Q["list_workflows" if name is None else "list_workflows_named"]
            rows = conn.execute(query, params).fetchall()
            chosen = rows[:per_page]
            counts: dict[str, dict[str, int]] = {row["id"]: {} for row in chosen}
            ids = json_list(counts)
            for workflow_id, state, n in conn.execute(Q["workflow_counts"], (ids,)):
                counts[workflow_id][state] = n
        summaries = [
            WorkflowSummary(row["id"], row["name"], dt(row["created_at"]), counts[row["id"]])
            for row in chosen
        ]
        return WorkflowPage(summaries, page, per_page, has_more=len(rows) > per_page)

    def cancel_workflow(self, workflow_id: str, now: datetime) -> StoredWorkflow | None:
        """Cancel every unfinished step; None if there is no such workflow."""
        params = {"id": workflow_id, "now": ts(now)}
        with self._db.write() as conn:
            if conn.execute(Q["workflow_row"], (workflow_id,)).fetchone() is None:
                return None
            cancelled = conn.execute(Q["cancel_workflow_waiting"], params).fetchall()
            conn.execute(Q["cancel_workflow_running"], params)
            parents = [row[0] for row in cancelled if row[1]]
            if parents:
                settle(SQLiteGraph(conn), parents, now)
        return self.workflow(workflow_id)

    def parents(self, job_id: str) -> list[Job]:
        """The jobs `job_id` was enqueued after, in the order given."""
        with self._db.read() as conn:
            return [job_from_row(row) for row in conn.execute(Q["parents_of"], (job_id,))]


def rearm_after_retry(conn: sqlite3.Connection, job_id: str, now: datetime) -> None:
    """A retried job runs whatever its parents did; its dependents cancelled because of it
    wait again."""
    conn.execute(Q["resolve_parents_of"], (job_id,))
    conn.execute(Q["clear_parents_left"], (job_id,))
    rearm(SQLiteGraph(conn), job_id, now)
