"""Bounded queues: a queue's stored `max_size` caps its waiting jobs on every store; past it
an enqueue is refused (QueueFull naming the queue and its bound) or waits for room, the whole
batch or none of it, also under concurrent producers."""

from __future__ import annotations

import threading
from typing import Literal

import pytest

from conveyor.backends.protocol import Backend
from conveyor.backends.records import JobFilter
from conveyor.errors import QueueFull
from conveyor.model.job import Enqueued, JobState
from conveyor.model.queues import QueueChange, QueueSettings
from conveyor.model.settings import Settings

from .support import T0, MakeBackend, at, claim, enqueue, finish, new


def bound(
    backend: Backend, name: str, size: int, when_full: Literal["wait", "refuse"] = "refuse"
) -> None:
    """Declare queue `name` bounded to `size` waiting jobs, as `app.queue` does."""
    settings = QueueSettings(max_size=size, when_full=when_full)
    backend.change_queue_settings(name, QueueChange.from_code(settings), T0)


def waiting(backend: Backend, queue: str) -> int:
    """How many jobs of `queue` wait (scheduled or pending)."""
    states = frozenset({JobState.SCHEDULED, JobState.PENDING})
    return backend.list_jobs(JobFilter(states=states, queue=queue)).total


def test_refuse_names_the_queue_and_its_bound(backend: Backend) -> None:
    bound(backend, "imports", 3)
    enqueue(
        backend, new(queue="imports"), new(queue="imports"), new(queue="imports", run_at=at(60))
    )

    with pytest.raises(QueueFull, match=r"queue 'imports' is full .*max_size=3"):
        backend.enqueue([new(queue="imports")], T0)

    assert waiting(backend, "imports") == 3
    enqueue(backend, new(queue="other"))  # other queues are not bounded by it


def test_a_batch_is_stored_whole_or_not_at_all(backend: Backend) -> None:
    bound(backend, "imports", 2)
    enqueue(backend, new(queue="imports"))

    with pytest.raises(QueueFull):
        backend.enqueue(
            [new(id="free-1", queue="free"), new(id="imp-1", queue="imports"),
             new(id="imp-2", queue="imports")],
            T0,
        )  # fmt: skip

    assert backend.get("free-1") is None and backend.get("imp-1") is None
    assert waiting(backend, "imports") == 1
    enqueue(backend, new(queue="imports"))  # one more still fits
    assert waiting(backend, "imports") == 2


def test_a_large_batch_is_bounded_too(backend: Backend) -> None:
    bound(backend, "bulk", 300)  # 250 jobs take PostgreSQL's COPY path
    enqueue(backend, *[new(queue="bulk") for _ in range(250)])

    with pytest.raises(QueueFull, match="'bulk'"):
        backend.enqueue([new(queue="bulk") for _ in range(250)], T0)

    assert waiting(backend, "bulk") == 250


def test_only_waiting_jobs_count(backend: Backend) -> None:
    bound(backend, "q", 2)
    enqueue(backend, new(queue="q"), new(queue="q"))
    claim(backend, limit=2)

    enqueue(backend, new(queue="q"), new(queue="q"))

    assert waiting(backend, "q") == 2


def test_a_unique_key_already_held_fits_in_a_full_queue(backend: Backend) -> None:
    bound(backend, "q", 1)
    [first] = backend.enqueue([new(queue="q", unique_key="k")], T0)

    [again] = backend.enqueue([new(queue="q", unique_key="k")], T0)

    assert (again.created, again.job.id) == (False, first.job.id)


def test_an_operator_can_raise_or_remove_the_bound(backend: Backend) -> None:
    bound(backend, "q", 1)
    enqueue(backend, new(queue="q"))
    with pytest.raises(QueueFull):
        backend.enqueue([new(queue="q")], T0)

    backend.change_queue_settings("q", QueueChange.by_operator(max_size=2), at(1))
    enqueue(backend, new(queue="q"))
    backend.change_queue_settings("q", QueueChange.by_operator(max_size=None), at(2))
    enqueue(backend, *[new(queue="q") for _ in range(5)])

    assert waiting(backend, "q") == 7


