"""Producers: single and bulk enqueue, delayed jobs, unique keys."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.backends.records import JobFilter
from conveyor.model.job import JobState

from .support import T0, at, claim_one, enqueue, enqueue_one, finish, new, stored


def test_enqueue_stores_every_field_and_get_returns_it(backend: Backend) -> None:
    request = new(
        "send_email",
        queue="emails",
        args={"user_id": 42, "tags": ["a", "b"], "nested": {"x": 1.5, "none": None}},
        metadata={"request_id": "r-1"},
        priority=7,
        max_attempts=5,
        timeout=12.5,
        unique_key="welcome:42",
        recurring_name="nightly",
        id="job-0001",
    )
    [result] = backend.enqueue([request], T0)

    assert result.created is True
    job = result.job
    assert (job.id, job.name, job.queue, job.priority) == ("job-0001", "send_email", "emails", 7)
    assert job.args == {"user_id": 42, "tags": ["a", "b"], "nested": {"x": 1.5, "none": None}}
    assert job.metadata == {"request_id": "r-1"}
    assert (job.max_attempts, job.timeout) == (5, 12.5)
    assert (job.unique_key, job.recurring_name) == ("welcome:42", "nightly")
    assert (job.state, job.attempt, job.run_at, job.created_at) == (JobState.PENDING, 0, T0, T0)
    assert (job.started_at, job.finished_at, job.worker_id, job.lease_expires_at) == (
        None,
        None,
        None,
        None,
    )
    assert (job.progress, job.logs, job.errors, job.result, job.cancel_requested) == (
        0.0,
        (),
        (),
        None,
        False,
    )
    assert backend.get("job-0001") == job


def test_job_due_now_is_pending_and_a_later_one_is_scheduled(backend: Backend) -> None:
    due, past, later = enqueue(backend, new(), new(run_at=at(-5)), new(run_at=at(60)), now=T0)

    assert (due.state, due.run_at) == (JobState.PENDING, T0)
    assert (past.state, past.run_at) == (JobState.PENDING, at(-5))
    assert (later.state, later.run_at) == (JobState.SCHEDULED, at(60))


def test_bulk_enqueue_keeps_order_and_ids(backend: Backend) -> None:
    requests = [new(f"job{i}", id=f"id-{9 - i}") for i in range(6)]

    results = backend.enqueue(requests, T0)

    assert [r.job.id for r in results] == [f"id-{9 - i}" for i in range(6)]
    assert [r.job.name for r in results] == [f"job{i}" for i in range(6)]
    assert all(r.created for r in results)
    assert backend.list_jobs(JobFilter()).total == 6


def test_enqueue_of_nothing_stores_nothing(backend: Backend) -> None:
    assert backend.enqueue([], T0) == []
    assert backend.list_jobs(JobFilter()).total == 0


def test_unique_key_returns_the_active_job_instead_of_a_new_one(backend: Backend) -> None:
    first = enqueue_one(backend, new(unique_key="k", args={"n": 1}))

    [again] = backend.enqueue([new(unique_key="k", args={"n": 2})], at(1))

    assert again.created is False
    assert again.job.id == first.id
    assert again.job.args == {"n": 1}
    assert backend.list_jobs(JobFilter()).total == 1


def test_unique_key_holds_while_scheduled_and_while_running(backend: Backend) -> None:
    scheduled = enqueue_one(backend, new(unique_key="later", run_at=at(60)))
    enqueue_one(backend, new(unique_key="now"))
    running = claim_one(backend)

    [dup_scheduled, dup_running] = backend.enqueue(
        [new(unique_key="later"), new(unique_key="now")], at(1)
    )

    assert (dup_scheduled.created, dup_scheduled.job.id) == (False, scheduled.id)
    assert (dup_running.created, dup_running.job.id) == (False, running.id)
    assert dup_running.job.state is JobState.RUNNING


def test_unique_key_is_free_again_once_the_job_finished(backend: Backend) -> None:
    first = enqueue_one(backend, new(unique_key="k"))
    finish(backend, claim_one(backend), JobState.COMPLETED, at(1))

    [second] = backend.enqueue([new(unique_key="k")], at(2))

    assert second.created is True
    assert second.job.id != first.id
    assert stored(backend, first.id).state is JobState.COMPLETED


def test_unique_key_is_free_again_once_the_job_was_cancelled(backend: Backend) -> None:
    first = enqueue_one(backend, new(unique_key="k"))
    backend.cancel(first.id, at(1))

    [second] = backend.enqueue([new(unique_key="k")], at(2))

    assert second.created is True
    assert second.job.id != first.id


def test_duplicates_inside_one_batch_resolve_to_the_first(backend: Backend) -> None:
    results = backend.enqueue(
        [
            new("a", unique_key="k", id="id-a"),
            new("b", unique_key="k", id="id-b"),
            new("c", unique_key="other", id="id-c"),
            new("d", id="id-d"),
            new("e", unique_key="k", id="id-e"),
        ],
        T0,
    )

    assert [r.created for r in results] == [True, False, True, True, False]
    assert [r.job.id for r in results] == ["id-a", "id-a", "id-c", "id-d", "id-a"]
    assert backend.get("id-b") is None
    assert backend.get("id-e") is None
    assert backend.list_jobs(JobFilter()).total == 3


def test_jobs_without_unique_key_are_never_merged(backend: Backend) -> None:
    results = backend.enqueue([new("same"), new("same")], T0)

    assert [r.created for r in results] == [True, True]
    assert results[0].job.id != results[1].job.id
