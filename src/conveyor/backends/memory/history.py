"""The memory store's history: finished jobs rolled up per queue and minute (model/history.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

from conveyor.backends.memory.index import JobIndex
from conveyor.model.history import HistoryPoint, add_job, floor_to, points_of
from conveyor.model.job import Job

_MINUTE = timedelta(minutes=1)


class HistoryVerbs(JobIndex):
    """Roll up, read and prune the per-minute history; `MemoryBackend` is made of this too."""

    def roll_up_history(self, until: datetime) -> datetime | None:
        """Count jobs finished from the watermark to `until` into their minutes; move it."""
        with self._lock:
            mark = self._history_mark
            if mark is not None and until <= mark:
                return mark
            for job in self._finished_between(mark, until):
                assert job.finished_at is not None
                add_job(
                    self._history, job.queue, job.state.value, job.run_at, job.started_at,
                    job.finished_at, _MINUTE,
                )  # fmt: skip
            self._history_mark = until
            return until

    def history(
        self, since: datetime, until: datetime, step: timedelta, queue: str | None = None
    ) -> list[HistoryPoint]:
        """Points of `step` from `since` to `until`: rolled-up minutes, then stored jobs."""
        with self._lock:
            mark = self._history_mark
            rows: dict[tuple[str, datetime], list[float]] = {}
            for (name, minute), values in self._history.items():
                if since <= minute < until and (mark is None or minute < mark):
                    key = (name, floor_to(minute, step))
                    into = rows.setdefault(key, [0.0] * len(values))
                    for i, value in enumerate(values):
                        into[i] += value
            lower = since if mark is None or mark < since else mark
            for job in self._finished_between(lower, until):
                assert job.finished_at is not None
                add_job(
                    rows, job.queue, job.state.value, job.run_at, job.started_at,
                    job.finished_at, step,
                )  # fmt: skip
        return points_of(rows, queue)

    def prune_history(self, before: datetime) -> int:
        """Forget rolled-up minutes before `before`; returns how many rows."""
        with self._lock:
            old = [key for key in self._history if key[1] < before]
            for key in old:
                del self._history[key]
        return len(old)

    def _finished_between(self, since: datetime | None, until: datetime) -> list[Job]:
        """Stored jobs that finished in [since, until) (since None: from the start)."""
        found: dict[str, Job] = {}
        for heap in (self._finished_short, self._finished_failed):
            for finished_at, job_id in heap:
                if finished_at >= until or (since is not None and finished_at < since):
                    continue
                job = self._jobs.get(job_id)
                if job is not None and job.finished_at == finished_at:
                    found[job_id] = job
        return list(found.values())
