"""Recurring-job verbs and concurrency keys, the same on every store."""

from __future__ import annotations

from dataclasses import replace

from conveyor.backends.protocol import Backend
from conveyor.model.job import JobState, NewJob
from conveyor.model.recurring import Fire, RecurringJob, concurrency_key

from .support import T0, at, claim, enqueue, finish, new, stored


def definition(name: str = "nightly", **fields: object) -> RecurringJob:
    base = RecurringJob(name=name, cron="0 * * * *", job_name="report", next_fire_at=at(3600))
    return replace(base, **fields)  # type: ignore[arg-type]


def fire(name: str, tick: float | None, overlap: str = "skip", following: float = 7200) -> Fire:
    job = NewJob(name="report", recurring_name=name)
    fire_at = None if tick is None else at(tick)
    return Fire(name, job, fire_at, at(following), overlap)  # type: ignore[arg-type]


def test_save_list_get_and_delete(backend: Backend) -> None:
    backend.save_recurring([definition("b"), definition("a")], T0, from_code=True)
    assert [r.name for r in backend.recurring()] == ["a", "b"]
    [one] = backend.recurring("a")
    assert one.cron == "0 * * * *" and one.next_fire_at == at(3600) and one.enabled
    assert one.created_at == T0
    assert backend.delete_recurring("a")
    assert not backend.delete_recurring("a")
    assert backend.recurring("a") == []


def test_sync_from_code_keeps_an_operators_toggle(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    toggled = backend.set_recurring_enabled("nightly", False, None, at(1))
    assert toggled is not None and not toggled.enabled and toggled.toggled
    backend.save_recurring([definition(args={"v": 2})], at(2), from_code=True)
    [after] = backend.recurring("nightly")
    assert not after.enabled  # the operator's choice wins over code
    assert after.args == {"v": 2}  # everything else follows code
    backend.save_recurring([definition(enabled=True)], at(3), from_code=False)
    assert backend.recurring("nightly")[0].enabled  # a run-time save is an operator's choice


def test_unchanged_schedule_keeps_its_next_fire_time(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    backend.save_recurring([definition(next_fire_at=at(7200))], at(10), from_code=True)
    assert backend.recurring("nightly")[0].next_fire_at == at(3600)
    changed = definition(cron="30 * * * *", next_fire_at=at(1800))
    backend.save_recurring([changed], at(20), from_code=True)
    assert backend.recurring("nightly")[0].next_fire_at == at(1800)


def test_enabling_moves_next_fire_past_the_disabled_period(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    backend.set_recurring_enabled("nightly", False, None, at(1))
    assert backend.due_recurring(at(10_000)).jobs == []  # disabled: never due
    backend.set_recurring_enabled("nightly", True, at(14_400), at(10_000))
    assert backend.recurring("nightly")[0].next_fire_at == at(14_400)
    assert backend.set_recurring_enabled("absent", True, at(1), at(1)) is None


def test_due_lists_what_is_due_and_when_the_next_comes(backend: Backend) -> None:
    backend.save_recurring(
        [definition("soon", next_fire_at=at(60)), definition("later", next_fire_at=at(600))],
        T0,
        from_code=True,
    )
    due = backend.due_recurring(at(59))
    assert due.jobs == [] and due.next_fire_at == at(60)
    due = backend.due_recurring(at(60))
    assert [r.name for r in due.jobs] == ["soon"] and due.next_fire_at == at(600)


def test_a_tick_fires_once_however_often_it_is_fired(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    first = backend.fire_recurring([fire("nightly", 3600)], at(3600))
    again = backend.fire_recurring([fire("nightly", 3600)], at(3601))
    assert first[0] is not None and again == [None]
    [record] = backend.recurring("nightly")
    assert record.last_fire_at == at(3600) and record.next_fire_at == at(7200)
    assert record.last_job_id == first[0].job.id
    assert record.last_job_state is JobState.PENDING
    assert first[0].job.recurring_name == "nightly"


def test_times_never_move_backwards(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    backend.fire_recurring([fire("nightly", 7200, following=10_800)], at(7200))
    backend.fire_recurring([fire("nightly", 3600, following=7200)], at(7201))  # a stale scheduler
    [record] = backend.recurring("nightly")
    assert record.last_fire_at == at(7200) and record.next_fire_at == at(10_800)


def test_skip_records_a_skipped_job_while_the_previous_run_is_active(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    [running] = backend.fire_recurring([fire("nightly", 3600)], at(3600))
    assert running is not None
    [skipped] = backend.fire_recurring([fire("nightly", 7200)], at(7200))
    assert skipped is not None
    job = stored(backend, skipped.job.id)
    assert job.state is JobState.SKIPPED and job.finished_at == at(7200)
    assert "still going" in job.logs[0].message
    assert backend.recurring("nightly")[0].last_job_state is JobState.SKIPPED


def test_manual_run_is_never_skipped(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    backend.fire_recurring([fire("nightly", 3600)], at(3600))
    [manual] = backend.fire_recurring([fire("nightly", None)], at(3700))
    assert manual is not None and manual.job.state is JobState.PENDING
    assert backend.recurring("nightly")[0].last_fire_at == at(3600)  # not a tick


def test_allow_runs_concurrently_and_queue_waits_for_the_previous(backend: Backend) -> None:
    backend.save_recurring([definition("a"), definition("q")], T0, from_code=True)
    backend.fire_recurring([fire("a", 1, "allow"), fire("a", 2, "allow")], at(2))
    assert {j.recurring_name for j in claim(backend, at(3))} == {"a"}
    assert len([j for j in backend.recurring() if j.name == "a"]) == 1
    first, second = backend.fire_recurring([fire("q", 1, "queue"), fire("q", 2, "queue")], at(2))
    assert first is not None and second is not None
    assert first.job.concurrency_key == concurrency_key("q")
    [taken] = claim(backend, at(3))
    assert taken.id == first.job.id  # the second run waits for the first
    assert claim(backend, at(4)) == []
    finish(backend, taken, JobState.COMPLETED, at(5))
    assert [j.id for j in claim(backend, at(6))] == [second.job.id]


def test_concurrency_key_blocks_only_its_own_jobs(backend: Backend) -> None:
    keyed = [new(concurrency_key="k") for _ in range(3)]
    other = new(name="other")
    enqueue(backend, *keyed, other)
    batch = claim(backend, at(1), limit=10)
    assert sorted(j.name for j in batch) == ["other", "task"]  # one per key per claim
    assert claim(backend, at(2)) == []
    finish(backend, next(j for j in batch if j.name == "task"), JobState.COMPLETED, at(3))
    assert len(claim(backend, at(4), limit=10)) == 1


def test_prune_forgets_old_ticks_but_never_refires_a_kept_one(backend: Backend) -> None:
    backend.save_recurring([definition()], T0, from_code=True)
    backend.fire_recurring([fire("nightly", 3600, "allow")], at(3600))
    backend.prune(at(3599), at(3599))
    assert backend.fire_recurring([fire("nightly", 3600, "allow")], at(3601)) == [None]
