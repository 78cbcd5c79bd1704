"""The Context a running job receives: progress, logs, cancellation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conveyor.model.job import Job

#: Where a context sends its progress and log lines (the worker's buffer).
ReportSink = Callable[[str, "float | None", "str | None", "str | None"], None]


class Context:
    """Handed to every job as its first argument.

    `progress()` and `log()` are buffered by the worker and written to the store in batches, so
    calling them often is cheap. `cancel_requested` becomes True when an operator cancels the job
    or its timeout passes: sync jobs should check it in their loops (threads cannot be killed).
    """

    __slots__ = ("_sink", "cancel_requested", "job")

    def __init__(self, job: Job, sink: ReportSink) -> None:
        self.job = job
        self._sink = sink
        self.cancel_requested = False

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    @property
    def name(self) -> str:
        """The job's registered name."""
        return self.job.name

    @property
    def attempt(self) -> int:
        """This attempt's number, starting at 1."""
        return self.job.attempt

    @property
    def args(self) -> dict[str, Any]:
        """The job's arguments."""
        return self.job.args

    @property
    def metadata(self) -> dict[str, str]:
        """The metadata given at enqueue time."""
        return self.job.metadata

    def progress(self, percent: float, message: str | None = None) -> None:
        """Report progress from 0 to 100, with an optional message."""
        percent = min(max(float(percent), 0.0), 100.0)
        self._sink(self.job.id, percent, message, None)

    def log(self, message: str) -> None:
        """Append a timestamped line to the job's log."""
        self._sink(self.job.id, None, None, str(message))

    def __repr__(self) -> str:
        return f"<Context {self.job.name} {self.job.id} attempt {self.job.attempt}>"


__all__ = ["Context", "ReportSink"]
