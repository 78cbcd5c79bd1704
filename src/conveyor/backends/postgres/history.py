"""The PostgreSQL store's history verbs (a mixin of PostgresBackend): model/history.py's
roll-up, under a lock on the watermark row."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from conveyor.backends.postgres.database import Database
from conveyor.model.history import HistoryPoint, merged, point_of_row

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryVerbs:
    """roll up / read / prune the per-minute history, on `self._db`."""

    _db: Database
    _q: Mapping[str, str]

    def roll_up_history(self, until: datetime) -> datetime | None:
        """Count jobs finished from the watermark to `until` into their minutes, and move the
        watermark, in one transaction holding the watermark's row lock."""
        with self._db.transaction() as conn:
            row = conn.execute(self._q["history_lock_mark"]).fetchone()
            mark = None if row is None else row["until"]
            if mark is not None and mark >= until:
                return mark.astimezone(UTC)  # type: ignore[no-any-return]
            params = {"since": _EPOCH, "until": until, "step": 60}
            conn.execute(self._q["history_roll_up"], params)
            conn.execute(self._q["history_set_mark"], {"until": until})
        return until

    def history(
        self, since: datetime, until: datetime, step: timedelta, queue: str | None = None
    ) -> list[HistoryPoint]:
        """Points of `step` from `since` to `until`: rolled-up minutes, then stored jobs."""
        params = {
            "since": since,
            "until": until,
            "step": int(step.total_seconds()),
            "queue": queue,
        }
        with self._db.connection() as conn:
            rows = conn.execute(self._q["history"], params).fetchall()
        return merged(
            point_of_row((values[0].astimezone(UTC), *values[2:]))
            for values in (list(row.values()) for row in rows)
        )

    def prune_history(self, before: datetime) -> int:
        """Forget rolled-up minutes before `before`; returns how many rows."""
        with self._db.connection() as conn:
            return int(conn.execute(self._q["prune_history"], {"before": before}).rowcount)
