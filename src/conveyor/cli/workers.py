"""`conveyor workers …`: list live workers; quiet, stop or resume one (model/workers.py)."""

from __future__ import annotations

import click
from rich.markup import escape

from conveyor.app import App
from conveyor.backends.records import WorkerInfo
from conveyor.cli.base import Output, ago, listing, verb


@click.group(short_help="List live workers; quiet, stop or resume one.")
def workers() -> None:
    """Worker processes that are alive (recent heartbeat), and what an operator may ask of
    one: quiet (claim no new jobs, finish those running, stay up), stop (shut down as on
    SIGTERM) or resume (claim again). A worker follows within one heartbeat interval.

    \b
    Examples:
      conveyor workers ls
      conveyor workers quiet web-1:4242:1a2b3c4d
      conveyor workers stop web-1:4242:1a2b3c4d --url sqlite:///jobs.db
    """


@workers.command("ls")
@verb
def workers_ls(app: App) -> Output:
    """List live workers: host, pid, queues, concurrency, mode, uptime, last heartbeat. A
    mode an operator asked for that the worker has not reported yet shows as `→ quiet`.

    \b
    Example:
      conveyor workers ls --json
    """
    now = app.clock()
    return listing(
        app.jobs.workers(),
        empty="no live workers",
        columns=("id", "host", "pid", "queues", "slots", "mode", "started", "last seen"),
        row=lambda w: (
            escape(w.id), escape(w.host), str(w.pid),
            escape(",".join(w.queues)) if w.queues else "all", str(w.concurrency),
            _mode(w), ago(w.started_at, now), ago(w.last_seen_at, now),
        ),
    )  # fmt: skip


_MODE_STYLES = {"running": "green", "quiet": "yellow", "stopping": "red"}


def _mode(worker: WorkerInfo) -> str:
    """A worker's mode for the table, with the one asked for and not reported yet."""
    shown = f"[{_MODE_STYLES.get(worker.mode, 'white')}]{escape(worker.mode)}[/]"
    return shown + (f" [dim]→ {worker.pending}[/]" if worker.pending else "")


def _asked(worker: WorkerInfo, what: str) -> Output:
    return Output(
        worker,
        f"worker {escape(worker.id)}: {what} [dim](it follows at its next heartbeat)[/]",
    )


@workers.command("quiet")
@click.argument("worker_id", metavar="ID")
@verb
def workers_quiet(app: App, worker_id: str) -> Output:
    """Ask a worker to claim no new jobs: it finishes those running, hands back the ones it
    held ready, and stays up (shown as quiet) until resumed or stopped. An unknown or gone
    worker is refused.

    \b
    Example:
      conveyor workers quiet web-1:4242:1a2b3c4d
    """
    return _asked(app.jobs.quiet_worker(worker_id), "asked to go quiet")


@workers.command("stop")
@click.argument("worker_id", metavar="ID")
@verb
def workers_stop(app: App, worker_id: str) -> Output:
    """Ask a worker to shut down gracefully, as SIGTERM does: it claims nothing new, lets
    its running jobs finish within its shutdown_timeout (the rest go back to the queue,
    their attempt not counted), then exits with status 0. An unknown or gone worker is
    refused.

    \b
    Example:
      conveyor workers stop web-1:4242:1a2b3c4d
    """
    return _asked(app.jobs.stop_worker(worker_id), "asked to stop")


@workers.command("resume")
@click.argument("worker_id", metavar="ID")
@verb
def workers_resume(app: App, worker_id: str) -> Output:
    """Let a quieted worker claim jobs again (a stopping worker cannot be resumed).

    \b
    Example:
      conveyor workers resume web-1:4242:1a2b3c4d
    """
    return _asked(app.jobs.resume_worker(worker_id), "asked to resume claiming")


__all__ = ["workers"]
