"""Manage recurring jobs at run time: the operations behind `app.recurring_jobs`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from conveyor.backends.protocol import RecurringStore
from conveyor.errors import ConfigurationError, RecurringJobNotFound
from conveyor.model.job import Enqueued
from conveyor.model.options import JobOptions
from conveyor.model.recurring import Fire, RecurringJob
from conveyor.model.schedule import Schedule, check_overlap
from conveyor.model.validation import check_arguments, is_valid_name
from conveyor.runtime.scheduler import run_request

_EDITABLE = ("cron", "job_name", "args", "timezone", "overlap", "catch_up", "enabled")


def define(
    name: str,
    cron: str,
    job_name: str,
    *,
    args: dict[str, Any] | None = None,
    overlap: str = "skip",
    timezone: str = "UTC",
    enabled: bool = True,
    catch_up: int = 1,
) -> RecurringJob:
    """A validated definition: bad CRON, time zone, policy or arguments are refused here."""
    if not is_valid_name(name):
        raise ConfigurationError(
            f"recurring job name {name!r} is not valid: use 1 to 200 characters, no '/' and "
            "no control characters, e.g. 'nightly-report'"
        )
    if catch_up < 1:
        raise ConfigurationError("catch_up must be at least 1 (the latest missed tick)")
    schedule = Schedule(cron, timezone)
    arguments = check_arguments({} if args is None else args)
    return RecurringJob(
        name=name,
        cron=schedule.expression,
        job_name=job_name,
        args=dict(arguments),
        timezone=timezone,
        overlap=check_overlap(overlap),
        catch_up=catch_up,
        enabled=enabled,
    )


class RecurringService:
    """Add, update, enable/disable, remove, list, get and run recurring jobs now."""

    def __init__(
        self,
        backend: Callable[[], RecurringStore],
        clock: Callable[[], datetime],
        options_for: Callable[[str], JobOptions],
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._options_for = options_for

    def add(self, name: str, cron: str, job: str, **settings: Any) -> RecurringJob:
        """Create or replace a recurring job at run time (kwargs: args, overlap, timezone,
        enabled, catch_up). `job` is the name of a registered or declared job."""
        self._options_for(job)  # refuses unknown job names
        return self._save(define(name, cron, job, **settings))

    def update(self, name: str, **changes: Any) -> RecurringJob:
        """Change some fields of a recurring job (cron, job_name, args, timezone, overlap,
        catch_up, enabled)."""
        unknown = set(changes) - set(_EDITABLE)
        if unknown:
            raise ConfigurationError(
                f"cannot update {', '.join(sorted(unknown))}; editable: {', '.join(_EDITABLE)}"
            )
        current = self.get(name)
        fields = {key: getattr(current, key) for key in _EDITABLE} | changes
        if "job_name" in changes:
            self._options_for(fields["job_name"])
        job_name = fields.pop("job_name")
        cron = fields.pop("cron")
        return self._save(define(name, cron, job_name, **fields))

    def enable(self, name: str) -> RecurringJob:
        """Let it fire again, from its next tick on (ticks missed while disabled do not run)."""
        return self._toggle(name, True)

    def disable(self, name: str) -> RecurringJob:
        """Stop it firing; it stays defined. Syncing code definitions keeps this choice."""
        return self._toggle(name, False)

    def toggle(self, name: str) -> RecurringJob:
        """Enable it if disabled, disable it if enabled."""
        return self._toggle(name, not self.get(name).enabled)

    def remove(self, name: str) -> None:
        """Delete the definition (its past runs stay as jobs)."""
        if not self._backend().delete_recurring(name):
            raise self._missing(name)

    def list(self) -> list[RecurringJob]:
        """Every recurring job: schedule, enabled, next and last fire, last run's job."""
        return self._backend().recurring()

    def get(self, name: str) -> RecurringJob:
        """One recurring job; raises RecurringJobNotFound if there is none by that name."""
        found = self._backend().recurring(name)
        if not found:
            raise self._missing(name)
        return found[0]

    def run_now(self, name: str) -> Enqueued:
        """Enqueue one run now, outside the schedule (its metadata says trigger=manual)."""
        current = self.get(name)
        job = run_request(current, self._options_for(current.job_name), None)
        fire = Fire(name, job, None, None, current.overlap)
        [result] = self._backend().fire_recurring([fire], self._clock())
        assert result is not None
        return result

    @staticmethod
    def describe(recurring: RecurringJob) -> str:
        """The schedule in words."""
        return Schedule(recurring.cron, recurring.timezone).describe()

    def _save(self, definition: RecurringJob) -> RecurringJob:
        now = self._clock()
        upcoming = Schedule(definition.cron, definition.timezone).next_after(now)
        timed = replace(definition, next_fire_at=upcoming)
        self._backend().save_recurring([timed], now, from_code=False)
        return self.get(definition.name)

    def _toggle(self, name: str, enabled: bool) -> RecurringJob:
        current = self.get(name)
        now = self._clock()
        upcoming = Schedule(current.cron, current.timezone).next_after(now)
        changed = self._backend().set_recurring_enabled(name, enabled, upcoming, now)
        if changed is None:
            raise self._missing(name)
        return changed

    @staticmethod
    def _missing(name: str) -> RecurringJobNotFound:
        return RecurringJobNotFound(
            f"no recurring job is named {name!r}: see `conveyor recurring ls` "
            "(app.recurring_jobs.list() in Python)"
        )
