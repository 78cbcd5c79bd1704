"""The SQLite store's recurring-job verbs (a mixin of SQLiteBackend)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from conveyor.backends.sqlite.database import Database
from conveyor.backends.sqlite.rows import (
    dt,
    job_row,
    json_list,
    opt_ts,
    recurring_from_row,
    recurring_row,
    ts,
)
from conveyor.backends.sqlite.sql import Q
from conveyor.model.job import Enqueued
from conveyor.model.recurring import (
    DueRecurring,
    Fire,
    RecurringJob,
    advance,
    job_for_fire,
    merge_definition,
)


class RecurringVerbs:
    """save / toggle / delete / list / due / fire for recurring jobs, on `self._db`."""

    _db: Database

    def _notify(self) -> None:  # provided by SQLiteBackend
        raise NotImplementedError

    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> list[RecurringJob]:
        """Insert or update definitions in one transaction (see the protocol)."""
        saved = []
        with self._db.write() as conn:
            for new in jobs:
                merged = merge_definition(_one(conn, new.name), new, now, from_code=from_code)
                conn.execute(Q["recurring_upsert"], recurring_row(merged))
                saved.append(merged)
        return saved

    def set_recurring_enabled(
        self, name: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> RecurringJob | None:
        """An operator's enable/disable toggle."""
        with self._db.write() as conn:
            stored = _one(conn, name)
            if stored is None:
                return None
            upcoming = next_fire_at if enabled and next_fire_at else stored.next_fire_at
            merged = merge_definition(
                stored, _retimed(stored, enabled, upcoming), now, from_code=False
            )
            conn.execute(Q["recurring_upsert"], recurring_row(merged))
            return _one(conn, name)

    def delete_recurring(self, name: str) -> bool:
        """Remove a definition; its past jobs stay."""
        with self._db.write() as conn:
            return conn.execute(Q["recurring_delete"], (name,)).rowcount > 0

    def recurring(self, name: str | None = None) -> list[RecurringJob]:
        """Definitions by name, with their last job's state."""
        with self._db.read() as conn:
            if name is not None:
                found = _one(conn, name)
                return [] if found is None else [found]
            return [recurring_from_row(r) for r in conn.execute(Q["recurring_all"])]

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions that are due, and the next fire time after them."""
        moment = ts(now)
        with self._db.read() as conn:
            due = [recurring_from_row(r) for r in conn.execute(Q["recurring_due"], (moment,))]
            soonest = conn.execute(Q["recurring_next"], (moment,)).fetchone()[0]
        return DueRecurring(due, None if soonest is None else dt(soonest))

    def fire_recurring(self, fires: Sequence[Fire], now: datetime) -> list[Enqueued | None]:
        """Record and enqueue recurring runs in one transaction, each tick once."""
        results: list[Enqueued | None] = []
        moment = ts(now)
        with self._db.write() as conn:
            names = json_list(sorted({f.recurring_name for f in fires}))
            active = {row[0] for row in conn.execute(Q["recurring_active"], (names,))}
            for fire in fires:
                job = job_for_fire(fire, fire.recurring_name in active, now).to_job(now)
                if fire.fire_at is not None:
                    params = (fire.recurring_name, ts(fire.fire_at), job.id, moment)
                    if conn.execute(Q["record_fire"], params).rowcount == 0:
                        results.append(None)  # another scheduler fired this tick
                        continue
                conn.execute(Q["insert_job"], job_row(job))
                stored = _one(conn, fire.recurring_name)
                if stored is not None:
                    conn.execute(
                        Q["recurring_upsert"], recurring_row(advance(stored, fire, job.id))
                    )
                results.append(Enqueued(job, True))
        if any(results):
            self._notify()
        return results

    def _prune_fires(self, before: datetime) -> None:
        with self._db.write() as conn:
            conn.execute(Q["prune_fires"], (opt_ts(before),))


def _one(conn: sqlite3.Connection, name: str) -> RecurringJob | None:
    row = conn.execute(Q["recurring_one"], (name,)).fetchone()
    return None if row is None else recurring_from_row(row)


def _retimed(stored: RecurringJob, enabled: bool, upcoming: datetime | None) -> RecurringJob:
    return replace(stored, enabled=enabled, next_fire_at=upcoming)
