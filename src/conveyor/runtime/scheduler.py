"""Recurring jobs: turn due CRON ticks into jobs, once per tick however many schedulers run.

Every worker runs a scheduler. Each pass costs two store calls whatever the number of recurring
jobs: one read of the due definitions, and one transaction that records and enqueues all their
runs. The store's unique (name, tick) record is what makes a tick fire once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from conveyor.backends.protocol import RecurringStore
from conveyor.model.job import Enqueued, NewJob
from conveyor.model.options import JobOptions
from conveyor.model.recurring import Fire, RecurringJob
from conveyor.model.schedule import Schedule
from conveyor.runtime.registry import Registry

log = logging.getLogger("conveyor.scheduler")

TRIGGER_KEY = "conveyor.trigger"  # "schedule" or "manual", on each run's metadata
FIRE_AT_KEY = "conveyor.fire_at"


def run_request(recurring: RecurringJob, options: JobOptions, fire_at: datetime | None) -> NewJob:
    """The job one run of `recurring` enqueues (fire_at None: a manual "run now")."""
    metadata = {TRIGGER_KEY: "manual" if fire_at is None else "schedule"}
    if fire_at is not None:
        metadata[FIRE_AT_KEY] = fire_at.isoformat()
    return NewJob(
        name=recurring.job_name,
        queue=options.queue,
        args=dict(recurring.args),
        metadata=metadata,
        priority=options.priority,
        max_attempts=options.max_attempts,
        timeout=options.timeout,
        recurring_name=recurring.name,
    )


class Scheduler:
    """Fires due recurring jobs through the store. `clock` gives the current time."""

    def __init__(
        self,
        backend: RecurringStore,
        registry: Registry,
        clock: Callable[[], datetime],
        definitions: Sequence[RecurringJob] = (),
    ) -> None:
        self._backend = backend
        self._registry = registry
        self._clock = clock
        self._definitions = tuple(definitions)
        self._schedules: dict[tuple[str, str], Schedule] = {}
        # When this scheduler last looked for due ticks (sync counts): ticks due before it
        # were missed while no scheduler ran; later ones only found a late pass.
        self._last_look: datetime | None = None

    def sync(self) -> None:
        """Store the definitions made in code, keeping operators' run-time toggles."""
        if not self._definitions:
            return
        now = self._clock()
        timed = [_with_next(d, self.schedule(d).next_after(now)) for d in self._definitions]
        self._backend.save_recurring(timed, now, from_code=True)
        self._last_look = now

    def schedule(self, recurring: RecurringJob) -> Schedule:
        """The parsed schedule of a definition (cached)."""
        key = (recurring.cron, recurring.timezone)
        found = self._schedules.get(key)
        if found is None:
            found = self._schedules[key] = Schedule(recurring.cron, recurring.timezone)
        return found

    def options(self, job_name: str) -> JobOptions:
        """The options a run of `job_name` is enqueued with (defaults if unknown here)."""
        definition = self._registry.get(job_name)
        return definition.options if definition else JobOptions()

    def tick(self, now: datetime | None = None) -> tuple[list[Enqueued], datetime | None]:
        """Fire every due tick; returns the jobs enqueued and when to look again."""
        now = now or self._clock()
        last_look, self._last_look = self._last_look, now
        due = self._backend.due_recurring(now)
        fires: list[Fire] = []
        upcoming = due.next_fire_at
        for recurring in due.jobs:
            try:
                schedule = self.schedule(recurring)
            except Exception as exc:  # a definition stored by a newer or buggy client
                log.error("recurring job %r has a bad schedule (%s)", recurring.name, exc)
                continue
            assert recurring.next_fire_at is not None
            ticks = schedule.due(recurring.next_fire_at, last_look, now, recurring.catch_up)
            following = schedule.next_after(now)
            options = self.options(recurring.job_name)
            for fire_at in ticks:
                job = run_request(recurring, options, fire_at)
                fires.append(Fire(recurring.name, job, fire_at, following, recurring.overlap))
            if upcoming is None or following < upcoming:
                upcoming = following
        if not fires:
            return [], upcoming
        results = self._backend.fire_recurring(fires, now)
        enqueued = [r for r in results if r is not None]
        for result in enqueued:
            log.info(
                "recurring job %s fired: job %s %s", result.job.recurring_name,
                result.job.id, result.job.state,
                extra={"job_id": result.job.id, "job_name": result.job.name},
            )  # fmt: skip
        return enqueued, upcoming


def _with_next(recurring: RecurringJob, next_fire_at: datetime) -> RecurringJob:
    return replace(recurring, next_fire_at=next_fire_at)
