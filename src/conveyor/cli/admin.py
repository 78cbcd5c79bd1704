"""`conveyor recurring …`, `conveyor queues …`, `conveyor workers ls` and `conveyor stats`."""

from __future__ import annotations

import json
from datetime import datetime

import click
from rich.markup import escape
from rich.table import Table

from conveyor.cli.base import (
    ago,
    common,
    console,
    load,
    print_json,
    print_listing,
    styled_state,
    when,
)
from conveyor.model.recurring import RecurringJob
from conveyor.recurring import RecurringService


# recurring -----------------------------------------------------------------------------------
@click.group(short_help="List, inspect, toggle, remove and run recurring jobs.")
def recurring() -> None:
    """Recurring jobs: CRON schedules that enqueue a job at each tick.

    \b
    Examples:
      conveyor recurring ls
      conveyor recurring disable nightly-report
      conveyor recurring run nightly-report
    """


@recurring.command("ls")
@common
def recurring_ls(app_ref: str | None, as_json: bool) -> None:
    """List recurring jobs: schedule, enabled, next and last fire, last run's state.

    \b
    Example:
      conveyor recurring ls --json
    """
    app = load(app_ref)
    now = app.clock()
    print_listing(
        app.recurring_jobs.list(),
        as_json,
        empty="no recurring jobs (they are stored when a worker starts)",
        columns=("name", "schedule", "job", "enabled", "next fire", "last fire", "last run"),
        row=lambda item: (
            escape(item.name),
            f"{escape(item.cron)} [dim]{escape(item.timezone)}[/]",
            escape(item.job_name),
            "[green]yes[/]" if item.enabled else "[red]no[/]",
            ago(item.next_fire_at, now) if item.enabled else "-",
            ago(item.last_fire_at, now),
            styled_state(item.last_job_state) if item.last_job_state else "-",
        ),
    )


@recurring.command("show")
@click.argument("name")
@common
def recurring_show(name: str, app_ref: str | None, as_json: bool) -> None:
    """Show one recurring job.

    \b
    Example:
      conveyor recurring show nightly-report
    """
    app = load(app_ref)
    item = app.recurring_jobs.get(name)
    if as_json:
        print_json(item)
        return
    _print_recurring(item, app.clock(), app.recurring_jobs)


def _print_recurring(item: RecurringJob, now: datetime, service: RecurringService) -> None:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows = [
        ("name", escape(item.name)),
        ("schedule", f"{escape(item.cron)} ({escape(service.describe(item))}, {item.timezone})"),
        ("job", escape(item.job_name)),
        ("arguments", escape(json.dumps(item.args))),
        ("enabled", ("yes" if item.enabled else "no") + (" (operator)" if item.toggled else "")),
        ("overlap", item.overlap),
        ("catch up", str(item.catch_up)),
        ("next fire", when(item.next_fire_at, now) if item.enabled else "-"),
        ("last fire", when(item.last_fire_at, now)),
        ("last run", f"{item.last_job_id} {styled_state(item.last_job_state)}"
         if item.last_job_id and item.last_job_state else (item.last_job_id or "-")),
    ]  # fmt: skip
    for label, value in rows:
        grid.add_row(label, value)
    console().print(grid)


@recurring.command("enable")
@click.argument("name")
@common
def recurring_enable(name: str, app_ref: str | None, as_json: bool) -> None:
    """Let a recurring job fire again, from its next tick on.

    \b
    Example:
      conveyor recurring enable nightly-report
    """
    app = load(app_ref)
    item = app.recurring_jobs.enable(name)
    if as_json:
        print_json(item)
    else:
        console().print(f"enabled {escape(name)}; next fire {when(item.next_fire_at, app.clock())}")


@recurring.command("disable")
@click.argument("name")
@common
def recurring_disable(name: str, app_ref: str | None, as_json: bool) -> None:
    """Stop a recurring job firing (it stays defined; code syncs keep this choice).

    \b
    Example:
      conveyor recurring disable nightly-report
    """
    app = load(app_ref)
    item = app.recurring_jobs.disable(name)
    if as_json:
        print_json(item)
    else:
        console().print(f"disabled {escape(name)}")


@recurring.command("rm")
@click.argument("name")
@common
def recurring_rm(name: str, app_ref: str | None, as_json: bool) -> None:
    """Delete a recurring job's definition (its past runs stay as jobs).

    A definition that is still in the app's code comes back when a worker starts:
    remove it from the code too, or use `disable`.

    \b
    Example:
      conveyor recurring rm nightly-report
    """
    app = load(app_ref)
    app.recurring_jobs.remove(name)
    if as_json:
        print_json({"removed": name})
    else:
        console().print(f"removed {escape(name)}")


