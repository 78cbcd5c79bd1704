"""Workers take due jobs: order, delays, queues, limits."""

from __future__ import annotations

from datetime import timedelta

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import (
    LEASE,
    T0,
    at,
    claim,
    claim_batch,
    claim_one,
    enqueue,
    enqueue_one,
    finish,
    new,
    stored,
)


def test_claim_runs_the_job_for_the_worker(backend: Backend) -> None:
    job = enqueue_one(backend)

    [running] = claim(backend, at(5), worker="w7")

    assert running.id == job.id
    assert running.state is JobState.RUNNING
    assert running.attempt == 1
    assert running.worker_id == "w7"
    assert running.started_at == at(5)
    assert running.lease_expires_at == at(5) + timedelta(seconds=LEASE)
    assert stored(backend, job.id) == running


def test_nothing_to_claim_in_an_empty_store(backend: Backend) -> None:
    claimed = claim_batch(backend)

    assert claimed.jobs == []
    assert claimed.next_run_at is None


def test_a_claimed_job_is_not_claimed_again(backend: Backend) -> None:
    enqueue_one(backend)
    claim_one(backend, worker="w1")

    assert claim(backend, at(1), worker="w2") == []


def test_a_delayed_job_waits_for_its_run_at(backend: Backend) -> None:
    job = enqueue_one(backend, new(run_at=at(60)))

    early = claim_batch(backend, at(59))
    assert early.jobs == []
    assert early.next_run_at == at(60)
    assert stored(backend, job.id).state is JobState.SCHEDULED

    [due] = claim(backend, at(60))
    assert due.id == job.id
    assert due.state is JobState.RUNNING


def test_a_delayed_job_is_claimable_after_its_run_at(backend: Backend) -> None:
    job = enqueue_one(backend, new(run_at=at(60)))

    assert [j.id for j in claim(backend, at(3600))] == [job.id]


def test_higher_priority_first_then_first_in_first_out(backend: Backend) -> None:
    for i, priority in enumerate([0, 5, 1, 5, 0, 1]):
        enqueue(backend, new(f"p{priority}-{i}", priority=priority), now=at(i))

    jobs = claim(backend, at(10))

    assert [j.name for j in jobs] == ["p5-1", "p5-3", "p1-2", "p1-5", "p0-0", "p0-4"]


def test_within_a_priority_the_earlier_run_at_goes_first(backend: Backend) -> None:
    enqueue(
        backend,
        new("late", run_at=at(3), id="id-a"),
        new("early", run_at=at(1), id="id-z"),
        new("middle", run_at=at(2), id="id-m"),
    )

    assert [j.name for j in claim(backend, at(10))] == ["early", "middle", "late"]


def test_same_priority_and_run_at_go_in_id_order(backend: Backend) -> None:
    enqueue(backend, new(id="id-b"), new(id="id-c"), new(id="id-a"))

    assert [j.id for j in claim(backend)] == ["id-a", "id-b", "id-c"]


def test_claim_takes_at_most_limit_jobs(backend: Backend) -> None:
    enqueue(backend, *[new(id=f"id-{i}") for i in range(5)])

    sizes = [len(claim(backend, limit=2)) for _ in range(4)]

    assert sizes == [2, 2, 1, 0]


def test_claim_only_from_the_queues_asked_for(backend: Backend) -> None:
    enqueue(backend, new("a1", queue="a"), new("b1", queue="b"), new("a2", queue="a"))

    assert claim(backend, queues=["c"]) == []
    assert sorted(j.name for j in claim(backend, queues=["a"])) == ["a1", "a2"]
    assert [j.name for j in claim(backend, queues=None)] == ["b1"]


def test_priority_order_holds_across_queues(backend: Backend) -> None:
    enqueue(
        backend,
        new("low", queue="a", priority=1),
        new("high", queue="b", priority=9),
        new("mid", queue="c", priority=5),
    )

    assert [j.name for j in claim(backend, queues=["a", "b", "c"])] == ["high", "mid", "low"]


def test_queue_limit_of_one_runs_one_job_at_a_time(backend: Backend) -> None:
    enqueue(backend, *[new(f"s{i}", queue="serial", id=f"id-s{i}") for i in range(3)], now=T0)
    enqueue(backend, new("o1", queue="other"), new("o2", queue="other"), now=at(1))
    limits = {"serial": 1}

    first = claim(backend, at(2), worker="w1", limit=100, queue_limits=limits)
    assert sorted(j.name for j in first) == ["o1", "o2", "s0"]
    assert claim(backend, at(3), worker="w2", limit=100, queue_limits=limits) == []

    [s0] = [j for j in first if j.queue == "serial"]
    finish(backend, s0, JobState.COMPLETED, at(4))
    [s1] = claim(backend, at(5), worker="w2", limit=100, queue_limits=limits)
    assert s1.name == "s1"
    assert claim(backend, at(6), worker="w1", limit=100, queue_limits=limits) == []


def test_queue_limit_counts_jobs_running_on_every_worker(backend: Backend) -> None:
    enqueue(backend, *[new(queue="q", id=f"id-{i}") for i in range(4)])
    limits = {"q": 2}

    assert len(claim(backend, worker="w1", limit=1, queue_limits=limits)) == 1
    assert len(claim(backend, worker="w2", limit=10, queue_limits=limits)) == 1
    assert claim(backend, worker="w3", limit=10, queue_limits=limits) == []


def test_queue_limit_frees_when_a_running_job_goes_back_to_wait(backend: Backend) -> None:
    enqueue(backend, new(queue="q", id="id-1"), new(queue="q", id="id-2"))
    limits = {"q": 1}
    first = claim_one(backend, queue_limits=limits)

    finish(backend, first, JobState.PENDING, at(1), count_attempt=False)

    assert len(claim(backend, at(2), queue_limits=limits)) == 1


def test_next_run_at_is_the_soonest_future_job_of_the_asked_queues(backend: Backend) -> None:
    enqueue(
        backend,
        new("now", queue="a"),
        new(queue="a", run_at=at(50)),
        new(queue="a", run_at=at(40)),
        new(queue="b", run_at=at(10)),
    )

    claimed = claim_batch(backend, queues=["a"])

    assert [j.name for j in claimed.jobs] == ["now"]
    assert claimed.next_run_at == at(40)
    assert claim_batch(backend, queues=None).next_run_at == at(10)


def test_next_run_at_ignores_future_jobs_that_were_cancelled(backend: Backend) -> None:
    soon = enqueue_one(backend, new(run_at=at(10)))
    enqueue_one(backend, new(run_at=at(20)))

    backend.cancel(soon.id, at(1))

    assert claim_batch(backend, at(2)).next_run_at == at(20)
