"""Heartbeats, lost workers, due scheduled jobs and retention."""

from __future__ import annotations

from dataclasses import replace

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import (
    at,
    claim,
    claim_one,
    enqueue,
    enqueue_one,
    error,
    finish,
    job_in,
    new,
    stored,
    worker_info,
)


def test_heartbeat_extends_the_lease_so_the_job_is_not_rescued(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1", lease=30)

    backend.heartbeat(worker_info("w1", at(20)), [running.id], at(60))

    assert stored(backend, running.id).lease_expires_at == at(60)
    assert backend.rescue_expired(at(45)) == []
    assert stored(backend, running.id).state is JobState.RUNNING
    assert backend.rescue_expired(at(61)) == [running.id]


def test_heartbeat_does_not_extend_jobs_of_another_worker(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1", lease=30)

    backend.heartbeat(worker_info("w2", at(20)), [running.id], at(60))

    assert stored(backend, running.id).lease_expires_at == at(30)


def test_heartbeat_returns_the_jobs_asked_to_cancel(backend: Backend) -> None:
    enqueue(backend, new(id="id-1"), new(id="id-2"), new(id="id-3"))
    one, two, three = claim(backend, worker="w1")
    backend.cancel(two.id, at(1))

    asked = backend.heartbeat(worker_info("w1", at(2)), [one.id, two.id, three.id], at(60))

    assert asked.cancel_requested == {two.id}
    assert asked.requested is None


def test_heartbeat_records_the_worker(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.heartbeat(worker_info("w2", at(1)), [], at(60))
    backend.heartbeat(worker_info("w1", at(5)), [], at(60))

    workers = {w.id: w for w in backend.workers()}

    assert set(workers) == {"w1", "w2"}
    assert workers["w1"] == worker_info("w1", at(5))
    assert workers["w2"] == worker_info("w2", at(1))


def test_worker_fields_are_kept(backend: Backend) -> None:
    info = replace(worker_info("w9", at(3)), queues=None, concurrency=16, pid=77)

    backend.heartbeat(info, [], at(60))

    assert backend.workers() == [info]


def test_unregister_worker_forgets_it(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.heartbeat(worker_info("w2", at(1)), [], at(60))

    backend.unregister_worker("w1")
    backend.unregister_worker("never-seen")

    assert [w.id for w in backend.workers()] == ["w2"]


def test_prune_workers_forgets_only_the_silent_ones(backend: Backend) -> None:
    backend.heartbeat(worker_info("old", at(10)), [], at(60))
    backend.heartbeat(worker_info("new", at(50)), [], at(100))

    assert backend.prune_workers(at(30)) == 1

    assert [w.id for w in backend.workers()] == ["new"]
    assert backend.prune_workers(at(30)) == 0


def test_rescue_puts_a_lost_job_back_with_its_attempt_counted(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1", lease=10)

    assert backend.rescue_expired(at(10)) == []
    assert backend.rescue_expired(at(11)) == [running.id]

    rescued = stored(backend, running.id)
    assert (rescued.state, rescued.attempt, rescued.run_at) == (JobState.PENDING, 1, at(11))
    assert (rescued.worker_id, rescued.lease_expires_at) == (None, None)
    [lost] = rescued.errors
    assert (lost.kind, lost.attempt) == ("lost", 1)
    assert lost.message
    assert backend.rescue_expired(at(12)) == []
    assert [j.attempt for j in claim(backend, at(12), worker="w2")] == [2]


def test_rescue_fails_a_job_with_no_attempt_left(backend: Backend) -> None:
    enqueue_one(backend, new(max_attempts=2))
    first = claim_one(backend, lease=10)
    finish(backend, first, JobState.PENDING, at(1), error=error(1))
    claim_one(backend, at(2), lease=10)

    assert len(backend.rescue_expired(at(13))) == 1

    failed = stored(backend, first.id)
    assert (failed.state, failed.attempt, failed.finished_at) == (JobState.FAILED, 2, at(13))
    assert [e.kind for e in failed.errors] == ["error", "lost"]
    assert claim(backend, at(14)) == []


def test_rescue_leaves_live_leases_alone(backend: Backend) -> None:
    enqueue(backend, new(queue="short"), new(queue="long"))
    short = claim_one(backend, queues=["short"], lease=10)
    long = claim_one(backend, queues=["long"], lease=100)

    assert backend.rescue_expired(at(50)) == [short.id]
    assert stored(backend, long.id).state is JobState.RUNNING


def test_rescue_cancels_a_lost_job_whose_cancellation_was_asked(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, lease=10)
    backend.cancel(running.id, at(1))

    assert backend.rescue_expired(at(11)) == [running.id]

    job = stored(backend, running.id)
    assert (job.state, job.finished_at) == (JobState.CANCELLED, at(11))
    assert [e.kind for e in job.errors] == ["lost"]


def test_promote_scheduled_makes_due_jobs_pending(backend: Backend) -> None:
    a, b, c = enqueue(backend, new(run_at=at(10)), new(run_at=at(20)), new())

    assert backend.promote_scheduled(at(15)) == 1
    assert [stored(backend, j.id).state for j in (a, b, c)] == [
        JobState.PENDING,
        JobState.SCHEDULED,
        JobState.PENDING,
    ]
    assert backend.promote_scheduled(at(15)) == 0
    assert backend.promote_scheduled(at(20)) == 1
    assert stored(backend, b.id).run_at == at(20)


def test_promote_skips_cancelled_scheduled_jobs(backend: Backend) -> None:
    job = enqueue_one(backend, new(run_at=at(10)))
    backend.cancel(job.id, at(1))

    assert backend.promote_scheduled(at(20)) == 0
    assert stored(backend, job.id).state is JobState.CANCELLED


def test_prune_deletes_finished_jobs_by_their_retention(backend: Backend) -> None:
    completed = job_in(backend, JobState.COMPLETED)  # all finished at at(1)
    cancelled = job_in(backend, JobState.CANCELLED)
    failed = job_in(backend, JobState.FAILED)

    assert backend.prune(completed_before=at(1), failed_before=at(1)) == 0
    assert backend.prune(completed_before=at(2), failed_before=at(1)) == 2

    assert backend.get(completed.id) is None
    assert backend.get(cancelled.id) is None
    assert backend.get(failed.id) is not None
    assert backend.prune(completed_before=at(2), failed_before=at(2)) == 1
    assert backend.get(failed.id) is None


def test_count_prunable_counts_what_prune_would_delete_by_state(backend: Backend) -> None:
    for state in (JobState.COMPLETED, JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED):
        job_in(backend, state)  # all finished at at(1)
    for state in (JobState.SCHEDULED, JobState.PENDING, JobState.RUNNING):
        job_in(backend, state)
    retried = job_in(backend, JobState.FAILED)
    backend.retry(retried.id, at(50))  # pending again: its old finish does not count

    assert backend.count_prunable(completed_before=at(1), failed_before=at(1)) == {}
    assert backend.count_prunable(completed_before=at(2), failed_before=at(1)) == {
        JobState.COMPLETED: 2,
        JobState.CANCELLED: 1,
    }
    everything = backend.count_prunable(completed_before=at(2), failed_before=at(2))
    assert everything == {JobState.COMPLETED: 2, JobState.CANCELLED: 1, JobState.FAILED: 1}
    assert backend.prune(completed_before=at(2), failed_before=at(2)) == 4  # as counted
    assert backend.count_prunable(completed_before=at(2), failed_before=at(2)) == {}


def test_prune_never_touches_active_jobs(backend: Backend) -> None:
    active = [
        job_in(backend, state)
        for state in (
            JobState.SCHEDULED,
            JobState.PENDING,
            JobState.RUNNING,
        )
    ]

    assert backend.prune(completed_before=at(10**6), failed_before=at(10**6)) == 0

    assert [stored(backend, j.id).state for j in active] == [
        JobState.SCHEDULED,
        JobState.PENDING,
        JobState.RUNNING,
    ]


def test_a_retried_job_is_not_pruned_by_its_old_finish(backend: Backend) -> None:
    failed = job_in(backend, JobState.FAILED)
    backend.retry(failed.id, at(50))

    assert backend.prune(completed_before=at(100), failed_before=at(100)) == 0
    assert stored(backend, failed.id).state is JobState.PENDING
