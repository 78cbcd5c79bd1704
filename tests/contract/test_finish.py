"""How attempts end: each outcome kind, fencing, progress and logs."""

from __future__ import annotations

from conveyor.backends.protocol import Backend
from conveyor.backends.records import Outcome, Report
from conveyor.model.job import JobState, LogLine

from .support import (
    T0,
    at,
    claim,
    claim_one,
    enqueue,
    enqueue_one,
    error,
    finish,
    new,
    outcome,
    stored,
)


def test_completed_keeps_the_result_and_releases_the_worker(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    done = finish(backend, running, JobState.COMPLETED, at(3), result={"rows": [1, 2], "ok": True})

    assert done.state is JobState.COMPLETED
    assert done.result == {"rows": [1, 2], "ok": True}
    assert done.finished_at == at(3)
    assert (done.worker_id, done.lease_expires_at) == (None, None)
    assert done.attempt == 1
    assert claim(backend, at(4)) == []


def test_failed_records_the_error(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    failed = finish(backend, running, JobState.FAILED, at(3), error=error(1, "bad input"))

    assert failed.state is JobState.FAILED
    assert failed.finished_at == at(3)
    assert (failed.worker_id, failed.lease_expires_at) == (None, None)
    assert [(e.attempt, e.message, e.kind) for e in failed.errors] == [(1, "bad input", "error")]
    assert failed.errors[0] == error(1, "bad input")
    assert failed.last_error == error(1, "bad input")


def test_retry_later_schedules_the_next_attempt(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    waiting = finish(backend, running, JobState.SCHEDULED, at(2), run_at=at(30), error=error(1))

    assert waiting.state is JobState.SCHEDULED
    assert waiting.run_at == at(30)
    assert waiting.attempt == 1
    assert (waiting.worker_id, waiting.lease_expires_at, waiting.finished_at) == (None, None, None)
    assert len(waiting.errors) == 1
    assert claim(backend, at(29)) == []
    [again] = claim(backend, at(30))
    assert (again.id, again.attempt, again.started_at) == (running.id, 2, at(30))


def test_retry_now_puts_the_job_back_to_pending(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    waiting = finish(backend, running, JobState.PENDING, at(2), error=error(1))

    assert waiting.state is JobState.PENDING
    assert waiting.run_at == at(2)
    assert [j.attempt for j in claim(backend, at(2))] == [2]


def test_a_retry_whose_run_at_has_passed_is_pending(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    waiting = finish(backend, running, JobState.SCHEDULED, at(5), run_at=at(4))

    assert (waiting.state, waiting.run_at) == (JobState.PENDING, at(4))


def test_cancelled_finishes_the_job(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)

    cancelled = finish(backend, running, JobState.CANCELLED, at(2))

    assert cancelled.state is JobState.CANCELLED
    assert cancelled.finished_at == at(2)
    assert (cancelled.worker_id, cancelled.lease_expires_at) == (None, None)


def test_released_attempt_is_given_back(backend: Backend) -> None:
    enqueue_one(backend, new(max_attempts=1))
    running = claim_one(backend)

    released = finish(backend, running, JobState.PENDING, at(2), count_attempt=False)

    assert (released.state, released.attempt) == (JobState.PENDING, 0)
    [again] = claim(backend, at(3))
    assert again.attempt == 1


def test_errors_accumulate_one_per_attempt(backend: Backend) -> None:
    enqueue_one(backend)
    first = claim_one(backend)
    finish(backend, first, JobState.PENDING, at(1), error=error(1, "first"))
    second = claim_one(backend, at(2))

    failed = finish(backend, second, JobState.FAILED, at(3), error=error(2, "second"))

    assert [(e.attempt, e.message) for e in failed.errors] == [(1, "first"), (2, "second")]


def test_many_outcomes_apply_in_one_call(backend: Backend) -> None:
    enqueue(backend, new(id="id-1"), new(id="id-2"), new(id="id-3"))
    a, b, c = claim(backend)

    dropped = backend.finish(
        [
            outcome(a, JobState.COMPLETED, at(1), result=1),
            outcome(b, JobState.FAILED, at(1), error=error(1)),
            outcome(c, JobState.SCHEDULED, at(1), run_at=at(9)),
        ]
    )

    assert dropped == []
    assert [stored(backend, j.id).state for j in (a, b, c)] == [
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.SCHEDULED,
    ]


def test_outcome_from_another_worker_is_dropped(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1")
    stranger = Outcome(running.id, "w2", running.attempt, JobState.COMPLETED, at(1), result=1)

    assert backend.finish([stranger]) == [running.id]
    assert stored(backend, running.id) == running


def test_outcome_for_a_stale_attempt_is_dropped(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend, worker="w1")
    stale = Outcome(running.id, "w1", running.attempt - 1, JobState.COMPLETED, at(1))

    assert backend.finish([stale]) == [running.id]
    assert stored(backend, running.id).state is JobState.RUNNING


def test_outcome_for_a_rescued_job_is_dropped_and_the_new_owner_wins(backend: Backend) -> None:
    enqueue_one(backend)
    lost = claim_one(backend, worker="w1", lease=10)
    backend.rescue_expired(at(11))
    owner = claim_one(backend, at(12), worker="w2")

    dropped = backend.finish(
        [
            outcome(lost, JobState.COMPLETED, at(13), result="old"),
            outcome(owner, JobState.COMPLETED, at(13), result="new"),
        ]
    )

    assert dropped == [lost.id]
    done = stored(backend, owner.id)
    assert (done.state, done.result, done.attempt) == (JobState.COMPLETED, "new", 2)


def test_outcome_for_a_finished_or_unknown_job_is_dropped(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    finish(backend, running, JobState.COMPLETED, at(1))

    again = outcome(running, JobState.FAILED, at(2), error=error(1))
    unknown = Outcome("no-such-job", "w1", 1, JobState.COMPLETED, at(2))

    assert backend.finish([again, unknown]) == [running.id, "no-such-job"]
    assert stored(backend, running.id).state is JobState.COMPLETED


def test_report_makes_progress_and_logs_visible_while_running(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    lines = (LogLine(at(1), "one"), LogLine(at(2), "two"))

    backend.report([Report(running.id, 40.0, "rendering", lines)], max_log_lines=100)
    backend.report([Report(running.id, logs=(LogLine(at(3), "three"),))], max_log_lines=100)

    job = stored(backend, running.id)
    assert job.state is JobState.RUNNING
    assert (job.progress, job.progress_message) == (40.0, "rendering")
    assert [line.message for line in job.logs] == ["one", "two", "three"]
    assert job.logs[0] == LogLine(at(1), "one", attempt=1)  # stamped with the running attempt


def test_each_attempts_lines_carry_its_number(backend: Backend) -> None:
    enqueue_one(backend)
    first = claim_one(backend)
    backend.report([Report(first.id, logs=(LogLine(at(1), "try one"),))], max_log_lines=100)
    finish(backend, first, JobState.PENDING, at(2), error=error(1))
    second = claim_one(backend, at(3))
    backend.report([Report(second.id, logs=(LogLine(at(4), "try two"),))], max_log_lines=100)

    logs = stored(backend, second.id).logs

    assert [(line.message, line.attempt) for line in logs] == [("try one", 1), ("try two", 2)]


def test_logs_stay_bounded_behind_a_marker_line(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    first = tuple(LogLine(at(i), f"line {i}") for i in range(1, 4))
    then = tuple(LogLine(at(i), f"line {i}") for i in range(4, 9))

    backend.report([Report(running.id, logs=first)], max_log_lines=5)
    backend.report([Report(running.id, logs=then)], max_log_lines=5)

    logs = stored(backend, running.id).logs
    assert [line.message for line in logs] == [
        "[4 earlier lines dropped]",
        "line 5",
        "line 6",
        "line 7",
        "line 8",
    ]


def test_logs_and_progress_outlive_the_attempt(backend: Backend) -> None:
    enqueue_one(backend)
    running = claim_one(backend)
    backend.report([Report(running.id, 100.0, "done", (LogLine(at(1), "hi"),))], 100)

    done = finish(backend, running, JobState.COMPLETED, at(2))

    assert (done.progress, done.progress_message) == (100.0, "done")
    assert [line.message for line in done.logs] == ["hi"]


def test_report_for_a_job_that_is_not_running_is_ignored(backend: Backend) -> None:
    pending = enqueue_one(backend)
    enqueue_one(backend, new(queue="other"))
    running = claim_one(backend, queues=["other"])
    done = finish(backend, running, JobState.COMPLETED, at(1))

    backend.report(
        [
            Report(pending.id, 50.0, "half", (LogLine(at(2), "x"),)),
            Report(done.id, 50.0, "half", (LogLine(at(2), "x"),)),
            Report("no-such-job", 50.0),
        ],
        max_log_lines=100,
    )

    assert stored(backend, pending.id) == pending
    assert stored(backend, done.id) == done


def test_a_retried_attempt_is_claimed_by_priority_like_any_other(backend: Backend) -> None:
    enqueue(backend, new("retried", priority=5, id="id-r"), new("plain", id="id-p"), now=T0)
    running = claim_one(backend)
    assert running.name == "retried"

    finish(backend, running, JobState.PENDING, at(1))

    assert [j.name for j in claim(backend, at(2))] == ["retried", "plain"]
