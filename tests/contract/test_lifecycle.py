"""Every store lands a job where `model.lifecycle` says, field for field.

The stores call the lifecycle's pure functions and only persist what they decide; these tests
compare what each store kept with what the function returns for the same inputs, so a store
that decided on its own (or lost a field on the way) fails here.
"""

from __future__ import annotations

import pytest

from conveyor.backends.protocol import Backend
from conveyor.errors import JobStateConflict
from conveyor.model.job import JobState
from conveyor.model.lifecycle import ATTEMPT_ENDINGS, LostLease, after_attempt, after_lost_lease

from .support import at, claim_one, enqueue_one, finish, new, outcome, stored


@pytest.mark.parametrize(
    ("max_attempts", "cancel"),
    [(3, False), (1, False), (3, True)],
    ids=["attempts-left", "no-attempt-left", "cancel-asked"],
)
def test_a_rescued_job_lands_where_the_lifecycle_says(
    backend: Backend, max_attempts: int, cancel: bool
) -> None:
    enqueue_one(backend, new(max_attempts=max_attempts))
    running = claim_one(backend, worker="w1", lease=10)
    if cancel:
        backend.cancel(running.id, at(1))
    assert running.lease_expires_at is not None

    assert backend.rescue_expired(at(11)) == [running.id]

    landing, lost = after_lost_lease(
        LostLease(running.attempt, max_attempts, cancel, "w1", running.lease_expires_at), at(11)
    )
    job = stored(backend, running.id)
    assert (job.state, job.finished_at) == (landing.state, landing.finished_at)
    if landing.again:
        assert job.run_at == landing.run_at
    assert job.errors == (lost,)
    assert (job.worker_id, job.lease_expires_at) == (None, None)


@pytest.mark.parametrize("said", [JobState.SCHEDULED, JobState.PENDING])
@pytest.mark.parametrize("due", [None, -5, 0, 30], ids=["now", "past", "at-now", "future"])
def test_a_retry_is_scheduled_or_pending_by_its_run_at_whatever_the_worker_said(
    backend: Backend, said: JobState, due: float | None
) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    now = at(10)
    run_at = None if due is None else at(10 + due)

    job = finish(backend, running, said, now, run_at=run_at)

    landing = after_attempt(said, now, run_at)
    assert (job.state, job.run_at, job.finished_at) == (
        landing.state,
        landing.run_at,
        None,
    )
    assert job.state is (JobState.SCHEDULED if due and due > 0 else JobState.PENDING)


@pytest.mark.parametrize("ending", sorted(ATTEMPT_ENDINGS - {JobState.SCHEDULED, JobState.PENDING}))
def test_a_final_ending_sets_finished_at_from_the_lifecycle(
    backend: Backend, ending: JobState
) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    job = finish(backend, running, ending, at(7))

    landing = after_attempt(ending, at(7))
    assert (job.state, job.finished_at) == (landing.state, landing.finished_at)


@pytest.mark.parametrize("state", [JobState.RUNNING, JobState.SKIPPED])
def test_an_ending_no_attempt_can_have_is_refused_and_nothing_applies(
    backend: Backend, state: JobState
) -> None:
    enqueue_one(backend)
    enqueue_one(backend)
    first = claim_one(backend)
    second = claim_one(backend)

    with pytest.raises(JobStateConflict, match="cannot end in state"):
        backend.finish([outcome(first, JobState.COMPLETED, at(1)), outcome(second, state, at(1))])

    assert {stored(backend, j.id).state for j in (first, second)} == {JobState.RUNNING}
