"""The PostgreSQL store's recurring-job verbs (a mixin of PostgresBackend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import psycopg

from conveyor.backends.postgres.database import Conn, Database, PostgresConfig
from conveyor.backends.postgres.rows import (
    job_arrays,
    opt_utc,
    recurring_from_row,
    recurring_params,
)
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
    _q: Mapping[str, str]
    config: PostgresConfig

    def _notify(self) -> None:  # provided by PostgresBackend
        raise NotImplementedError

    def save_recurring(
        self, jobs: Sequence[RecurringJob], now: datetime, *, from_code: bool
    ) -> list[RecurringJob]:
        """Insert or update definitions in one transaction (see the protocol)."""
        saved = []
        with self._db.transaction() as conn:
            self._lock(conn, [job.name for job in jobs])
            for new in jobs:
                merged = merge_definition(self._one(conn, new.name), new, now, from_code=from_code)
                conn.execute(self._q["recurring_upsert"], recurring_params(merged))
                saved.append(merged)
        return saved

    def set_recurring_enabled(
        self, name: str, enabled: bool, next_fire_at: datetime | None, now: datetime
    ) -> RecurringJob | None:
        """An operator's enable/disable toggle."""
        with self._db.transaction() as conn:
            self._lock(conn, [name])
            stored = self._one(conn, name)
            if stored is None:
                return None
            upcoming = next_fire_at if enabled and next_fire_at else stored.next_fire_at
            retimed = replace(stored, enabled=enabled, next_fire_at=upcoming)
            merged = merge_definition(stored, retimed, now, from_code=False)
            conn.execute(self._q["recurring_upsert"], recurring_params(merged))
            return self._one(conn, name)

    def delete_recurring(self, name: str) -> bool:
        """Remove a definition; its past jobs stay."""
        with self._db.connection() as conn:
            return conn.execute(self._q["recurring_delete"], {"name": name}).rowcount > 0

    def recurring(self, name: str | None = None) -> list[RecurringJob]:
        """Definitions by name, with their last job's state."""
        with self._db.connection() as conn:
            if name is not None:
                found = self._one(conn, name)
                return [] if found is None else [found]
            return [recurring_from_row(r) for r in conn.execute(self._q["recurring_all"])]

    def due_recurring(self, now: datetime) -> DueRecurring:
        """Enabled definitions that are due, and the next fire time after them."""
        with self._db.connection() as conn:
            rows = conn.execute(self._q["recurring_due"], {"now": now}).fetchall()
            soonest = conn.execute(self._q["recurring_next"], {"now": now}).fetchone()
        upcoming = None if soonest is None else opt_utc(soonest["next_fire_at"])
        return DueRecurring([recurring_from_row(r) for r in rows], upcoming)

    def fire_recurring(self, fires: Sequence[Fire], now: datetime) -> list[Enqueued | None]:
        """Record and enqueue recurring runs in one transaction, each tick once."""
        results: list[Enqueued | None] = []
        q = self._q
        with self._db.transaction() as conn:
            names = sorted({fire.recurring_name for fire in fires})
            self._lock(conn, names)
            active = {
                row["recurring_name"]
                for row in conn.execute(q["recurring_active"], {"names": names})
            }
            for fire in fires:
                job = job_for_fire(fire, fire.recurring_name in active, now).to_job(now)
                if fire.fire_at is not None:
                    params = {
                        "name": fire.recurring_name,
                        "fire_at": fire.fire_at,
                        "job_id": job.id,
                        "recorded_at": now,
                    }
                    if conn.execute(q["record_fire"], params).fetchone() is None:
                        results.append(None)  # another scheduler fired this tick
                        continue
                # a tick's run is never refused by its queue's bound, as retries are not
                params = {**job_arrays([job]), "channel": self.config.channel, "checked": True}
                conn.execute(q["insert_jobs"], params)
                stored = self._one(conn, fire.recurring_name)
                if stored is not None:
                    advanced = advance(stored, fire, job.id)
                    conn.execute(q["recurring_upsert"], recurring_params(advanced))
                results.append(Enqueued(job, True))
        if any(results):
            self._notify()
        return results

    def _prune_fires(self, before: datetime) -> None:
        with self._db.connection() as conn:
            conn.execute(self._q["prune_fires"], {"before": before})

    def _lock(self, conn: psycopg.Connection[Any], names: Sequence[str]) -> None:
        """Lock the stored definitions among `names` until the transaction ends."""
        conn.execute(self._q["recurring_lock"], {"names": sorted(names)})

    def _one(self, conn: Conn, name: str) -> RecurringJob | None:
        row = conn.execute(self._q["recurring_one"], {"name": name}).fetchone()
        return None if row is None else recurring_from_row(row)
