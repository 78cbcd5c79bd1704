"""`conveyor recurring …`, `conveyor queues …` and `conveyor stats`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.app import App
from conveyor.backends.records import Counts
from conveyor.cli.base import Limit, Output, ago, listing, styled_state, verb, when
from conveyor.cli.history import history_data, print_history
from conveyor.cli.jobs import enqueued
from conveyor.model.history import HistoryPoint, parse_range
from conveyor.model.queues import SETTING_FIELDS
from conveyor.model.recurring import RecurringJob
from conveyor.recurring import RecurringService
from conveyor.services import QueueStatus


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
@verb
def recurring_ls(app: App) -> Output:
    """List recurring jobs: schedule, enabled, next and last fire, last run's state.

    \b
    Example:
      conveyor recurring ls --json
    """
    now = app.clock()
    return listing(
        [_as_shown(item) for item in app.recurring_jobs.list()],
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
@verb
def recurring_show(app: App, name: str) -> Output:
    """Show one recurring job.

    \b
    Example:
      conveyor recurring show nightly-report
    """
    item = app.recurring_jobs.get(name)
    return Output(
        _as_shown(item), lambda out: _print_recurring(out, item, app.clock(), app.recurring_jobs)
    )


def _as_shown(item: RecurringJob) -> RecurringJob:
    """A disabled job fires at no time: shown (and in --json) without a next fire time."""
    return item if item.enabled else replace(item, next_fire_at=None)


def _print_recurring(
    out: Console, item: RecurringJob, now: datetime, service: RecurringService
) -> None:
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
    out.print(grid)


@recurring.command("enable")
@click.argument("name")
@verb
def recurring_enable(app: App, name: str) -> Output:
    """Let a recurring job fire again, from its next tick on.

    \b
    Example:
      conveyor recurring enable nightly-report
    """
    item = app.recurring_jobs.enable(name)
    return Output(
        item,
        lambda out: out.print(
            f"enabled {escape(name)}; next fire {when(item.next_fire_at, app.clock())}"
        ),
    )


@recurring.command("disable")
@click.argument("name")
@verb
def recurring_disable(app: App, name: str) -> Output:
    """Stop a recurring job firing (it stays defined; code syncs keep this choice).

    \b
    Example:
      conveyor recurring disable nightly-report
    """
    return Output(_as_shown(app.recurring_jobs.disable(name)), f"disabled {escape(name)}")


@recurring.command("rm")
@click.argument("name")
@verb
def recurring_rm(app: App, name: str) -> Output:
    """Delete a recurring job's definition (its past runs stay as jobs).

    A definition that is still in the app's code comes back when a worker starts:
    remove it from the code too, or use `disable`.

    \b
    Example:
      conveyor recurring rm nightly-report
    """
    app.recurring_jobs.remove(name)
    return Output({"removed": name}, f"removed {escape(name)}")


@recurring.command("run")
@click.argument("name")
@verb
def recurring_run(app: App, name: str) -> Output:
    """Enqueue one run of a recurring job now, outside its schedule.

    \b
    Example:
      conveyor recurring run nightly-report
    """
    result = app.recurring_jobs.run_now(name)
    return enqueued(result.job, created=result.created)


# queues --------------------------------------------------------------------------------------
@click.group(short_help="List queues, change their settings, pause and resume them.")
def queues() -> None:
    """Queues: waiting and running jobs, their fleet-wide settings, pause and resume.

    \b
    Examples:
      conveyor queues ls
      conveyor queues set reports --concurrency 1
      conveyor queues pause emails
    """


@queues.command("ls")
@verb
def queues_ls(app: App) -> Output:
    """List queues: waiting, due and running jobs, the oldest due job's age, paused or not.

    \b
    Example:
      conveyor queues ls --json
    """
    now = app.clock()
    return listing(
        app.jobs.queues(),
        empty="no queues yet",
        columns=(
            "queue", "waiting", "due", "running", "limit", "max size", "rate", "oldest due",
            "status",
        ),
        right=("waiting", "due", "running", "limit", "max size", "rate"),
        row=lambda q: (
            escape(q.name), str(q.waiting), str(q.due), str(q.running),
            _setting(q, "concurrency"), _setting(q, "max_size"), _setting(q, "rate_limit"),
            ago(q.oldest_due_at, now), "[yellow]paused[/]" if q.paused else "[green]active[/]",
        ),
    )  # fmt: skip


def _setting(queue: QueueStatus, name: str) -> str:
    """A setting's value for the table, starred when an operator set it."""
    value = getattr(queue.settings, name)
    shown = "-" if value is None else str(value)
    if name == "max_size" and value is not None:
        shown += f" ({queue.when_full})"
    return shown + ("*" if name in queue.operator_set else "")


def _settings_line(queue: QueueStatus) -> str:
    """One line of a queue's settings, saying which an operator set."""
    parts = []
    for name in SETTING_FIELDS:
        value = getattr(queue.settings, name)
        shown = "none" if value is None else str(value)
        mark = " [dim](operator)[/]" if name in queue.operator_set else ""
        parts.append(f"{name} {escape(shown)}{mark}")
    return f"queue {escape(queue.name)}: " + ", ".join(parts)


@queues.command("show")
@click.argument("name")
@verb
def queues_show(app: App, name: str) -> Output:
    """Show one queue: its jobs and its settings as stored (what every worker honours), and
    which of them an operator set.

    \b
    Example:
      conveyor queues show reports --json
    """
    queue = app.jobs.queue(name)
    return Output(queue, _settings_line(queue))


