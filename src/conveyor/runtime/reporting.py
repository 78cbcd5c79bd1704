"""Buffers jobs' progress and log lines so the store sees them in batches."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from conveyor.backends.records import Report
from conveyor.model.job import LogLine, utcnow


@dataclass(slots=True)
class _Pending:
    progress: float | None = None
    message: str | None = None
    logs: list[LogLine] = field(default_factory=list)


class ReportBuffer:
    """Collects updates from any thread; `take()` hands them over as one batch.

    `on_full` is called (from the reporting thread) when `flush_count` updates are waiting, so
    the writer can flush early instead of waiting for its interval.
    """

    def __init__(self, flush_count: int, on_full: Callable[[], None]) -> None:
        self._flush_count = flush_count
        self._on_full = on_full
        self._lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._count = 0

    def add(
        self, job_id: str, progress: float | None, message: str | None, line: str | None
    ) -> None:
        """Record one progress update or log line of a running job."""
        with self._lock:
            pending = self._pending.get(job_id)
            if pending is None:
                pending = self._pending[job_id] = _Pending()
            if progress is not None:
                pending.progress = progress
                pending.message = message
            if line is not None:
                pending.logs.append(LogLine(utcnow(), line))
            self._count += 1
            full = self._count >= self._flush_count
        if full:
            self._on_full()

    def __bool__(self) -> bool:
        return bool(self._pending)

    def take(self) -> list[Report]:
        """Everything buffered so far, as one Report per job; the buffer is emptied."""
        with self._lock:
            pending, self._pending, self._count = self._pending, {}, 0
        return [
            Report(job_id, p.progress, p.message, tuple(p.logs)) for job_id, p in pending.items()
        ]

    def put_back(self, reports: list[Report]) -> None:
        """Return reports a failed write could not store, ahead of newer ones."""
        with self._lock:
            for report in reports:
                newer = self._pending.get(report.job_id)
                merged = _Pending(report.progress, report.progress_message, list(report.logs))
                if newer is not None:
                    if newer.progress is not None:
                        merged.progress, merged.message = newer.progress, newer.message
                    merged.logs.extend(newer.logs)
                self._pending[report.job_id] = merged
