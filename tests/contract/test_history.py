"""History: finished jobs rolled up per queue and minute, read by stretch, kept after the jobs
are pruned, pruned after its own retention (model/history.py)."""

from __future__ import annotations

import threading
from datetime import timedelta

from conveyor.backends.protocol import Backend
from conveyor.model.history import HistoryPoint
from conveyor.model.job import JobState
from conveyor.model.settings import Settings
from conveyor.runtime.environment import Environment
from conveyor.runtime.maintenance import Sweeper
from conveyor.runtime.registry import Registry

from .support import T0, MakeBackend, at, claim, enqueue, finish, new

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def run_jobs(backend: Backend, queue: str, ends: list[tuple[float, float, JobState]]) -> None:
    """Enqueue one job per (start, end, state) on `queue` (due at 0), claim each at its start
    and finish it at its end."""
    for start, end, state in ends:
        enqueue(backend, new(queue=queue), now=T0)
        (job,) = claim(backend, at(start), limit=1, queues=[queue])
        finish(backend, job, state, at(end))


def totals(points: list[HistoryPoint]) -> tuple[int, int, int]:
    """Completed, failed and cancelled over the points."""
    return (
        sum(p.completed for p in points),
        sum(p.failed for p in points),
        sum(p.cancelled for p in points),
    )


def test_minutes_are_counted_per_queue_with_wait_and_run_times(backend: Backend) -> None:
    run_jobs(
        backend,
        "mail",
        [(1, 1.005, JobState.COMPLETED), (2, 2.3, JobState.FAILED), (3, 70, JobState.COMPLETED)],
    )
    run_jobs(backend, "pdf", [(10, 15, JobState.COMPLETED)])

    assert backend.roll_up_history(at(120)) == at(120)

    first, second = backend.history(T0, at(3600), MINUTE, "mail")
    assert (first.start, first.completed, first.failed, first.cancelled) == (T0, 1, 1, 0)
    assert first.wait_count == 2 and abs(first.wait_sum - 3) < 1e-3
    assert first.run_count == 2 and abs(first.run_sum - 0.305) < 1e-3
    assert first.run_buckets == (1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0)  # 5 ms and 300 ms
    assert (second.start, second.completed, second.run_buckets[9]) == (at(60), 1, 1)  # 67 s
    (pdf,) = backend.history(T0, at(3600), MINUTE, "pdf")
    assert (pdf.completed, pdf.run_count, pdf.run_buckets[7]) == (1, 1, 1)  # 5 s
    every = backend.history(T0, at(3600), MINUTE)
    assert [(p.start, p.completed, p.failed) for p in every] == [(T0, 2, 1), (at(60), 1, 0)]


def test_stretches_add_up_minutes(backend: Backend) -> None:
    run_jobs(backend, "q", [(1, 5, JobState.COMPLETED), (600, 610, JobState.FAILED)])
    run_jobs(backend, "q", [(1000, 1001, JobState.COMPLETED)])
    backend.roll_up_history(at(1200))

    quarters = backend.history(T0, at(3600), timedelta(minutes=15))
    assert [(p.start, p.completed, p.failed) for p in quarters] == [(T0, 1, 1), (at(900), 1, 0)]
    (hour,) = backend.history(T0, at(3600), HOUR)
    assert (hour.completed, hour.failed, hour.run_count) == (2, 1, 3)


def test_minutes_not_rolled_up_yet_are_read_from_the_jobs(backend: Backend) -> None:
    run_jobs(backend, "q", [(1, 2, JobState.COMPLETED), (100, 101, JobState.FAILED)])
    before = backend.history(T0, at(3600), MINUTE)

    backend.roll_up_history(at(60))  # the first minute only
    during = backend.history(T0, at(3600), MINUTE)
    backend.roll_up_history(at(180))
    after = backend.history(T0, at(3600), MINUTE)

    assert before == during == after
    assert [(p.start, p.completed, p.failed) for p in after] == [(T0, 1, 0), (at(60), 0, 1)]


def test_the_range_bounds_what_is_read(backend: Backend) -> None:
    run_jobs(backend, "q", [(1, 2, JobState.COMPLETED), (200, 201, JobState.COMPLETED)])
    backend.roll_up_history(at(120))

    assert totals(backend.history(at(60), at(3600), MINUTE)) == (1, 0, 0)  # the live one
    assert totals(backend.history(T0, at(60), MINUTE)) == (1, 0, 0)  # the rolled-up one
    assert backend.history(T0, at(3600), MINUTE, "other") == []


