"""What `conveyor demo` prints: a line per event, progress bars, and the closing tables."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import defaultdict
from typing import Any

from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from conveyor.app import App
from conveyor.cli.demo_jobs import EMAIL
from conveyor.model.job import Job, JobState
from conveyor.runtime.hooks import JobEvent

STATE_STYLE = {
    JobState.COMPLETED: "green",
    JobState.FAILED: "red",
    JobState.CANCELLED: "yellow",
    JobState.RUNNING: "cyan",
}


def describe(job: Job) -> str:
    """`name(arg=value, ...)`, escaped for rich markup."""
    args = ", ".join(f"{key}={value!r}" for key, value in job.args.items())
    return escape(f"{job.name}({args})")


def where(job: Job) -> str:
    """ " [queue] (attempt n/m)", leaving out the default queue and a first attempt."""
    queue = "" if job.queue == "default" else f" [dim]\\[{escape(job.queue)}][/]"
    attempt = f" [dim](attempt {job.attempt}/{job.max_attempts})[/]" if job.attempt > 1 else ""
    return queue + attempt


def short(value: Any, limit: int = 40) -> str:
    """A one-line JSON rendering of `value`, cut at `limit` characters."""
    text = json.dumps(value, default=str)
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


class Narrator:
    """Turns worker hooks into printed lines and progress-bar updates.

    Hooks run on the worker's event loop, except progress hooks of plain (sync) jobs, which run
    on the job's thread: everything that touches shared state holds the lock.
    """

    def __init__(self, bars: Progress, emails: int) -> None:
        self.bars = bars
        self.emails = emails
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._tasks: dict[str, TaskID] = {}
        self._emails_started = 0
        self._emails_done = 0

    def say(self, message: str) -> None:
        """Print a line stamped with the seconds since the demo began."""
        stamp = time.monotonic() - self._start
        self.bars.console.print(f"[dim]{stamp:5.2f}s[/]  {message}")

    def track(self, job: Job, label: str) -> None:
        """Show a progress bar for `job`."""
        with self._lock:
            self._tasks[job.id] = self.bars.add_task(escape(label), total=100, note="waiting")

    def listen(self, app: App) -> None:
        """Register the hooks on `app`."""
        app.on("started")(self._started)
        app.on("progress")(self._progress)
        app.on("succeeded")(self._succeeded)
        app.on("retrying")(self._retrying)
        app.on("failed")(self._failed)

    def _note(self, job: Job, note: str, completed: float | None = None) -> None:
        task = self._tasks.get(job.id)
        if task is not None:
            self.bars.update(task, note=escape(note), completed=completed)

    def _started(self, event: JobEvent) -> None:
        job = event.job
        with self._lock:
            if job.name == EMAIL:
                self._emails_started += 1
                if self._emails_started == 1:
                    self.say(f"[cyan]▶[/] sending {self.emails} emails, several at once")
                return
            self._note(job, "running")
            self.say(f"[cyan]▶ started[/]   {describe(job)}{where(job)}")

    def _progress(self, event: JobEvent) -> None:
        with self._lock:
            self._note(event.job, event.message or "", event.progress)

    def _succeeded(self, event: JobEvent) -> None:
        job = event.job
        with self._lock:
            if job.name == EMAIL:
                self._emails_done += 1
                if self._emails_done == self.emails:
                    self.say(f"[green]✓[/] all {self.emails} emails sent")
                return
            self._note(job, "completed", 100)
            result = "" if event.result is None else f" → {short(event.result)}"
            self.say(f"[green]✓ completed[/] {describe(job)}{result}")

    def _retrying(self, event: JobEvent) -> None:
        job, error = event.job, event.error
        with self._lock:
            self._note(job, f"retrying after attempt {job.attempt}")
            self.say(
                f"[yellow]↻ retrying[/]  {describe(job)} attempt {job.attempt} failed: "
                f"{escape(error.message if error else '?')}"
            )

    def _failed(self, event: JobEvent) -> None:
        job, error = event.job, event.error
        with self._lock:
            self._note(job, "failed")
            self.say(
                f"[red]✗ failed[/]    {describe(job)} after {job.attempt} attempt(s): "
                f"{escape(error.message if error else '?')}"
            )


def summary_table(jobs: list[Job]) -> Table:
    """The demo's jobs grouped by final state and name."""
    groups: dict[tuple[JobState, str], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[(job.state, job.name)].append(job)
    order = list(JobState)
    table = Table(title="Jobs by state", title_justify="left")
    table.add_column("state")
    table.add_column("job")
    table.add_column("count", justify="right")
    table.add_column("attempts", justify="right")
    table.add_column("last error")
    for (state, name), members in sorted(
        groups.items(), key=lambda g: (order.index(g[0][0]), g[0][1])
    ):
        attempts = sorted({job.attempt for job in members})
        span = str(attempts[0]) if len(attempts) == 1 else f"{attempts[0]}-{attempts[-1]}"
        errors = [job.last_error.message for job in members if job.last_error]
        style = STATE_STYLE.get(state, "")
        table.add_row(
            f"[{style}]{state}[/]" if style else str(state),
            name,
            str(len(members)),
            span,
            escape(_error_note(state, errors)),
        )
    return table


def serial_check(reports: list[Job]) -> list[str]:
    """Lines saying whether the serial queue's jobs ran one at a time, in enqueue order."""
    done = [job for job in reports if job.started_at and job.finished_at]
    if len(done) < len(reports) or not reports:
        return ["[yellow]the serial queue did not finish all its reports"]
    by_start = sorted(done, key=lambda job: job.started_at or job.created_at)
    in_order = [job.id for job in by_start] == sorted(job.id for job in done)
    overlaps = sum(
        1
        for before, after in itertools.pairwise(by_start)
        if after.started_at and before.finished_at and after.started_at < before.finished_at
    )
    months = " → ".join(str(job.args.get("month")) for job in by_start)
    if in_order and not overlaps:
        return [f"[green]✓[/] serial queue 'reports' ran one at a time, in order: {months}"]
    return [f"[red]✗[/] serial queue 'reports': order {months}, {overlaps} overlap(s)"]


def _error_note(state: JobState, errors: list[str]) -> str:
    if not errors:
        return ""
    return f"recovered from: {errors[-1]}" if state is JobState.COMPLETED else errors[-1]