@recurring.command("run")
@click.argument("name")
@common
def recurring_run(name: str, app_ref: str | None, as_json: bool) -> None:
    """Enqueue one run of a recurring job now, outside its schedule.

    \b
    Example:
      conveyor recurring run nightly-report
    """
    app = load(app_ref)
    result = app.recurring_jobs.run_now(name)
    job = result.job
    if as_json:
        print_json({"id": job.id, "created": result.created, "state": job.state.value})
    else:
        console().print(f"enqueued {escape(job.name)} {job.id} ({styled_state(job.state)})")


# queues --------------------------------------------------------------------------------------
@click.group(short_help="List, pause and resume queues.")
def queues() -> None:
    """Queues: waiting and running jobs, pause and resume.

    \b
    Examples:
      conveyor queues ls
      conveyor queues pause emails
    """


@queues.command("ls")
@common
def queues_ls(app_ref: str | None, as_json: bool) -> None:
    """List queues: waiting, due and running jobs, the oldest due job's age, paused or not.

    \b
    Example:
      conveyor queues ls --json
    """
    app = load(app_ref)
    now = app.clock()
    print_listing(
        app.jobs.queues(),
        as_json,
        empty="no queues yet",
        columns=("queue", "waiting", "due", "running", "limit", "oldest due", "status"),
        right=("waiting", "due", "running", "limit"),
        row=lambda q: (
            escape(q.name), str(q.waiting), str(q.due), str(q.running),
            str(q.concurrency) if q.concurrency else "-",
            ago(q.oldest_due_at, now), "[yellow]paused[/]" if q.paused else "[green]active[/]",
        ),
    )  # fmt: skip


@queues.command("pause")
@click.argument("name")
@common
def queues_pause(name: str, app_ref: str | None, as_json: bool) -> None:
    """Stop every worker claiming a queue's jobs (running ones finish).

    \b
    Example:
      conveyor queues pause emails
    """
    app = load(app_ref)
    app.jobs.pause_queue(name)
    if as_json:
        print_json({"queue": name, "paused": True})
    else:
        console().print(f"paused queue {escape(name)}")


@queues.command("resume")
@click.argument("name")
@common
def queues_resume(name: str, app_ref: str | None, as_json: bool) -> None:
    """Let workers claim a paused queue's jobs again.

    \b
    Example:
      conveyor queues resume emails
    """
    app = load(app_ref)
    app.jobs.resume_queue(name)
    if as_json:
        print_json({"queue": name, "paused": False})
    else:
        console().print(f"resumed queue {escape(name)}")


# workers and stats ---------------------------------------------------------------------------
@click.group(short_help="List live workers.")
def workers() -> None:
    """Worker processes that are alive (recent heartbeat).

    \b
    Example:
      conveyor workers ls
    """


@workers.command("ls")
@common
def workers_ls(app_ref: str | None, as_json: bool) -> None:
    """List live workers: host, pid, queues, concurrency, uptime, last heartbeat.

    \b
    Example:
      conveyor workers ls --json
    """
    app = load(app_ref)
    now = app.clock()
    print_listing(
        app.jobs.workers(),
        as_json,
        empty="no live workers",
        columns=("id", "host", "pid", "queues", "slots", "started", "last seen"),
        row=lambda w: (
            escape(w.id), escape(w.host), str(w.pid),
            escape(",".join(w.queues)) if w.queues else "all", str(w.concurrency),
            ago(w.started_at, now), ago(w.last_seen_at, now),
        ),
    )  # fmt: skip


@click.command(short_help="Jobs by state and queue, throughput, workers.")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True,
              help="Throughput over this many minutes.")  # fmt: skip
@common
def stats(minutes: int, app_ref: str | None, as_json: bool) -> None:
    """Jobs by state (overall and per queue), throughput and live workers.

    \b
    Example:
      conveyor stats --minutes 15
    """
    app = load(app_ref)
    counts = app.jobs.counts()
    per_minute = app.jobs.throughput(minutes)
    completed = sum(t.completed for t in per_minute)
    failed = sum(t.failed for t in per_minute)
    alive = len(app.jobs.workers())
    if as_json:
        print_json({
            "by_state": counts.by_state,
            "by_queue": counts.by_queue,
            "throughput": {"minutes": minutes, "completed": completed, "failed": failed},
            "workers": alive,
        })  # fmt: skip
        return
    states = [s for s in ("scheduled", "pending", "running", "completed", "failed",
                          "cancelled", "skipped")]  # fmt: skip
    table = Table(header_style="bold", title="jobs by state", title_justify="left")
    table.add_column("queue")
    for state in states:
        table.add_column(state, justify="right")
    for queue, by_state in sorted(counts.by_queue.items()):
        table.add_row(escape(queue), *(str(by_state.get(s, 0)) for s in states))
    table.add_row("[bold]all[/]", *(f"[bold]{counts.by_state.get(s, 0)}[/]" for s in states))
    out = console()
    out.print(table)
    rate = completed / minutes
    out.print(
        f"last {minutes} min: {completed} completed, {failed} failed ({rate:.1f}/min) · "
        f"{alive} live worker(s)"
    )


__all__ = ["queues", "recurring", "stats", "workers"]
