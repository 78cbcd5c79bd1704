"""Rate limits (a queue's `rate_limit`, a job's `rate_limit` per `rate_key`), the same on every
store: never more than N starts in any window, fleet-wide; a job over the limit stays pending
and the claim says when the window next allows a start."""

from __future__ import annotations

import threading
from datetime import timedelta

from conveyor.backends.protocol import Backend
from conveyor.model.job import Job, JobState
from conveyor.model.queues import QueueChange

from .support import T0, at, claim, claim_batch, enqueue, finish, new, stored


def rate_queue(backend: Backend, name: str, rate: str) -> None:
    backend.change_queue_settings(name, QueueChange.by_operator(rate_limit=rate), T0)


def test_a_queue_rate_allows_n_starts_per_window_and_names_when_the_next_is_allowed(
    backend: Backend,
) -> None:
    rate_queue(backend, "partner-api", "3/s")
    waiting = enqueue(backend, *[new(queue="partner-api") for _ in range(5)])
    jobs = enqueue(backend)  # the default queue is not held up
    first = claim_batch(backend, at(10), limit=10)
    assert sorted(j.queue for j in first.jobs) == ["default"] + ["partner-api"] * 3
    left = {j.id for j in waiting} - {j.id for j in first.jobs}
    assert jobs and all(stored(backend, i).state is JobState.PENDING for i in left)
    # the two left stay pending; the claim says when the window allows the next start
    again = claim_batch(backend, at(10.5), limit=10)
    assert again.jobs == [] and again.next_run_at == at(11)
    assert claim(backend, at(10.999), limit=10) == []
    later = claim(backend, at(11), limit=10)
    assert len(later) == 2


def test_a_sliding_window_counts_every_start_of_the_last_window(backend: Backend) -> None:
    rate_queue(backend, "q", "2/s")
    enqueue(backend, *[new(queue="q") for _ in range(6)])
    assert len(claim(backend, at(0), limit=1)) == 1
    assert len(claim(backend, at(0.6), limit=5)) == 1  # 2 in (-0.4, 0.6]
    assert claim(backend, at(0.9), limit=5) == []
    assert len(claim(backend, at(1.0), limit=5)) == 1  # the start at 0 left the window
    assert claim_batch(backend, at(1.2), limit=5).next_run_at == at(1.6)
    assert len(claim(backend, at(1.6), limit=5)) == 1


def test_a_job_rate_counts_per_rate_key_and_other_keys_are_not_held_up(backend: Backend) -> None:
    busy = [new(rate_limit="2/m", rate_key="t:1", priority=5) for _ in range(5)]
    quiet = [new(rate_limit="2/m", rate_key="t:2") for _ in range(2)]
    enqueue(backend, *busy, *quiet)
    taken = claim(backend, at(0), limit=3) + claim(backend, at(1), limit=10)
    assert sorted(j.rate_key for j in taken) == ["t:1", "t:1", "t:2", "t:2"]
    left = claim_batch(backend, at(30), limit=10)
    assert left.jobs == [] and left.next_run_at == at(60)
    assert len(claim(backend, at(60), limit=10)) == 2
    [job] = [j for j in taken if j.rate_key == "t:2"][:1]
    assert stored(backend, job.id).rate_limit == "2/m"


def test_a_rate_is_kept_through_finishes_and_retries(backend: Backend) -> None:
    rate_queue(backend, "q", "1/h")
    [job] = enqueue(backend, new(queue="q", max_attempts=3))
    [running] = claim(backend, at(0))
    finish(backend, running, JobState.PENDING, at(1))  # a retry due at once
    assert claim(backend, at(2)) == []  # the hour's one start is spent
    assert claim_batch(backend, at(2)).next_run_at == at(3600)
    assert [j.id for j in claim(backend, at(3600))] == [job.id]


def test_concurrent_claims_never_pass_a_rate(backend: Backend) -> None:
    rate_queue(backend, "q", "5/s")
    enqueue(backend, *[new(queue="q") for _ in range(40)])
    taken: list[Job] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def claimer(n: int) -> None:
        start.wait()
        for step in range(4):
            jobs = claim(backend, at(step * 0.5), worker=f"w{n}", limit=3)
            with lock:
                taken.extend(jobs)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    starts = sorted(j.started_at for j in taken if j.started_at is not None)
    for i, first in enumerate(starts):
        inside = [s for s in starts[i:] if s < first + timedelta(seconds=1)]
        assert len(inside) <= 5
    assert len(taken) >= 5


def test_queues_count_the_due_jobs_a_rate_or_a_key_holds_back(backend: Backend) -> None:
    rate_queue(backend, "partner-api", "2/m")
    enqueue(
        backend,
        *[new(queue="partner-api") for _ in range(5)],
        *[new(rate_limit="1/h", rate_key="t") for _ in range(3)],
        *[new(concurrency_key="k", key_concurrency=2) for _ in range(4)],
        new(name="plain"),
    )
    claim(backend, at(1), limit=100)
    by_name = {q.name: q for q in backend.queues(at(2))}
    api, default = by_name["partner-api"], by_name["default"]
    assert (api.due, api.held_by_rate, api.held_by_key) == (3, 3, 0)  # the queue's rate: spent
    assert (default.due, default.held_by_rate, default.held_by_key) == (4, 2, 2)
    assert api.settings.rate_limit == "2/m"
    later = {q.name: q for q in backend.queues(at(61))}  # the minute's window has passed
    assert later["partner-api"].held_by_rate == 0


def test_prune_forgets_only_windows_older_than_the_cut_off(backend: Backend) -> None:
    rate_queue(backend, "q", "1/h")
    enqueue(backend, *[new(queue="q") for _ in range(2)])
    enqueue(backend, *[new(rate_limit="1/h", rate_key=f"t{i}") for i in range(2)])
    assert len(claim(backend, at(0), limit=10)) == 3  # the queue's one start, each key's one
    assert backend.prune_rate_windows(at(0)) == 0  # nothing started before 0
    assert claim(backend, at(10)) == []
    assert backend.prune_rate_windows(at(3601)) == 3  # all left every window behind
    # a forgotten window allows its whole rate again, as it would have anyway an hour later
    assert len(claim(backend, at(3601))) == 1
    assert backend.prune_rate_windows(at(3601)) == 0  # the new start is not before the cut-off
