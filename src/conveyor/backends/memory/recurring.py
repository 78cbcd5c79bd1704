"""The memory store's recurring-job table (kept apart so the job verbs stay about jobs)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from conveyor.model.recurring import DueRecurring, Fire, RecurringJob, advance, merge_definition


class RecurringTable:
    """Definitions by name and the ticks already fired; the caller holds the store's lock."""

    def __init__(self) -> None:
        self.definitions: dict[str, RecurringJob] = {}
        self._fired: dict[tuple[str, datetime], datetime] = {}  # (name, tick) -> recorded at

    def save(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> list[RecurringJob]:
        """Upsert definitions (see Backend.save_recurring)."""
        saved = []
        for new in jobs:
            merged = merge_definition(self.definitions.get(new.name), new, now, from_code=from_code)
            self.definitions[new.name] = merged
            saved.append(merged)
        return saved

    def set_enabled(
        self, name: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> RecurringJob | None:
        """An operator's toggle."""
        stored = self.definitions.get(name)
        if stored is None:
            return None
        upcoming = next_fire_at if enabled and next_fire_at is not None else stored.next_fire_at
        changed = replace(
            stored, enabled=enabled, toggled=True, next_fire_at=upcoming, updated_at=now
        )
        self.definitions[name] = changed
        return changed

    def due(self, now: datetime) -> DueRecurring:
        """Definitions due at `now`, and the soonest fire time after it."""
        due, soonest = [], None
        for job in self.definitions.values():
            if not job.enabled or job.next_fire_at is None:
                continue
            if job.next_fire_at <= now:
                due.append(job)
            elif soonest is None or job.next_fire_at < soonest:
                soonest = job.next_fire_at
        due.sort(key=lambda j: (j.next_fire_at, j.name))
        return DueRecurring(due, soonest)

    def claim_tick(self, fire: Fire, now: datetime) -> bool:
        """Record a scheduled tick once; False if it was already fired."""
        if fire.fire_at is None:
            return True
        key = (fire.recurring_name, fire.fire_at)
        if key in self._fired:
            return False
        self._fired[key] = now
        return True

    def record(self, fire: Fire, job_id: str) -> None:
        """Move the definition's times and last job on after a fire."""
        stored = self.definitions.get(fire.recurring_name)
        if stored is not None:
            self.definitions[fire.recurring_name] = advance(stored, fire, job_id)

    def prune(self, before: datetime) -> None:
        """Forget ticks recorded before `before`."""
        self._fired = {k: at for k, at in self._fired.items() if at >= before}
