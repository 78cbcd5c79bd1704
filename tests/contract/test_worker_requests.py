"""An operator's requests of a live worker (quiet, stop, resume), handed back by its heartbeat."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.backends.protocol import Backend
from conveyor.errors import UsageError, WorkerNotFound, WorkerStateConflict

from .support import at, claim_one, enqueue_one, worker_info


def test_a_quiet_request_is_kept_and_handed_back_by_each_heartbeat(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))

    stored = backend.request_worker("w1", "quiet", at(0))

    assert stored.requested == "quiet" and stored.mode == "running"
    assert stored.pending == "quiet"
    assert backend.heartbeat(worker_info("w1", at(2)), [], at(60)).requested == "quiet"
    # a level, not an event: the next heartbeat hands it back again
    quiet = replace(worker_info("w1", at(3)), mode="quiet")
    assert backend.heartbeat(quiet, [], at(60)).requested == "quiet"
    [seen] = backend.workers()
    assert (seen.mode, seen.requested, seen.pending) == ("quiet", "quiet", None)


def test_a_heartbeat_never_overwrites_the_request(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.request_worker("w1", "stop", at(0))

    # the worker's own record carries no request: the stored one stays
    beat = backend.heartbeat(replace(worker_info("w1", at(2)), requested=None), [], at(60))

    assert beat.requested == "stop"
    assert backend.workers()[0].requested == "stop"


def test_the_request_comes_back_with_the_cancelled_jobs(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1", lease=30)
    backend.heartbeat(worker_info("w1", at(1)), [running.id], at(60))
    backend.cancel(running.id, at(2))
    backend.request_worker("w1", "quiet", at(0))

    beat = backend.heartbeat(worker_info("w1", at(3)), [running.id], at(90))

    assert beat.cancel_requested == {running.id}
    assert beat.requested == "quiet"
    assert backend.get(running.id).lease_expires_at == at(90)  # type: ignore[union-attr]


def test_resume_clears_a_quiet_request(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.request_worker("w1", "quiet", at(0))
    backend.heartbeat(replace(worker_info("w1", at(2)), mode="quiet"), [], at(60))

    resumed = backend.request_worker("w1", "resume", at(0))

    assert resumed.requested is None and resumed.pending == "running"
    assert backend.heartbeat(worker_info("w1", at(3)), [], at(60)).requested is None
    assert backend.workers()[0].pending is None


def test_requests_concern_one_worker_only(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.heartbeat(worker_info("w2", at(1)), [], at(60))

    backend.request_worker("w2", "stop", at(0))

    assert backend.heartbeat(worker_info("w1", at(2)), [], at(60)).requested is None
    assert {w.id: w.requested for w in backend.workers()} == {"w1": None, "w2": "stop"}


def test_stopping_is_final(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.request_worker("w1", "stop", at(0))

    for action in ("quiet", "resume"):
        with pytest.raises(WorkerStateConflict, match="w1 is stopping"):
            backend.request_worker("w1", action, at(0))  # type: ignore[arg-type]
    assert backend.request_worker("w1", "stop", at(0)).requested == "stop"  # asked again
    assert backend.workers()[0].requested == "stop"


def test_a_worker_stopping_on_a_signal_cannot_be_quieted(backend: Backend) -> None:
    backend.heartbeat(replace(worker_info("w1", at(1)), mode="stopping"), [], at(60))

    with pytest.raises(WorkerStateConflict):
        backend.request_worker("w1", "quiet", at(0))
    assert backend.workers()[0].requested is None
    assert backend.request_worker("w1", "stop", at(0)).pending is None  # it is stopping


def test_an_unknown_or_unregistered_worker_is_not_found(backend: Backend) -> None:
    with pytest.raises(WorkerNotFound, match="no live worker has id 'nobody'"):
        backend.request_worker("nobody", "quiet", at(0))
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))
    backend.unregister_worker("w1")

    with pytest.raises(WorkerNotFound):
        backend.request_worker("w1", "stop", at(0))
    assert backend.workers() == []  # no phantom row


def test_a_worker_silent_since_before_seen_after_is_gone(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(10)), [], at(60))

    with pytest.raises(WorkerNotFound, match="w1 is gone: its last heartbeat was at"):
        backend.request_worker("w1", "quiet", at(11))
    assert backend.workers()[0].requested is None
    assert backend.request_worker("w1", "quiet", at(10)).requested == "quiet"


def test_an_unknown_action_is_refused(backend: Backend) -> None:
    backend.heartbeat(worker_info("w1", at(1)), [], at(60))

    with pytest.raises(UsageError, match="ask quiet, stop or resume"):
        backend.request_worker("w1", "pause", at(0))  # type: ignore[arg-type]
    assert backend.workers()[0].requested is None


def test_a_new_worker_starts_with_no_request(backend: Backend) -> None:
    beat = backend.heartbeat(worker_info("w1", at(1)), [], at(60))

    assert beat.requested is None and beat.cancel_requested == set()
    [seen] = backend.workers()
    assert (seen.mode, seen.requested) == ("running", None)
