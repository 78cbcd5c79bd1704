"""Stores that declare a bound (`Bounded`: `max_queue_size`) wait or refuse when it is reached."""

from __future__ import annotations

import threading
from typing import Literal

import pytest

from conveyor.backends.protocol import Backend, Bounded
from conveyor.backends.records import JobFilter
from conveyor.errors import QueueFull
from conveyor.model.job import Enqueued
from conveyor.model.settings import Settings

from .support import T0, MakeBackend, at, claim, enqueue, new


def bounded(
    make_backend: MakeBackend,
    size: int,
    mode: Literal["wait", "refuse"],
    timeout: float = 5.0,
) -> Backend:
    """A store built with a bound of `size` waiting jobs; skipped if its kind declares none."""
    settings = Settings(max_queue_size=size, queue_full=mode, queue_full_timeout=timeout)
    backend = make_backend(settings)
    if not isinstance(backend, Bounded):
        pytest.skip("this store declares no bound on waiting jobs (not a Bounded store)")
    assert (backend.max_queue_size, backend.queue_full) == (size, mode)
    return backend


def total(backend: Backend) -> int:
    """How many jobs the store holds."""
    return backend.list_jobs(JobFilter()).total


def test_refuse_mode_raises_at_once_when_full(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 3, "refuse")
    enqueue(backend, new(), new(), new(run_at=at(60)))

    with pytest.raises(QueueFull, match="max_queue_size"):
        backend.enqueue([new()], T0)

    assert total(backend) == 3


def test_a_batch_that_does_not_fit_stores_nothing(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 3, "refuse")
    enqueue(backend, new(), new())

    with pytest.raises(QueueFull):
        backend.enqueue([new(id="id-a"), new(id="id-b")], T0)

    assert total(backend) == 2
    assert backend.get("id-a") is None


def test_only_waiting_jobs_count_toward_the_bound(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 2, "refuse")
    enqueue(backend, new(), new())
    claim(backend, limit=2)

    enqueue(backend, new(), new())

    assert total(backend) == 4


def test_a_duplicate_unique_key_fits_in_a_full_store(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 1, "refuse")
    [first] = backend.enqueue([new(unique_key="k")], T0)

    [again] = backend.enqueue([new(unique_key="k")], T0)

    assert (again.created, again.job.id) == (False, first.job.id)


def test_wait_mode_enqueues_once_a_claim_makes_room(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 1, "wait", timeout=30.0)
    enqueue(backend, new())
    results: list[Enqueued] = []
    producer = threading.Thread(
        target=lambda: results.extend(backend.enqueue([new(id="late")], T0)), daemon=True
    )

    producer.start()
    producer.join(0.1)
    assert producer.is_alive(), "a full store in wait mode should block the enqueue"
    claim(backend, limit=1)
    producer.join(10.0)

    assert not producer.is_alive()
    assert [(r.job.id, r.created) for r in results] == [("late", True)]


def test_wait_mode_gives_up_after_its_timeout(make_backend: MakeBackend) -> None:
    backend = bounded(make_backend, 1, "wait", timeout=0.05)
    enqueue(backend, new())

    with pytest.raises(QueueFull, match="queue_full_timeout"):
        backend.enqueue([new()], T0)

    assert total(backend) == 1


def test_a_batch_larger_than_the_bound_is_refused_without_waiting(
    make_backend: MakeBackend,
) -> None:
    backend = bounded(make_backend, 2, "wait", timeout=30.0)

    with pytest.raises(QueueFull, match="smaller batches"):
        backend.enqueue([new(), new(), new()], T0)

    assert total(backend) == 0
