"""Recurring job records: a CRON schedule that enqueues a job at each tick."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from conveyor.model.job import JobState, LogLine, NewJob
from conveyor.model.schedule import Overlap


@dataclass(frozen=True, slots=True)
class RecurringJob:
    """A recurring job: its definition, and (when read from a store) its state.

    `toggled` is True once an operator enabled or disabled it at run time: definitions synced
    from code then keep the operator's choice.
    """

    name: str
    cron: str
    job_name: str
    args: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    overlap: Overlap = "skip"
    catch_up: int = 1
    enabled: bool = True
    toggled: bool = False
    next_fire_at: datetime | None = None
    last_fire_at: datetime | None = None
    last_job_id: str | None = None
    last_job_state: JobState | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def same_schedule(self, other: RecurringJob) -> bool:
        """Whether both fire at the same times (so a stored next_fire_at stays valid)."""
        return (self.cron, self.timezone) == (other.cron, other.timezone)


@dataclass(frozen=True, slots=True)
class Fire:
    """One run of a recurring job for a store to record and enqueue.

    `fire_at` is the tick it is for: the store records (name, fire_at) once, so however many
    schedulers fire the same tick, one job is enqueued. `fire_at` None is a manual "run now",
    recorded on the job's metadata instead. With overlap "skip", a run whose previous run is
    still active (from before this batch) is stored as a `skipped` job; with "skip" and "queue"
    the job carries the concurrency key `recurring:<name>` so runs never overlap.
    """

    recurring_name: str
    job: NewJob
    fire_at: datetime | None
    next_fire_at: datetime | None
    overlap: Overlap


@dataclass(frozen=True, slots=True)
class DueRecurring:
    """Enabled recurring jobs whose next fire time has come, and the next time after them."""

    jobs: list[RecurringJob]
    next_fire_at: datetime | None


def concurrency_key(recurring_name: str) -> str:
    """The key that keeps runs of one recurring job from overlapping."""
    return f"recurring:{recurring_name}"


def merge_definition(
    stored: RecurringJob | None, new: RecurringJob, now: datetime, *, from_code: bool
) -> RecurringJob:
    """What a store keeps when `new` is saved over `stored` (see Backend.save_recurring)."""
    if stored is None:
        return replace(new, toggled=not from_code, created_at=now, updated_at=now)
    keep_choice = from_code and stored.toggled
    enabled = stored.enabled if keep_choice else new.enabled
    next_fire_at = new.next_fire_at
    if stored.same_schedule(new) and stored.enabled and stored.next_fire_at is not None:
        next_fire_at = stored.next_fire_at
    return replace(
        new,
        enabled=enabled,
        toggled=stored.toggled if from_code else True,
        next_fire_at=next_fire_at,
        last_fire_at=stored.last_fire_at,
        last_job_id=stored.last_job_id,
        last_job_state=None,
        created_at=stored.created_at,
        updated_at=now,
    )


def advance(stored: RecurringJob, fire: Fire, job_id: str) -> RecurringJob:
    """A definition after `fire` was recorded: times never move backwards."""
    last = stored.last_fire_at
    if fire.fire_at is not None and (last is None or fire.fire_at > last):
        last = fire.fire_at
    upcoming = stored.next_fire_at
    if fire.next_fire_at is not None and (upcoming is None or fire.next_fire_at > upcoming):
        upcoming = fire.next_fire_at
    return replace(stored, last_fire_at=last, next_fire_at=upcoming, last_job_id=job_id)


def job_for_fire(fire: Fire, previous_active: bool, now: datetime) -> NewJob:
    """The job a store records for `fire`, given whether an earlier run is still active."""
    job = fire.job
    if fire.overlap == "allow":
        return job
    key = concurrency_key(fire.recurring_name)
    if fire.overlap == "skip" and previous_active and fire.fire_at is not None:
        reason = (
            f"skipped: the previous run of {fire.recurring_name!r} was still going (overlap='skip')"
        )
        return replace(
            job, state=JobState.SKIPPED, concurrency_key=key, logs=(LogLine(now, reason),)
        )
    return replace(job, concurrency_key=key)
