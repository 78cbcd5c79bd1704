"""Helpers shared by the contract tests: a fixed clock and short ways to drive a store."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from conveyor.backends.protocol import Backend
from conveyor.backends.records import Claimed, ClaimRequest, Outcome, WorkerInfo
from conveyor.model.job import AttemptError, Job, JobState, NewJob
from conveyor.model.settings import Settings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
MakeBackend = Callable[[Settings], Backend]  # the `make_backend` fixture
LEASE = 30.0  # seconds a claim holds its jobs


def at(seconds: float) -> datetime:
    """`seconds` after T0: stores never read the clock, so tests pass every `now`."""
    return T0 + timedelta(seconds=seconds)


def new(name: str = "task", **fields: Any) -> NewJob:
    """A job request; `fields` are NewJob fields."""
    return NewJob(name=name, **fields)


def enqueue(backend: Backend, *jobs: NewJob, now: datetime = T0) -> list[Job]:
    """Enqueue `jobs` (or one default job) and return the stored jobs."""
    return [e.job for e in backend.enqueue(list(jobs) or [new()], now)]


def enqueue_one(backend: Backend, job: NewJob | None = None, now: datetime = T0) -> Job:
    """Enqueue one job and return it as stored."""
    return enqueue(backend, job or new(), now=now)[0]


def claim_batch(
    backend: Backend,
    now: datetime = T0,
    *,
    worker: str = "w1",
    limit: int = 10,
    queues: Iterable[str] | None = None,
    queue_limits: Mapping[str, int] | None = None,
    lease: float = LEASE,
) -> Claimed:
    """Claim for `worker` at `now`, the lease ending `lease` seconds later."""
    return backend.claim(
        ClaimRequest(
            worker_id=worker,
            limit=limit,
            now=now,
            lease_expires_at=now + timedelta(seconds=lease),
            queues=None if queues is None else frozenset(queues),
            queue_limits=dict(queue_limits or {}),
        )
    )


def claim(backend: Backend, now: datetime = T0, **options: Any) -> list[Job]:
    """The jobs `claim_batch` takes."""
    return claim_batch(backend, now, **options).jobs


def claim_one(backend: Backend, now: datetime = T0, **options: Any) -> Job:
    """Claim exactly one job, failing the test if there is none."""
    jobs = claim(backend, now, limit=1, **options)
    assert len(jobs) == 1, "expected one job to claim"
    return jobs[0]


def outcome(job: Job, state: JobState, now: datetime, **fields: Any) -> Outcome:
    """How the attempt of a claimed `job` ended, from the worker that holds it."""
    assert job.worker_id is not None, "outcomes are for claimed jobs"
    return Outcome(
        job_id=job.id, worker_id=job.worker_id, attempt=job.attempt, state=state, now=now, **fields
    )


def finish(backend: Backend, job: Job, state: JobState, now: datetime, **fields: Any) -> Job:
    """Apply one outcome that must not be dropped, and return the job as stored after it."""
    assert backend.finish([outcome(job, state, now, **fields)]) == []
    return stored(backend, job.id)


def stored(backend: Backend, job_id: str) -> Job:
    """The job as the store has it now, failing the test if it is gone."""
    job = backend.get(job_id)
    assert job is not None, f"job {job_id} is missing"
    return job


def error(attempt: int, message: str = "boom", kind: str = "error") -> AttemptError:
    """An attempt's error at a fixed time."""
    return AttemptError(
        attempt=attempt, message=message, traceback="Traceback: ...", at=at(1), kind=kind
    )


def worker_info(worker_id: str = "w1", seen: datetime = T0) -> WorkerInfo:
    """A worker's heartbeat record, last seen at `seen`."""
    return WorkerInfo(
        id=worker_id,
        host="host-1",
        pid=1234,
        queues=("default",),
        concurrency=4,
        started_at=T0,
        last_seen_at=seen,
    )


def job_in(backend: Backend, state: JobState, *, by_parent: bool = False, **fields: Any) -> Job:
    """A job driven through the protocol into `state` (scheduled at at(60); finished at at(1)).

    Unless `fields` names one, the job's queue is named after `state`, so that waiting jobs
    made earlier are never claimed in its place. A waiting job waits on a pending parent in
    queue "<queue>-parent"; `by_parent` makes a cancelled one cancelled because that parent
    failed.
    """
    fields.setdefault("queue", state.value)
    if state is JobState.WAITING or by_parent:
        parent = enqueue_one(backend, new("parent", queue=f"{fields['queue']}-parent"))
        job = enqueue_one(backend, new(after=(parent.id,), **fields))
        if state is JobState.WAITING:
            return job
        running = claim_one(backend, queues=[parent.queue])
        finish(backend, running, JobState.FAILED, at(1), error=error(running.attempt))
        cancelled = stored(backend, job.id)
        assert cancelled.state is state
        return cancelled
    if state is JobState.SCHEDULED:
        return enqueue_one(backend, new(run_at=at(60), **fields))
    job = enqueue_one(backend, new(**fields))
    if state is JobState.PENDING:
        return job
    running = claim_one(backend, queues=[job.queue])
    assert running.id == job.id
    if state is JobState.RUNNING:
        return running
    if state is JobState.COMPLETED:
        return finish(backend, running, state, at(1), result={"ok": True})
    if state is JobState.FAILED:
        return finish(backend, running, state, at(1), error=error(running.attempt))
    if state is JobState.CANCELLED:
        return finish(backend, running, state, at(1))
    raise ValueError(f"no protocol verb leads a job to {state}")
