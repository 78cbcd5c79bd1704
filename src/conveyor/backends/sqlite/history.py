"""The SQLite store's history verbs (a mixin of SQLiteBackend): model/history.py's roll-up."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.backends.sqlite.database import Database
from conveyor.backends.sqlite.rows import dt, ts
from conveyor.backends.sqlite.sql import Q
from conveyor.model.history import HistoryPoint, merged, point_of_row


class HistoryVerbs:
    """roll up / read / prune the per-minute history, on `self._db`."""

    _db: Database

    def roll_up_history(self, until: datetime) -> datetime | None:
        """Count jobs finished from the watermark to `until` into their minutes, and move the
        watermark, in one write transaction (which serialises concurrent callers)."""
        with self._db.write() as conn:
            mark = conn.execute(Q["history_mark"]).fetchone()[0]
            if mark is not None and mark >= ts(until):
                return dt(mark)
            params = {"since": 0.0, "until": ts(until), "step": 60}
            conn.execute(Q["history_roll_up"], params)
            conn.execute(Q["history_set_mark"], {"until": ts(until)})
        return until

    def history(
        self, since: datetime, until: datetime, step: timedelta, queue: str | None = None
    ) -> list[HistoryPoint]:
        """Points of `step` from `since` to `until`: rolled-up minutes, then stored jobs."""
        params = {
            "since": ts(since),
            "until": ts(until),
            "step": int(step.total_seconds()),
            "queue": queue,
        }
        with self._db.read() as conn:
            rows = conn.execute(Q["history"], params).fetchall()
        return merged(point_of_row((dt(row[0]), *row[2:])) for row in rows)

    def prune_history(self, before: datetime) -> int:
        """Forget rolled-up minutes before `before`; returns how many rows."""
        with self._db.write() as conn:
            return int(conn.execute(Q["prune_history"], {"before": ts(before)}).rowcount)
