"""What operators do to jobs: cancel, retry, delete."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import at, claim, claim_one, enqueue, enqueue_one, error, finish, job_in, new, stored


def test_cancel_a_pending_job_now_and_it_is_never_claimed(backend: Backend) -> None:
    job = enqueue_one(backend)

    cancelled = backend.cancel(job.id, at(5))

    assert cancelled is not None
    assert (cancelled.state, cancelled.finished_at) == (JobState.CANCELLED, at(5))
    assert stored(backend, job.id) == cancelled
    assert claim(backend, at(6)) == []


def test_cancel_a_scheduled_job_now(backend: Backend) -> None:
    job = enqueue_one(backend, new(run_at=at(60)))

    cancelled = backend.cancel(job.id, at(5))

    assert cancelled is not None
    assert cancelled.state is JobState.CANCELLED
    assert claim(backend, at(100)) == []


def test_cancel_a_running_job_asks_its_worker(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    asked = backend.cancel(running.id, at(5))

    assert asked is not None
    assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
    assert asked.worker_id == running.worker_id
    assert stored(backend, running.id).cancel_requested is True
    done = finish(backend, running, JobState.CANCELLED, at(6))
    assert done.state is JobState.CANCELLED


def test_cancel_of_an_unknown_job_is_none(backend: Backend) -> None:
    assert backend.cancel("no-such-job", at(1)) is None


def test_retry_a_failed_job_with_a_fresh_budget(backend: Backend) -> None:
    enqueue_one(backend, new(max_attempts=1))
    running = claim_one(backend)
    failed = finish(backend, running, JobState.FAILED, at(1), error=error(1, "broke"))

    retried = backend.retry(failed.id, at(10))

    assert retried is not None
    assert retried.state is JobState.PENDING
    assert (retried.attempt, retried.run_at, retried.finished_at) == (0, at(10), None)
    assert retried.errors == failed.errors
    assert stored(backend, failed.id) == retried
    assert [j.attempt for j in claim(backend, at(10))] == [1]


def test_retry_a_cancelled_job(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    backend.cancel(running.id, at(1))
    cancelled = finish(backend, running, JobState.CANCELLED, at(2))

    retried = backend.retry(cancelled.id, at(3))

    assert retried is not None
    assert (retried.state, retried.cancel_requested, retried.result) == (
        JobState.PENDING,
        False,
        None,
    )
    assert [j.id for j in claim(backend, at(3))] == [cancelled.id]


def test_retry_of_an_unknown_job_is_none(backend: Backend) -> None:
    assert backend.retry("no-such-job", at(1)) is None


def test_retry_takes_the_unique_key_back(backend: Backend) -> None:
    job = job_in(backend, JobState.FAILED, unique_key="k")
    backend.retry(job.id, at(5))

    [dup] = backend.enqueue([new(unique_key="k")], at(6))

    assert (dup.created, dup.job.id) == (False, job.id)


def test_retry_is_refused_while_another_job_holds_the_unique_key(backend: Backend) -> None:
    failed = job_in(backend, JobState.FAILED, unique_key="k")
    [holder] = backend.enqueue([new(unique_key="k")], at(5))
    assert holder.created is True

    assert backend.retry(failed.id, at(6)) == failed

    assert stored(backend, failed.id).state is JobState.FAILED


def test_delete_a_waiting_job(backend: Backend) -> None:
    pending, scheduled = enqueue(backend, new(), new(run_at=at(60)))

    assert backend.delete(pending.id) is True
    assert backend.delete(scheduled.id) is True

    assert backend.get(pending.id) is None
    assert backend.get(scheduled.id) is None
    assert claim(backend, at(100)) == []


def test_delete_frees_the_unique_key(backend: Backend) -> None:
    job = enqueue_one(backend, new(unique_key="k"))
    backend.delete(job.id)

    [again] = backend.enqueue([new(unique_key="k")], at(1))

    assert again.created is True


def test_delete_a_finished_job(backend: Backend) -> None:
    job = job_in(backend, JobState.COMPLETED)

    assert backend.delete(job.id) is True
    assert backend.get(job.id) is None
    assert backend.delete(job.id) is False


def test_delete_of_an_unknown_job_is_false(backend: Backend) -> None:
    assert backend.delete("no-such-job") is False


def test_run_a_scheduled_job_now(backend: Backend) -> None:
    later, other = enqueue(backend, new(run_at=at(3600)), new(run_at=at(3600)))
    assert claim(backend, at(5)) == []

    due = backend.run_now(later.id, at(5))

    assert due is not None
    assert (due.state, due.run_at, due.attempt) == (JobState.PENDING, at(5), later.attempt)
    assert stored(backend, later.id) == due
    assert [j.id for j in claim(backend, at(6))] == [later.id]
    assert stored(backend, other.id).state is JobState.SCHEDULED


def test_run_now_keeps_an_earlier_run_at_and_a_retrys_attempt(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    waiting = finish(
        backend, running, JobState.SCHEDULED, at(1), run_at=at(300), error=error(1, "flaky")
    )
    overdue = enqueue_one(backend, new(run_at=at(2)))

    due = backend.run_now(waiting.id, at(10))
    kept = backend.run_now(overdue.id, at(10))

    assert due is not None and kept is not None
    assert (due.state, due.attempt, due.errors) == (JobState.PENDING, 1, waiting.errors)
    assert (kept.state, kept.run_at) == (JobState.PENDING, at(2))


def test_run_now_leaves_other_states_alone(backend: Backend) -> None:
    pending = enqueue_one(backend)
    done = job_in(backend, JobState.COMPLETED)

    assert backend.run_now(pending.id, at(5)) == stored(backend, pending.id) == pending
    assert backend.run_now(done.id, at(5)) == done
    assert backend.run_now("no-such-job", at(5)) is None
