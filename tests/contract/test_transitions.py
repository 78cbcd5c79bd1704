"""Every transition of the model's table that a verb makes, and the verbs that must refuse."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conveyor.backends.protocol import Backend
from conveyor.model.job import TRANSITIONS, Job, JobState

from .support import at, claim, claim_one, finish, job_in, stored

S = JobState
Drive = Callable[[Backend, Job], None]


def _promote(backend: Backend, job: Job) -> None:
    assert backend.promote_scheduled(at(60)) == 1


def _claim_due(backend: Backend, job: Job) -> None:
    assert claim_one(backend, at(60), queues=[job.queue]).id == job.id


def _cancel(backend: Backend, job: Job) -> None:
    backend.cancel(job.id, at(2))


def _finish_as(state: JobState, **fields: object) -> Drive:
    def drive(backend: Backend, job: Job) -> None:
        finish(backend, job, state, at(2), **fields)

    return drive


def _rescue(backend: Backend, job: Job) -> None:
    assert backend.rescue_expired(at(1000)) == [job.id]


def _retry(backend: Backend, job: Job) -> None:
    backend.retry(job.id, at(2))


def _end_parent(state: JobState) -> Drive:
    def drive(backend: Backend, job: Job) -> None:
        (parent,) = backend.parents(job.id)
        running = claim_one(backend, at(2), queues=[parent.queue])
        finish(backend, running, state, at(2))

    return drive


def _retry_parent(backend: Backend, job: Job) -> None:
    (parent,) = backend.parents(job.id)
    backend.retry(parent.id, at(3))


# (source, target, verb, how, extra NewJob fields)
DRIVES: list[tuple[JobState, JobState, str, Drive, dict[str, object]]] = [
    (S.SCHEDULED, S.PENDING, "promote", _promote, {}),
    (S.SCHEDULED, S.RUNNING, "claim", _claim_due, {}),
    (S.SCHEDULED, S.CANCELLED, "cancel", _cancel, {}),
    (S.PENDING, S.RUNNING, "claim", _claim_due, {}),
    (S.PENDING, S.CANCELLED, "cancel", _cancel, {}),
    (S.RUNNING, S.COMPLETED, "finish", _finish_as(S.COMPLETED, result=1), {}),
    (S.RUNNING, S.FAILED, "finish", _finish_as(S.FAILED), {}),
    (S.RUNNING, S.FAILED, "rescue", _rescue, {"max_attempts": 1}),
    (S.RUNNING, S.CANCELLED, "finish", _finish_as(S.CANCELLED), {}),
    (S.RUNNING, S.SCHEDULED, "finish", _finish_as(S.SCHEDULED, run_at=at(99)), {}),
    (S.RUNNING, S.PENDING, "finish", _finish_as(S.PENDING), {}),
    (S.RUNNING, S.PENDING, "rescue", _rescue, {"max_attempts": 2}),
    (S.FAILED, S.PENDING, "retry", _retry, {}),
    (S.CANCELLED, S.PENDING, "retry", _retry, {}),
    (S.WAITING, S.PENDING, "finish-parent", _end_parent(S.COMPLETED), {}),
    (S.WAITING, S.SCHEDULED, "finish-parent", _end_parent(S.COMPLETED), {"run_at": at(99)}),
    (S.WAITING, S.CANCELLED, "cancel", _cancel, {}),
    (S.WAITING, S.CANCELLED, "fail-parent", _end_parent(S.FAILED), {}),
    (S.CANCELLED, S.WAITING, "retry-parent", _retry_parent, {"by_parent": True}),
]

# Allowed by the model, but no store verb makes them: the runtime or a later feature does.
NO_VERB = {(S.PENDING, S.SCHEDULED)}


def test_every_allowed_transition_is_driven_here_or_declared_without_a_verb() -> None:
    allowed = {(source, target) for source, targets in TRANSITIONS.items() for target in targets}
    driven = {(source, target) for source, target, _, _, _ in DRIVES}

    assert driven <= allowed
    assert allowed - driven == NO_VERB


@pytest.mark.parametrize(
    ("source", "target", "verb", "drive", "fields"),
    DRIVES,
    ids=[f"{source}-{target}-by-{verb}" for source, target, verb, _, _ in DRIVES],
)
def test_allowed_transition(
    backend: Backend,
    source: JobState,
    target: JobState,
    verb: str,
    drive: Drive,
    fields: dict[str, object],
) -> None:
    job = job_in(backend, source, **fields)
    assert job.state is source

    drive(backend, job)

    assert stored(backend, job.id).state is target


FINISHED = [S.COMPLETED, S.FAILED, S.CANCELLED]


@pytest.mark.parametrize("state", FINISHED)
def test_a_finished_job_cannot_be_cancelled(backend: Backend, state: JobState) -> None:
    job = job_in(backend, state)

    assert backend.cancel(job.id, at(5)) == job
    assert stored(backend, job.id) == job


@pytest.mark.parametrize("state", [S.COMPLETED, S.SCHEDULED, S.PENDING, S.RUNNING, S.WAITING])
def test_only_failed_or_cancelled_jobs_can_be_retried(backend: Backend, state: JobState) -> None:
    job = job_in(backend, state)

    assert backend.retry(job.id, at(5)) == job
    assert stored(backend, job.id) == job


def test_a_running_job_cannot_be_deleted(backend: Backend) -> None:
    job = job_in(backend, S.RUNNING)

    assert backend.delete(job.id) is False
    assert stored(backend, job.id) == job


@pytest.mark.parametrize("state", FINISHED)
def test_a_finished_job_is_never_claimed(backend: Backend, state: JobState) -> None:
    job = job_in(backend, state)

    assert claim(backend, at(10**6), queues=[job.queue]) == []