def test_rolling_up_again_never_counts_a_job_twice(backend: Backend) -> None:
    run_jobs(backend, "q", [(1, 2, JobState.COMPLETED), (70, 75, JobState.COMPLETED)])

    assert backend.roll_up_history(at(120)) == at(120)
    assert backend.roll_up_history(at(120)) == at(120)
    assert backend.roll_up_history(at(60)) == at(120)  # never backwards
    backend.roll_up_history(at(180))

    assert totals(backend.history(T0, at(3600), MINUTE)) == (2, 0, 0)


def test_two_maintenance_callers_at_once_never_double_count(
    make_backend: MakeBackend, store_url: str
) -> None:
    first = make_backend(Settings())
    # memory:// opens a new, empty store: its callers share one object
    second = first if store_url.startswith("memory") else make_backend(Settings())
    run_jobs(first, "q", [(i, i + 0.5, JobState.COMPLETED) for i in range(0, 600, 10)])
    start = threading.Barrier(8)

    def roll(backend: Backend, minutes: int) -> None:
        start.wait(timeout=10)
        backend.roll_up_history(at(60 * minutes))

    threads = [
        threading.Thread(target=roll, args=(first if i % 2 else second, 5 + i % 3 * 5))
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    first.roll_up_history(at(900))
    assert totals(first.history(T0, at(3600), MINUTE)) == (60, 0, 0)
    assert first.prune(at(3600), at(3600)) == 60
    assert totals(second.history(T0, at(3600), MINUTE)) == (60, 0, 0)


def test_history_survives_the_pruning_of_the_finished_jobs(backend: Backend) -> None:
    run_jobs(
        backend,
        "q",
        [(1, 2, JobState.COMPLETED), (3, 4, JobState.FAILED), (65, 66, JobState.COMPLETED)],
    )
    backend.roll_up_history(at(120))
    kept = backend.history(T0, at(3600), MINUTE)

    assert backend.prune(at(3600), at(3600)) == 3

    assert backend.history(T0, at(3600), MINUTE) == kept
    assert totals(kept) == (2, 1, 0)


def test_rows_older_than_the_retention_are_pruned(backend: Backend) -> None:
    run_jobs(backend, "a", [(1, 2, JobState.COMPLETED), (61, 62, JobState.COMPLETED)])
    run_jobs(backend, "b", [(1, 3, JobState.COMPLETED), (121, 122, JobState.FAILED)])
    backend.roll_up_history(at(180))
    backend.prune(at(3600), at(3600))

    assert backend.prune_history(at(60)) == 2  # minute 0 of both queues
    assert backend.prune_history(at(60)) == 0

    left = backend.history(T0, at(3600), MINUTE)
    assert [(p.start, p.completed, p.failed) for p in left] == [(at(60), 1, 0), (at(120), 0, 1)]


def test_cancelled_jobs_are_counted_without_a_run_time(backend: Backend) -> None:
    (job,) = enqueue(backend, new(queue="q"))
    backend.cancel(job.id, at(5))
    backend.roll_up_history(at(60))

    (point,) = backend.history(T0, at(3600), MINUTE)
    assert (point.cancelled, point.wait_count, point.run_count) == (1, 0, 0)


def test_the_sweeper_rolls_up_before_it_prunes(make_backend: MakeBackend) -> None:
    settings = Settings(retention_completed=0.0, retention_failed=0.0)
    backend = make_backend(settings)
    now = [at(0)]
    sweeper = Sweeper(Environment(backend, Registry(), settings, clock=lambda: now[0]))
    run_jobs(backend, "q", [(1, 2, JobState.COMPLETED), (100, 101, JobState.FAILED)])

    now[0] = at(150)  # minute 0 closed a minute ago, minute 1 not yet
    sweeper.sweep(0.0)

    # with a retention of 0 only the job rolled up is gone; the other waits for its minute
    assert totals(backend.history(T0, at(3600), MINUTE)) == (1, 1, 0)
    assert backend.count_prunable(at(3600), at(3600)) == {JobState.FAILED: 1}

    now[0] = at(300)
    sweeper.sweep(1000.0)

    assert backend.count_prunable(at(3600), at(3600)) == {}
    assert totals(backend.history(T0, at(3600), MINUTE)) == (1, 1, 0)


def test_the_sweeper_prunes_history_past_its_retention(make_backend: MakeBackend) -> None:
    settings = Settings(history_retention=3600.0)
    backend = make_backend(settings)
    now = [at(0)]
    sweeper = Sweeper(Environment(backend, Registry(), settings, clock=lambda: now[0]))
    run_jobs(backend, "q", [(1, 2, JobState.COMPLETED)])
    now[0] = at(200)
    sweeper.sweep(0.0)
    backend.prune(at(3600), at(3600))
    assert totals(backend.history(T0, at(3600), MINUTE)) == (1, 0, 0)

    now[0] = at(3700)
    sweeper.sweep(1000.0)

    assert backend.history(T0, at(7200), MINUTE) == []
