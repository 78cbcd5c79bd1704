"""The memory store's workflow verbs (the edges themselves are in `edges.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from conveyor.backends.memory.edges import WorkflowRow
from conveyor.backends.memory.operators import OperatorVerbs
from conveyor.model.job import Enqueued, Job, NewJob
from conveyor.model.workflow import StoredWorkflow, WorkflowPage


class WorkflowVerbs(OperatorVerbs):
    """The memory store's workflow verbs; `MemoryBackend` is made of this and its siblings."""

    def enqueue_workflow(
        self, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Store a workflow and its steps at once (see the protocol)."""
        return self._enqueue(jobs, now, WorkflowRow(workflow_id, name, now))

    def workflow(self, workflow_id: str) -> StoredWorkflow | None:
        """A workflow with its steps and edges, or None."""
        with self._lock:
            row = self._workflows.get(workflow_id)
            return None if row is None else self._stored(row)

    def list_workflows(self, page: int, per_page: int, name: str | None = None) -> WorkflowPage:
        """Workflows newest first, their steps counted by state."""
        page, per_page = max(page, 1), max(per_page, 1)
        with self._lock:
            rows = [r for r in self._workflows.values() if name is None or r.name == name]
            rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
            start = (page - 1) * per_page
            chosen = rows[start : start + per_page]
            summaries = [self._stored(row).summary() for row in chosen]
        return WorkflowPage(summaries, page, per_page, has_more=len(rows) > start + per_page)

    def cancel_workflow(self, workflow_id: str, now: datetime) -> StoredWorkflow | None:
        """Cancel every unfinished step; None if there is no such workflow."""
        with self._lock:
            row = self._workflows.get(workflow_id)
            if row is None:
                return None
            for job_id in row.step_ids:
                self._cancel_locked(job_id, now)
            self._space.notify_all()
            return self._stored(row)

    def parents(self, job_id: str) -> list[Job]:
        """The jobs `job_id` was enqueued after (pruned ones left out)."""
        with self._lock:
            return [
                parent
                for parent_id in self._edges.parents.get(job_id, ())
                if (parent := self._jobs.get(parent_id)) is not None
            ]

    def _stored(self, row: WorkflowRow) -> StoredWorkflow:
        steps = tuple(self._jobs[job_id] for job_id in row.step_ids if job_id in self._jobs)
        parents = self._edges.parents
        edges = tuple((parent_id, job.id) for job in steps for parent_id in parents.get(job.id, ()))
        return StoredWorkflow(row.id, row.name, row.created_at, steps, edges)
