"""Query and manage jobs: the operations behind `app.jobs`, the web API and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from conveyor.backends.protocol import Backend, Counts, JobFilter, Page, WorkerInfo
from conveyor.errors import ConveyorError, JobNotFound
from conveyor.model.job import Job, JobState


class JobService:
    """Get, list, count, cancel, retry and delete jobs in the app's store."""

    def __init__(
        self,
        backend: Callable[[], Backend],
        clock: Callable[[], datetime],
        on_cancel_requested: Callable[[str], None],
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._on_cancel_requested = on_cancel_requested

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return self._backend().get(job_id)

    def require(self, job_id: str) -> Job:
        """The job with this id; raises JobNotFound."""
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(f"no job has id {job_id!r}: it may have been deleted or pruned")
        return job

    def counts(self) -> Counts:
        """How many jobs are in each state, overall and per queue."""
        return self._backend().counts()

    def workers(self) -> list[WorkerInfo]:
        """The workers that are alive (recent heartbeat)."""
        return self._backend().workers()

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: a waiting one never runs; a running one is asked to stop."""
        job = self._backend().cancel(job_id, self._clock())
        if job is None:
            return self.require(job_id)
        if job.state is JobState.RUNNING and job.cancel_requested:
            self._on_cancel_requested(job_id)
        return job

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, with a fresh attempt budget."""
        current = self.require(job_id)
        if current.state not in (JobState.FAILED, JobState.CANCELLED):
            raise ConveyorError(
                f"job {job_id} is {current.state}: only failed or cancelled jobs can be retried"
            )
        job = self._backend().retry(job_id, self._clock())
        return job if job is not None else self.require(job_id)

    def delete(self, job_id: str) -> None:
        """Delete a job that is not running (cancel a running job first)."""
        current = self.require(job_id)
        if current.state is JobState.RUNNING:
            raise ConveyorError(f"job {job_id} is running: cancel it first, then delete it")
        self._backend().delete(job_id)

    def list(
        self,
        *,
        state: str | JobState | Iterable[str | JobState] | None = None,
        name: str | None = None,
        queue: str | None = None,
        search: str | None = None,
        page: int = 1,
        per_page: int = 50,
    ) -> Page:
        """A page of jobs, newest first, filtered by state(s), name, queue and id/name search."""
        if page < 1 or not 1 <= per_page <= 1000:
            raise ConveyorError("page must be ≥ 1 and per_page between 1 and 1000")
        return self._backend().list(
            JobFilter(parse_states(state), name, queue, search, page, per_page)
        )


def parse_states(
    state: str | JobState | Iterable[str | JobState] | None,
) -> frozenset[JobState] | None:
    """States from a name, a comma-separated list or an iterable; unknown names are refused."""
    if state is None:
        return None
    items: Iterable[str | JobState]
    items = state.split(",") if isinstance(state, str) else state
    states = set()
    for item in items:
        try:
            states.add(JobState(str(item).strip()))
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise ConveyorError(f"unknown job state {item!r}; states are: {known}") from None
    return frozenset(states)