def test_a_batch_larger_than_the_bound_is_refused_without_waiting(backend: Backend) -> None:
    bound(backend, "q", 2, "wait")

    with pytest.raises(QueueFull, match="can never fit"):
        backend.enqueue([new(queue="q"), new(queue="q"), new(queue="q")], T0)

    assert waiting(backend, "q") == 0


def test_wait_enqueues_once_a_claim_makes_room(make_backend: MakeBackend) -> None:
    backend = make_backend(Settings(queue_full_timeout=30.0))
    bound(backend, "q", 1, "wait")
    enqueue(backend, new(queue="q"))
    results: list[Enqueued] = []
    producer = threading.Thread(
        target=lambda: results.extend(backend.enqueue([new(id="late", queue="q")], T0)),
        daemon=True,
    )

    producer.start()
    producer.join(0.2)
    assert producer.is_alive(), "a full queue in wait mode should block the enqueue"
    assert len(claim(backend, limit=1)) == 1
    producer.join(10.0)

    assert not producer.is_alive()
    assert [(r.job.id, r.created) for r in results] == [("late", True)]


def test_wait_gives_up_after_queue_full_timeout(make_backend: MakeBackend) -> None:
    backend = make_backend(Settings(queue_full_timeout=0.05))
    bound(backend, "q", 1, "wait")
    enqueue(backend, new(queue="q"))

    with pytest.raises(QueueFull, match=r"queue 'q' is still full after waiting 0.05s"):
        backend.enqueue([new(queue="q")], T0)

    assert waiting(backend, "q") == 1


def test_concurrent_producers_never_pass_the_bound(backend: Backend) -> None:
    size, producers = 25, 20
    bound(backend, "q", size)
    start = threading.Barrier(producers)
    refused: list[int] = []
    errors: list[BaseException] = []

    def produce(index: int) -> None:
        try:
            start.wait(10.0)
            for round_ in range(5):  # 100 jobs asked, one or two at a time, for 25 places
                batch = [new(queue="q") for _ in range(1 + (index + round_) % 2)]
                try:
                    backend.enqueue(batch, T0)
                except QueueFull:
                    refused.append(index)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=produce, args=(i,), daemon=True) for i in range(producers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60.0)

    assert errors == [] and not any(t.is_alive() for t in threads)
    assert refused, "the producers asked for more than the bound"
    assert size - 1 <= waiting(backend, "q") <= size


def test_steps_waiting_on_parents_do_not_count_until_released(backend: Backend) -> None:
    bound(backend, "q", 1)
    parent = new("fetch", queue="q")
    child = new("clean", queue="q", after=(parent.id,))

    stored_parent, stored_child = enqueue(backend, parent, child)

    assert (stored_parent.state, stored_child.state) == (JobState.PENDING, JobState.WAITING)
    [running] = claim(backend, at(1))
    finish(backend, running, JobState.COMPLETED, at(2))  # releases the child: never refused
    assert waiting(backend, "q") == 1


def test_a_batch_with_dependencies_is_bounded_whole(backend: Backend) -> None:
    bound(backend, "q", 1)
    enqueue(backend, new(queue="q"))
    parent = new("fetch", id="parent-1", queue="q")
    child = new("clean", id="child-1", queue="other", after=(parent.id,))

    with pytest.raises(QueueFull, match="'q'"):
        backend.enqueue([parent, child], T0)

    assert backend.get("parent-1") is None and backend.get("child-1") is None


def test_a_workflow_is_bounded_whole(backend: Backend) -> None:
    bound(backend, "q", 2)
    first = new("fetch", id="wf-fetch", queue="q", workflow_id="wf-1", step="fetch")
    second = new("load", id="wf-load", queue="q", workflow_id="wf-1", step="load")
    then = new(
        "publish", queue="q", workflow_id="wf-1", step="publish", after=(first.id, second.id)
    )
    backend.enqueue_workflow("wf-1", "import", [first, second, then], T0)  # 2 queued, 1 waiting

    late = new("fetch", id="wf2-fetch", queue="q", workflow_id="wf-2", step="fetch")
    with pytest.raises(QueueFull, match="'q'"):
        backend.enqueue_workflow("wf-2", "import", [late], T0)

    assert backend.get("wf2-fetch") is None and backend.workflow("wf-2") is None
    assert waiting(backend, "q") == 2
