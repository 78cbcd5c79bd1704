"""Many callers at once: every verb is atomic, so no job is ever taken twice."""

from __future__ import annotations

import threading

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import T0, at, claim, enqueue, new, stored


def test_concurrent_claims_take_each_job_exactly_once(backend: Backend) -> None:
    jobs = enqueue(backend, *[new(id=f"id-{i:03}") for i in range(120)])
    taken: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        mine = taken.setdefault(worker, [])
        try:
            while batch := claim(backend, at(1), worker=worker, limit=3):
                mine.extend(job.id for job in batch)
        except BaseException as exc:  # surfaced below: a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert errors == []
    all_taken = [job_id for ids in taken.values() for job_id in ids]
    assert sorted(all_taken) == sorted(job.id for job in jobs)
    for worker, ids in taken.items():
        assert all(stored(backend, job_id).worker_id == worker for job_id in ids)


def test_claims_stay_in_order_after_many_jobs_left_the_queue(backend: Backend) -> None:
    jobs = enqueue(backend, *[new(priority=i % 3, id=f"id-{i:04}") for i in range(1500)], now=T0)
    kept = [job for i, job in enumerate(jobs) if i % 10 == 0]
    for i, job in enumerate(jobs):
        if i % 10:
            backend.cancel(job.id, at(1))

    claimed = claim(backend, at(2), limit=1000)

    expected = sorted(kept, key=lambda job: (-job.priority, job.id))
    assert [job.id for job in claimed] == [job.id for job in expected]
    assert all(job.state is JobState.RUNNING for job in claimed)