@queues.command("set")
@click.argument("name")
@click.option(
    "--concurrency",
    type=Limit(),
    help="At most N of its jobs run at once, fleet-wide; 'none' lifts it.",
)
@click.option(
    "--max-size", type=Limit(), help="At most N of its jobs wait; 'none' lifts the bound."
)
@click.option(
    "--when-full",
    type=click.Choice(["wait", "refuse"]),
    help="What an enqueue past max-size does: wait for room, or refuse at once.",
)
@click.option(
    "--rate-limit",
    metavar="N/s|m|h",
    help="At most N of its jobs start in any second, minute or hour, fleet-wide; 'none' lifts it.",
)
@click.option("--reset", is_flag=True, help="Hand every setting back to the app's code.")
@click.option("--create", is_flag=True, help="Set the settings of a queue that has no jobs yet.")
@verb
def queues_set(
    app: App,
    name: str,
    concurrency: int | str | None,
    max_size: int | str | None,
    when_full: str | None,
    rate_limit: str | None,
    reset: bool,
    create: bool,
) -> Output:
    """Change a queue's settings for the whole fleet while workers run: each worker applies
    them at its next claim, each producer at its next enqueue. A setting changed here is
    kept over the code's `app.queue(...)` declaration until --reset. A queue with no jobs
    and no job declared on it is refused (a typo), unless --create.

    \b
    Examples:
      conveyor queues set reports --concurrency 1
      conveyor queues set imports --max-size 10000 --when-full refuse
      conveyor queues set partner-api --rate-limit 100/m
      conveyor queues set reports --concurrency none
      conveyor queues set reports --reset
    """
    given = {
        "concurrency": concurrency,
        "max_size": max_size,
        "when_full": when_full,
        "rate_limit": rate_limit,
    }
    changes = {k: None if v == "none" else v for k, v in given.items() if v is not None}
    if reset:
        if changes:
            raise click.UsageError("--reset hands every setting back to code: give no other")
        queue = app.jobs.reset_queue_settings(name)
        return Output(queue, _settings_line(queue) + " [dim](from code)[/]")
    if not changes:
        raise click.UsageError(
            "give --concurrency, --max-size, --when-full, --rate-limit or --reset"
        )
    queue = app.jobs.set_queue_settings(name, changes, create=create)
    return Output(queue, _settings_line(queue))


@queues.command("pause")
@click.argument("name")
@click.option("--create", is_flag=True, help="Pause a queue that has no jobs yet.")
@verb
def queues_pause(app: App, name: str, create: bool) -> Output:
    """Stop every worker claiming a queue's jobs (running ones finish). A queue with no jobs
    and no job declared on it is refused (a typo), unless --create.

    \b
    Example:
      conveyor queues pause emails
    """
    app.jobs.pause_queue(name, create=create)
    return Output({"queue": name, "paused": True}, f"paused queue {escape(name)}")


@queues.command("resume")
@click.argument("name")
@verb
def queues_resume(app: App, name: str) -> Output:
    """Let workers claim a paused queue's jobs again.

    \b
    Example:
      conveyor queues resume emails
    """
    app.jobs.resume_queue(name)
    return Output({"queue": name, "paused": False}, f"resumed queue {escape(name)}")


# stats -------------------------------------------------------------------------------------
@click.command(short_help="Jobs by state and queue, throughput, workers, history.")
@click.option("--minutes", type=click.IntRange(1, 24 * 60), default=60, show_default=True,
              help="Throughput over this many minutes.")  # fmt: skip
@click.option("--range", "span", metavar="1h|24h|7d", default=None,
              help="History kept in the store: the last hour by minute, day by 15 min, "
                   "or week by hour.")  # fmt: skip
@click.option("--queue", default=None, help="History of this queue only (implies --range 1h).")
@verb
def stats(app: App, minutes: int, span: str | None, queue: str | None) -> Output:
    """Jobs by state (overall and per queue), throughput and live workers; with --range, the
    history: completed, failed, run and wait times step by step.

    \b
    Examples:
      conveyor stats --minutes 15
      conveyor stats --range 24h --queue emails --json
    """
    counts = app.jobs.counts()
    per_minute = app.jobs.throughput(minutes)
    completed = sum(t.completed for t in per_minute)
    failed = sum(t.failed for t in per_minute)
    alive = len(app.jobs.workers())
    data: dict[str, object] = {
        "by_state": counts.by_state,
        "by_queue": counts.by_queue,
        "throughput": {"minutes": minutes, "completed": completed, "failed": failed},
        "workers": alive,
    }
    history: list[HistoryPoint] | None = None
    if span is not None or queue is not None:
        found = parse_range(span or "1h")
        history = app.jobs.history(found.name, queue)
        data["history"] = history_data(found.name, queue, history)

    def show(out: Console) -> None:
        _print_stats(out, counts, minutes, completed, failed, alive)
        if history is not None:
            print_history(out, history, queue)

    return Output(data, show)


def _print_stats(
    out: Console, counts: Counts, minutes: int, completed: int, failed: int, alive: int
) -> None:
    states = [s for s in ("scheduled", "pending", "running", "completed", "failed",
                          "cancelled", "skipped")]  # fmt: skip
    table = Table(header_style="bold", title="jobs by state", title_justify="left")
    table.add_column("queue")
    for state in states:
        table.add_column(state, justify="right")
    for queue, by_state in sorted(counts.by_queue.items()):
        table.add_row(escape(queue), *(str(by_state.get(s, 0)) for s in states))
    table.add_row("[bold]all[/]", *(f"[bold]{counts.by_state.get(s, 0)}[/]" for s in states))
    out.print(table)
    rate = completed / minutes
    out.print(
        f"last {minutes} min: {completed} completed, {failed} failed ({rate:.1f}/min) · "
        f"{alive} live worker(s)"
    )


__all__ = ["queues", "recurring", "stats"]
