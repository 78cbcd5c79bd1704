"""The PostgreSQL store's dependencies and workflows: `PostgresGraph` (the `DependencyGraph`
the shared rules of `model.dependencies` drive, on a connection inside a transaction),
`insert_linked` (a batch with edges) and `WorkflowVerbs` (a mixin of PostgresBackend).

Concurrency rests on row locks: a batch naming parents updates their `dependents` first
(locking them until it commits), a finish of a job with dependents runs in the same
transaction as its release, and a fan-in child's counter is decremented under its row lock,
so exactly one transaction sees it reach zero.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from conveyor.backends.postgres.database import Database, PostgresConfig
from conveyor.backends.postgres.rows import (
    error_json,
    job_arrays,
    job_from_row,
    json_as_text,
    utc,
)
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

Conn = psycopg.Connection[Any]


class PostgresGraph:
    """`model.dependencies.DependencyGraph` on a connection inside a transaction."""

    def __init__(self, conn: Conn, queries: Mapping[str, str], channel: str) -> None:
        self._conn = conn
        self._q = queries
        self._channel = channel

    def _rows(self, name: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        # by column name whatever the connection's own row factory (it may be the caller's)
        with self._conn.cursor(row_factory=dict_row) as cur:
            json_as_text(cur.adapters)
            cur.execute(self._q[name], params)
            return cur.fetchall() if cur.description else []

    def open_edges(self, parent_ids: Sequence[str]) -> list[OpenEdge]:
        """Unresolved edges from these parents."""
        rows = self._rows("open_edges", {"ids": list(parent_ids)})
        return [
            OpenEdge(
                row["parent_id"],
                row["child_id"],
                JobState(row["parent_state"]),
                row["parent_label"],
                row["policy"],
            )
            for row in rows
        ]

    def satisfy(self, edges: Sequence[OpenEdge], now: datetime) -> None:
        """Resolve the edges; release waiting children left with none open (and wake
        workers when the transaction commits)."""
        self._rows(
            "release_children",
            {
                "parents": [edge.parent_id for edge in edges],
                "children": [edge.child_id for edge in edges],
                "now": now,
                "channel": self._channel,
            },
        )

    def cancel_children(self, cancellations: Sequence[Cancellation], now: datetime) -> list[str]:
        """Cancel waiting children; return those cancelled that have dependents."""
        rows = self._rows(
            "cancel_children",
            {
                "children": [c.child_id for c in cancellations],
                "parents": [c.parent_id for c in cancellations],
                "errors": [error_json(c.error) for c in cancellations],
                "now": now,
            },
        )
        return [row["id"] for row in rows if row["dependents"]]

    def blocked_children(self, parent_ids: Sequence[str]) -> list[str]:
        """Children cancelled because one of these parents did not complete."""
        rows = self._rows("blocked_children", {"ids": list(parent_ids)})
        return [row["child_id"] for row in rows]

    def rearm_children(self, child_ids: Sequence[str], now: datetime) -> list[str]:
        """Cancelled children wait again, unless another open parent still blocks them."""
        ids = list(child_ids)
        rearmed = [row["id"] for row in self._rows("rearm_children", {"ids": ids})]
        if len(rearmed) < len(ids):
            self._rows("reblock_children", {"ids": ids})
        return rearmed


def insert_linked(
    conn: Conn,
    queries: Mapping[str, str],
    config: PostgresConfig,
    jobs: Sequence[NewJob],
    now: datetime,
    workflow: tuple[str, str] | None,
) -> list[Enqueued]:
    """Store a batch whose jobs wait on others (or a workflow's steps) inside the
    connection's transaction: parents locked and checked first, then the jobs, their edges,
    and the decision of every parent that had already finished."""
    batch = {job.id for job in jobs}
    outside = outside_parents(jobs)
    with conn.cursor(row_factory=dict_row) as cur:
        json_as_text(cur.adapters)
        states: dict[str, JobState] = {}
        if outside:
            ids = sorted(outside)  # one lock order for every batch: no deadlock between them
            counts = [outside[parent_id] for parent_id in ids]
            cur.execute(queries["add_dependents"], {"ids": ids, "counts": counts})
            states = {row["id"]: JobState(row["state"]) for row in cur.fetchall()}
        check_parents(jobs, states)
        if workflow is not None:
            cur.execute(
                queries["insert_workflow"],
                {"id": workflow[0], "name": workflow[1], "created_at": now},
            )
        stamped = [new.to_job(now) for new in jobs]
        inside = Counter(p for job in jobs for p in job.after if p in batch)
        arrays = job_arrays(stamped)
        arrays.update(
            workflow_id=[job.workflow_id for job in jobs],
            step=[job.step for job in jobs],
            parents_left=[len(job.after) for job in jobs],
            dependents=[inside.get(job.id, 0) for job in jobs],
            on_parent_failure=[
                None if job.on_parent_failure == "cancel" else job.on_parent_failure for job in jobs
            ],
        )
        cur.execute(queries["insert_linked_jobs"], arrays)
        edges = [(p, job.id, pos) for job in jobs for pos, p in enumerate(job.after)]
        if edges:
            cur.execute(
                queries["insert_edges"],
                {
                    "parents": [e[0] for e in edges],
                    "children": [e[1] for e in edges],
                    "positions": [e[2] for e in edges],
                },
            )
        if any(job.state is not JobState.WAITING for job in stamped):
            cur.execute(queries["notify"], {"channel": config.channel})
        ended = sorted(p for p, state in states.items() if state in FINISHED_STATES)
        if not ended:
            return [Enqueued(job, True) for job in stamped]
        settle(PostgresGraph(conn, queries, config.channel), ended, now, children=batch)
        cur.execute(queries["jobs_by_ids"], {"ids": list(batch)})
        rows = {row["id"]: job_from_row(row) for row in cur.fetchall()}
    return [Enqueued(rows[job.id], True) for job in stamped]


def in_callers_transaction(
    connection: Conn, queries: Mapping[str, str], store: Callable[[], list[Enqueued]]
) -> list[Enqueued]:
    """Run `store` in a savepoint of the caller's transaction, so a refused batch leaves the
    caller's own work usable; an autocommit connection outside a block commits it at once."""
    idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
    if idle and not connection.autocommit:
        # psycopg opens the caller's transaction with its first statement: open it now, so
        # that the block below is a savepoint in it rather than a transaction of its own
        connection.execute(queries["open_transaction"])
    with connection.transaction():
        return store()


def forget(conn: Conn, queries: Mapping[str, str], deleted: Iterable[Any]) -> None:
    """Drop the edges of deleted jobs (rows with id and workflow_id), and workflows left
    with no step."""
    rows = list(deleted)
    if not rows:
        return
    conn.execute(queries["forget_edges"], {"ids": [row["id"] for row in rows]})
    workflows = sorted({row["workflow_id"] for row in rows if row["workflow_id"] is not None})
    if workflows:
        conn.execute(queries["forget_empty_workflows"], {"ids": workflows})


def rearm_after_retry(
    conn: Conn, queries: Mapping[str, str], channel: str, job_id: str, now: datetime
) -> None:
    """A retried job runs whatever its parents did; its dependents cancelled because of it
    wait again."""
    conn.execute(queries["resolve_parents_of"], {"id": job_id})
    rearm(PostgresGraph(conn, queries, channel), job_id, now)


class WorkflowVerbs:
    """The workflow verbs of the protocol, on `self._db`."""

    _db: Database
    _q: Mapping[str, str]
    config: PostgresConfig

    def _notify(self) -> None:  # provided by PostgresBackend
        raise NotImplementedError

    def _graph(self, conn: Conn) -> PostgresGraph:
        return PostgresGraph(conn, self._q, self.config.channel)

    def enqueue_workflow(
        self, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Store a workflow and its steps in one transaction."""
        with self._db.transaction() as conn:
            results = insert_linked(conn, self._q, self.config, jobs, now, (workflow_id, name))
        self._notify()
        return results

    def enqueue_workflow_in(
        self, connection: Conn, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """`enqueue_workflow` inside the caller's transaction on `connection` (its own one,
        committed at once, for an autocommit connection outside a transaction block)."""
        workflow = (workflow_id, name)
        with self._db.errors("cannot enqueue on the given connection to"):
            results = in_callers_transaction(
                connection,
                self._q,
                lambda: insert_linked(connection, self._q, self.config, jobs, now, workflow),
            )
        self._notify()
        return results

    def workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """A workflow with its steps and edges, or None."""
        params = {"id": workflow_id}
        with self._db.transaction() as conn:
            conn.execute(self._q["repeatable_read"])
            row = conn.execute(self._q["workflow_row"], params).fetchone()
            if row is None:
                return None
            steps = tuple(job_from_row(r) for r in conn.execute(self._q["workflow_steps"], params))
            edges = tuple(
                (r["parent_id"], r["child_id"])
                for r in conn.execute(self._q["workflow_edges"], params)
            )
        return StoredWorkflow(row["id"], row["name"], utc(row["created_at"]), steps, edges)

    def list_workflows(self, page: int, per_page: int, name: str | None = None) -> WorkflowPage:
        """Workflows newest first, their steps counted by state."""
        page, per_page = max(page, 1), max(per_page, 1)
        params = {"name": name, "limit": per_page + 1, "offset": (page - 1) * per_page}
        with self._db.transaction() as conn:
            conn.execute(self._q["repeatable_read"])
            query = self._q["list_workflows" if name is None else "list_workflows_named"]
            rows = conn.execute(query, params).fetchall()
            chosen = rows[:per_page]
            counts: dict[str, dict[str, int]] = {row["id"]: {} for row in chosen}
            for row in conn.execute(self._q["workflow_counts"], {"ids": list(counts)}):
                counts[row["workflow_id"]][row["state"]] = row["n"]
        summaries = [
            WorkflowSummary(row["id"], row["name"], utc(row["created_at"]), counts[row["id"]])
            for row in chosen
        ]
        return WorkflowPage(summaries, page, per_page, has_more=len(rows) > per_page)

    def cancel_workflow(self, workflow_id: str, now: datetime) -> StoredWorkflow | None:
        """Cancel every unfinished step; None if there is no such workflow."""
        params = {"id": workflow_id, "now": now}
        with self._db.transaction() as conn:
            if conn.execute(self._q["lock_workflow"], params).fetchone() is None:
                return None
            cancelled = conn.execute(self._q["cancel_workflow_waiting"], params).fetchall()
            conn.execute(self._q["cancel_workflow_running"], params)
            parents = [row["id"] for row in cancelled if row["dependents"]]
            if parents:
                settle(self._graph(conn), parents, now)
        self._notify()
        return self.workflow(workflow_id)

    def parents(self, job_id: str) -> list[Job]:
        """The jobs `job_id` was enqueued after, in the order given."""
        with self._db.connection() as conn:
            return [
                job_from_row(row) for row in conn.execute(self._q["parents_of"], {"id": job_id})
            ]
