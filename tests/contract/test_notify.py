"""Waking workers: subscribe callbacks and wait_for_jobs."""

from __future__ import annotations

import threading

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState

from .support import T0, at, claim_one, enqueue_one, finish

DEADLINE = 10.0  # seconds: only reached when a wake-up is missing


class Calls:
    """A subscriber that counts its calls and lets a test wait for the next one."""

    def __init__(self) -> None:
        self.count = 0
        self._cond = threading.Condition()

    def __call__(self) -> None:
        with self._cond:
            self.count += 1
            self._cond.notify_all()

    def wait_beyond(self, count: int) -> bool:
        """Whether the count passes `count` before the deadline."""
        with self._cond:
            return self._cond.wait_for(lambda: self.count > count, timeout=DEADLINE)


def test_subscribers_hear_of_enqueue(backend: Backend) -> None:
    calls = Calls()
    backend.subscribe(calls)

    enqueue_one(backend)

    assert calls.wait_beyond(0)


def test_subscribers_hear_of_a_retry_that_is_due_and_of_a_manual_retry(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    calls = Calls()
    backend.subscribe(calls)

    finish(backend, running, JobState.PENDING, at(1), run_at=at(1))
    assert calls.wait_beyond(0)
    again = claim_one(backend, at(1))
    finish(backend, again, JobState.FAILED, at(2))
    seen = calls.count

    backend.retry(running.id, at(3))
    assert calls.wait_beyond(seen)


def test_subscribers_hear_when_a_limited_queue_has_room_again(backend: Backend) -> None:
    """A finish in a queue with a fleet-wide limit wakes workers waiting for that room."""
    enqueue_one(backend)
    enqueue_one(backend)
    running = claim_one(backend, queue_limits={"default": 1})
    calls = Calls()
    backend.subscribe(calls)

    finish(backend, running, JobState.COMPLETED, at(1))

    assert calls.wait_beyond(0)


def test_unsubscribed_callbacks_are_not_called(backend: Backend) -> None:
    gone, staying = Calls(), Calls()
    unsubscribe = backend.subscribe(gone)
    backend.subscribe(staying)
    enqueue_one(backend)
    assert gone.wait_beyond(0)
    assert staying.wait_beyond(0)

    unsubscribe()
    enqueue_one(backend)

    assert staying.wait_beyond(1)
    assert gone.count == 1


def test_a_failing_subscriber_does_not_fail_the_enqueue(backend: Backend) -> None:
    def broken() -> None:
        raise RuntimeError("subscriber bug")

    calls = Calls()
    backend.subscribe(broken)
    backend.subscribe(calls)

    job = enqueue_one(backend)

    assert backend.get(job.id) == job
    assert calls.wait_beyond(0)


def test_wait_for_jobs_returns_false_when_nothing_arrives(backend: Backend) -> None:
    assert backend.wait_for_jobs(0.05) is False


def test_wait_for_jobs_wakes_on_an_enqueue_from_another_thread(backend: Backend) -> None:
    woke = threading.Event()

    def produce() -> None:
        # Keep producing until the waiter wakes: a waiter that starts late still sees one.
        while not woke.is_set():
            enqueue_one(backend, now=T0)
            woke.wait(0.01)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        assert backend.wait_for_jobs(DEADLINE) is True
    finally:
        woke.set()
        producer.join(DEADLINE)
    assert not producer.is_alive()
