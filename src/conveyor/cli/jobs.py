"""`conveyor jobs …`: list, show (and follow), enqueue, cancel, retry, delete and purge jobs."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import click
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from conveyor.app import App
from conveyor.backends.records import Page
from conveyor.cli.base import (
    Duration,
    JsonObject,
    Output,
    ago,
    common,
    emit,
    err_console,
    fail,
    load,
    store_option,
    styled_state,
    verb,
    when,
)
from conveyor.cli.loading import NOT_FOUND, USAGE
from conveyor.errors import ConveyorError
from conveyor.model.job import FINISHED_STATES, Job, JobState, LogLine
from conveyor.model.logs import dropped_count

STATE_NAMES = [state.value for state in JobState]
FOLLOW_INTERVAL = 0.25  # seconds between reads of a followed job (another process runs it)
PURGE_STEPS = 20


@click.group(short_help="List, inspect and manage jobs.")
def jobs() -> None:
    """List, inspect and manage jobs.

    \b
    Examples:
      conveyor jobs ls --state failed
      conveyor jobs show 0190c3e2-… --follow
      conveyor jobs retry --failed
    """


def _states(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [part.strip() for part in value.split(",") if part.strip()]
    bad = [name for name in names if name not in STATE_NAMES]
    if bad or not names:
        raise click.BadParameter(
            f"unknown state {', '.join(bad) or repr(value)}; states are: {', '.join(STATE_NAMES)}"
        )
    return names


@jobs.command("ls")
@click.option("--state", "-s", callback=_states, metavar="STATE[,STATE]", help="Only these states.")
@click.option("--name", "-n", help="Only jobs with this name.")
@click.option("--queue", "-q", help="Only jobs in this queue.")
@click.option("--search", help="Text in the id, name, arguments, metadata or last error message.")
@click.option("--name-contains", help="A part of the name (any case).")
@click.option("--created-after", metavar="TIME", help="Created at or after: ISO time or 2h, 7d.")
@click.option("--created-before", metavar="TIME", help="Created before: ISO time or 2h, 7d.")
@click.option("--finished-after", metavar="TIME", help="Finished at or after TIME.")
@click.option("--finished-before", metavar="TIME", help="Finished before TIME.")
@click.option("--worker", metavar="ID", help="Running on this worker (conveyor workers ls).")
@click.option(
    "--error-kind", metavar="KIND", help="Last error's kind: error, timeout, lost, crashed…"
)
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--per-page", type=click.IntRange(1, 1000), default=50, show_default=True)
@verb
def list_jobs(
    app: App,
    state: list[str] | None,
    name: str | None,
    queue: str | None,
    search: str | None,
    name_contains: str | None,
    created_after: str | None,
    created_before: str | None,
    finished_after: str | None,
    finished_before: str | None,
    worker: str | None,
    error_kind: str | None,
    page: int,
    per_page: int,
) -> Output:
    """List jobs, newest first, with filters and paging.

    TIME is an ISO 8601 date or time (UTC unless it has an offset) or a duration before now
    (90s, 15m, 2h, 7d, 2w).

    \b
    Examples:
      conveyor jobs ls --state failed,cancelled --queue emails
      conveyor jobs ls --name send_email --page 2 --per-page 20 --json
      conveyor jobs ls --search ada@example.org --finished-after 2h
      conveyor jobs ls --error-kind timeout --name-contains billing.
    """
    found = app.jobs.list(
        state=state,
        name=name,
        queue=queue,
        search=search,
        page=page,
        per_page=per_page,
        name_contains=name_contains,
        created_after=created_after,
        created_before=created_before,
        finished_after=finished_after,
        finished_before=finished_before,
        worker=worker,
        error_kind=error_kind,
    )
    data = {
        "jobs": [job_summary(job) for job in found.jobs],
        "total": found.total,
        "total_exact": found.total_exact,
        "estimate": found.estimate,
        "page": found.page,
        "per_page": found.per_page,
    }
    return Output(data, lambda out: _print_page(out, found, app.clock()))


def _print_page(out: Console, found: Page, now: datetime) -> None:
    table = Table(title=None, header_style="bold", expand=False)
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("name", overflow="fold")
    table.add_column("queue")
    table.add_column("state")
    table.add_column("try", justify="right")
    table.add_column("progress", justify="right")
    table.add_column("created", justify="right")
    for job in found.jobs:
        table.add_row(
            job.id,
            escape(job.name),
            escape(job.queue),
            styled_state(job.state),
            f"{job.attempt}/{job.max_attempts}",
            f"{job.progress:.0f}%" if job.progress else "",
            ago(job.created_at, now),
        )
    pages = max(1, math.ceil(found.total / found.per_page))
    more = "" if found.total_exact else "+"  # the store counts up to LIST_COUNT_CAP
    if found.jobs:
        out.print(table)
    else:
        out.print("no jobs match")
    count = f"{found.total:,}{more} job(s)"
    if found.estimate is not None:
        count = f"about {found.estimate:,} job(s) (counted up to {found.total:,})"
    out.print(f"page {found.page} of {pages:,}{more} · {count}", style="dim")


def job_summary(job: Job) -> dict[str, Any]:
    """The fields of a job that a listing shows, as JSON values."""
    return {
        "id": job.id,
        "name": job.name,
        "queue": job.queue,
        "state": job.state.value,
        "attempt": job.attempt,
        "max_attempts": job.max_attempts,
        "priority": job.priority,
        "progress": job.progress,
        "created_at": job.created_at.isoformat(),
        "run_at": job.run_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


@jobs.command("show")
@click.argument("job_id")
@click.option(
    "--follow", "-f", is_flag=True, help="Stream progress and new log lines until it ends."
)
@click.option("--logs", "log_count", type=click.IntRange(min=0), default=50, show_default=True,
              help="How many of the latest log lines to show.")  # fmt: skip
@click.option("--timeout", type=click.FloatRange(min=0), help="Stop following after this many s.")
@verb
def show(
    app: App,
    job_id: str,
    follow: bool,
    log_count: int,
    timeout: float | None,
    as_json: bool,
) -> Output:
    """Show a job: arguments, progress, logs, attempts and errors.

    With --follow, a running (or waiting) job's progress bar and new log lines are streamed
    until it ends; the exit code is then 0 if it completed, 1 otherwise.

    \b
    Examples:
      conveyor jobs show 0190c3e2-7a1b-7c3d-8e4f-0123456789ab
      conveyor jobs show 0190c3e2-7a1b-7c3d-8e4f-0123456789ab --follow
    """
    job = app.jobs.require(job_id)
    if follow:
        job = follow_job(app, job, timeout, None if as_json else err_console())
    failed = follow and job.state is not JobState.COMPLETED
    return Output(job, lambda out: render_job(out, job, app, log_count), 1 if failed else 0)


def render_job(out: Console, job: Job, app: App, log_count: int) -> None:
    """Print a job's details, arguments, errors and latest logs."""
    now = app.clock()
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("name", escape(job.name)),
        ("queue", escape(job.queue)),
        (
            "state",
            styled_state(job.state) + (" (cancel requested)" if job.cancel_requested else ""),
        ),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("priority", str(job.priority)),
        ("created", when(job.created_at, now)),
        ("run at", when(job.run_at, now)),
        ("started", when(job.started_at, now)),
        ("finished", when(job.finished_at, now)),
    ]
    if job.state is JobState.RUNNING or job.progress:
        message = f"  {escape(job.progress_message)}" if job.progress_message else ""
        rows.append(("progress", f"{_bar(job.progress)} {job.progress:.0f}%{message}"))
    optional = [
        ("worker", job.worker_id),
        ("unique key", job.unique_key),
        ("recurring", job.recurring_name),
        ("workflow", f"{job.workflow_id} (step {job.step})" if job.workflow_id else None),
        ("timeout", f"{job.timeout:g} s" if job.timeout else None),
    ]
    rows += [(label, escape(value)) for label, value in optional if value]
    for label, value in rows:
        facts.add_row(label, value)
    parts: list[Any] = [facts, "", "[bold]arguments[/]", escape(json.dumps(job.args, indent=2))]
    if job.metadata:
        parts += ["", "[bold]metadata[/]", escape(json.dumps(job.metadata, indent=2))]
    if job.state is JobState.COMPLETED and job.result is not None:
        parts += ["", "[bold]result[/]", escape(json.dumps(job.result, indent=2, default=str))]
    out.print(Panel(Group(*parts), title=f"job {escape(job.name)}", expand=False))
    if job.errors:
        errors = Table(title="attempts that failed", header_style="bold", title_justify="left")
        errors.add_column("attempt", justify="right")
        errors.add_column("when")
        errors.add_column("kind")
        errors.add_column("error", overflow="fold")
        for error in job.errors:
            errors.add_row(
                str(error.attempt), ago(error.at, now), error.kind, escape(error.message)
            )
        out.print(errors)
        last = job.errors[-1]
        if last.traceback:
            out.print("[bold]traceback of the last error[/]")
            out.print(escape(last.traceback.rstrip()), style="dim")
    if job.logs and log_count:
        shown = job.logs[-log_count:]
        hidden = len(job.logs) - len(shown)
        out.print(
            f"[bold]logs[/] ({len(job.logs)} stored"
            + (f", {hidden} older not shown)" if hidden else ")")
        )
        for line in shown:
            out.print(f"[dim]{line.at.strftime('%H:%M:%S')}[/] {escape(line.message)}")


def _bar(progress: float, width: int = 20) -> str:
    filled = round(max(0.0, min(progress, 100.0)) / 100 * width)
    return "█" * filled + "░" * (width - filled)


def log_position(logs: tuple[LogLine, ...]) -> int:
    """How many lines the job has written so far (dropped ones included)."""
    dropped = dropped_count(logs)
    return dropped + len(logs) - (1 if dropped else 0)


def new_lines(logs: tuple[LogLine, ...], seen: int) -> list[LogLine]:
    """The lines written after the first `seen` (those still stored)."""
    body = list(logs[1:] if dropped_count(logs) else logs)
    fresh = log_position(logs) - seen
    return body[-fresh:] if fresh > 0 else []


def follow_job(app: App, job: Job, timeout: float | None, out: Console | None) -> Job:
    """Read the job again until it is finished, streaming progress and new log lines to `out`
    (None: silently). Exits with code 1 after `timeout` seconds."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    ticker = threading.Event()
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[message]}"),
        TimeElapsedColumn(),
        console=out,
        disable=out is None,
        transient=True,
    )
    with progress:
        task = progress.add_task(f"{job.name} [{job.state}]", total=100, message="")
        while True:
            for line in new_lines(job.logs, seen):
                if out is not None:
                    progress.console.print(
                        f"[dim]{line.at.strftime('%H:%M:%S')}[/] {escape(line.message)}"
                    )
            seen = log_position(job.logs)
            progress.update(
                task,
                completed=job.progress,
                description=f"{escape(job.name)} [{job.state}]",
                message=escape(job.progress_message or ""),
            )
            if job.state in FINISHED_STATES:
                break
            if deadline is not None and time.monotonic() >= deadline:
                progress.stop()
                fail(f"job {job.id} is still {job.state} after {timeout:g} s")
            ticker.wait(FOLLOW_INTERVAL)  # the job runs elsewhere: the store is the only signal
            job = app.jobs.require(job.id)
    if out is not None:
        out.print(f"job {job.id} {styled_state(job.state)}")
    return job


@jobs.command("enqueue")
@click.argument("name")
@click.option("--args", "args", type=JsonObject(), default="{}", help="Arguments as a JSON object.")
@click.option("--queue", "-q", help="Queue (default: the job's).")
@click.option("--priority", type=int, help="Higher runs first (default: the job's).")
@click.option("--delay", type=Duration(), help="Run after this long, e.g. 30s, 5m, 1h.")
@click.option("--unique-key", help="Do nothing if an active job has this key.")
@click.option("--concurrency-key",
              help="Never run at once with a job of the same key; {arg} is replaced by that "
              "argument, e.g. 'tenant:{tenant_id}'.")  # fmt: skip
@click.option("--key-concurrency", type=int,
              help="How many jobs of its concurrency key may run at once (default 1).")  # fmt: skip
@click.option("--rate-limit",
              help="At most N starts in any second, minute or hour, e.g. 10/s, 100/m.")  # fmt: skip
@click.option("--rate-key",
              help="The window --rate-limit counts in (default: the job's name); {arg} is "
              "replaced by that argument.")  # fmt: skip
@click.option("--max-attempts", type=click.IntRange(min=1), help="Attempts before failing.")
@verb
def enqueue(
    app: App,
    name: str,
    args: dict[str, Any],
    queue: str | None,
    priority: int | None,
    delay: timedelta | None,
    unique_key: str | None,
    concurrency_key: str | None,
    key_concurrency: int | None,
    rate_limit: str | None,
    rate_key: str | None,
    max_attempts: int | None,
) -> Output:
    """Enqueue a registered or declared job by NAME with JSON arguments.

    \b
    Examples:
      conveyor jobs enqueue send_email --args '{"to": "ada@example.com"}'
      conveyor jobs enqueue nightly_report --queue reports --delay 10m --unique-key nightly
      conveyor jobs enqueue sync --args '{"tenant": "acme"}' --rate-limit 10/s --rate-key t:{tenant}
    """
    options: dict[str, Any] = {
        "queue": queue,
        "priority": priority,
        "delay": delay.total_seconds() if delay is not None else None,
        "unique_key": unique_key,
        "concurrency_key": concurrency_key,
        "key_concurrency": key_concurrency,
        "rate_limit": rate_limit,
        "rate_key": rate_key,
        "max_attempts": max_attempts,
    }
    handle = app.enqueue(name, args, **{k: v for k, v in options.items() if v is not None})
    job = handle.job
    if handle.created:
        return enqueued(job, created=True)
    return enqueued(
        job,
        created=False,
        human=f"an active job with unique key {escape(str(job.unique_key))!r} exists: "
        f"{job.id} ({styled_state(job.state)}); nothing new was enqueued",
    )


def enqueued(job: Job, *, created: bool, human: str | None = None) -> Output:
    """What enqueueing printed: the job's id, whether it is new and its state, or `human`
    (default: "enqueued NAME ID (STATE)")."""
    return Output(
        {"id": job.id, "created": created, "state": job.state.value},
        human or f"enqueued {escape(job.name)} {job.id} ({styled_state(job.state)})",
    )


@jobs.command("cancel")
@click.argument("job_id")
@verb
def cancel(app: App, job_id: str) -> Output:
    """Cancel a job: a waiting one never runs; a running one is asked to stop.

    Exits 1 if the job is already finished.

    \b
    Example:
      conveyor jobs cancel 0190c3e2-7a1b-7c3d-8e4f-0123456789ab
    """
    job = app.jobs.cancel(job_id)
    if job.state is JobState.RUNNING:
        human = f"job {job.id} is running: asked it to stop"
    else:
        human = f"job {job.id} {styled_state(job.state)}"
    return Output(job_summary(job) | {"cancel_requested": job.cancel_requested}, human)


@jobs.command("retry")
@click.argument("job_id", required=False)
@click.option("--failed", "all_failed", is_flag=True, help="Retry every failed job.")
@click.option("--name", "-n", help="With --failed: only jobs with this name.")
@click.option("--queue", "-q", help="With --failed: only jobs in this queue.")
@common
@store_option
def retry(
    job_id: str | None,
    all_failed: bool,
    name: str | None,
    queue: str | None,
    app_ref: str | None,
    as_json: bool,
    store_url: str | None,
) -> None:
    """Run a failed or cancelled job again, or every failed job with --failed.

    \b
    Examples:
      conveyor jobs retry 0190c3e2-7a1b-7c3d-8e4f-0123456789ab
      conveyor jobs retry --failed --queue emails
    """
    if bool(job_id) == all_failed:
        fail("give either a JOB_ID or --failed (not both)", USAGE)
    if job_id and (name or queue):
        fail("--name and --queue only go with --failed", USAGE)
    # not @verb: these usage errors come before any error loading the App
    app = load(app_ref, store_url, store_alone=True)
    if job_id:
        emit(_retry_one(app, job_id), as_json)
    else:
        emit(_retry_failed(app, name, queue, quiet=as_json), as_json)


def _retry_one(app: App, job_id: str) -> Output:
    job = app.jobs.retry(job_id)
    return Output(job_summary(job), f"job {job.id} {styled_state(job.state)} again")


def _retry_failed(app: App, name: str | None, queue: str | None, *, quiet: bool) -> Output:
    ids = _all_ids(app, "failed", name, queue)
    retried, refused = _bulk(ids, "retrying", quiet, app.jobs.retry)

    def report(out: Console) -> None:
        out.print(f"retried {len(retried)} failed job(s)")
        for job_id, reason in refused.items():
            out.print(f"[yellow]skipped {job_id}[/]: {escape(reason)}")

    return Output({"retried": retried, "refused": refused}, report)


def _all_ids(app: App, state: str, name: str | None, queue: str | None) -> list[str]:
    ids: list[str] = []
    page = 1
    while True:
        found = app.jobs.list(state=state, name=name, queue=queue, page=page, per_page=1000)
        ids += [job.id for job in found.jobs]
        if len(found.jobs) < found.per_page:  # not found.total: it stops at LIST_COUNT_CAP
            return ids
        page += 1


def _bulk(ids: list[str], label: str, quiet: bool, action: Any) -> tuple[list[str], dict[str, str]]:
    """Apply `action` to every id with a progress bar on stderr; collect refusals."""
    done: list[str] = []
    refused: dict[str, str] = {}
    out = err_console()
    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=out, disable=quiet or not out.is_terminal, transient=False,
    ) as progress:  # fmt: skip
        task = progress.add_task(label, total=len(ids))
        for job_id in ids:
            try:
                action(job_id)
                done.append(job_id)
            except ConveyorError as exc:  # changed since it was listed: report, go on
                refused[job_id] = str(exc)
            progress.advance(task)
    return done, refused


@jobs.command("rm")
@click.argument("job_id")
@verb
def remove(app: App, job_id: str) -> Output:
    """Delete a job that is not running (cancel a running one first).

    \b
    Example:
      conveyor jobs rm 0190c3e2-7a1b-7c3d-8e4f-0123456789ab
    """
    app.jobs.delete(job_id)
    return Output({"deleted": job_id}, f"deleted job {job_id}")


@jobs.command("purge")
@click.option("--older-than", type=Duration(), required=True,
              help="Delete jobs that finished longer ago than this, e.g. 7d, 12h.")  # fmt: skip
@click.option("--keep-failed", is_flag=True, help="Keep failed jobs (delete the others).")
@click.option("--dry-run", is_flag=True,
              help="Print how many jobs would go, by state, and delete nothing.")  # fmt: skip
@click.option("--yes", "-y", is_flag=True,
              help="Delete without asking (needed when stdin is not a terminal).")  # fmt: skip
@verb
def purge(
    app: App, older_than: timedelta, keep_failed: bool, dry_run: bool, yes: bool, as_json: bool
) -> Output:
    """Delete finished jobs (completed, cancelled, skipped, failed) older than a duration.

    Running and waiting jobs are never deleted. It says how many jobs would go and asks
    first; without a terminal to ask on, pass --yes. --dry-run only prints the count.

    \b
    Examples:
      conveyor jobs purge --older-than 7d --dry-run
      conveyor jobs purge --older-than 7d
      conveyor jobs purge --older-than 12h --keep-failed --yes
    """
    now = app.clock()
    cutoff = now - older_than
    counts = app.jobs.count_purgeable(cutoff, failed=not keep_failed)
    by_state = {state.value: counts[state] for state in JobState if counts.get(state)}
    would = sum(by_state.values())
    what = f"{would:,} job(s) that finished before {when(cutoff, now)}"
    if would:
        what += " (" + ", ".join(f"{n:,} {state}" for state, n in by_state.items()) + ")"
    if dry_run:
        return Output(
            {"dry_run": True, "would_delete": would, "by_state": by_state,
             "finished_before": cutoff},
            f"would delete {escape(what)}; nothing deleted (--dry-run)",
        )  # fmt: skip
    if would and not yes:
        _confirm_purge(what)
    states = ["completed", "cancelled", "skipped"] + ([] if keep_failed else ["failed"])
    total = app.jobs.list(state=states, per_page=1).total
    oldest = app.jobs.list(state=states, per_page=1, page=total).jobs if total else []
    # Delete in time slices from the oldest job on, so the bar shows how far it has got. Past
    # the listing's count cap (LIST_COUNT_CAP) `oldest` is the cap-th newest finished job: the
    # first slice then deletes the older ones too, and the bar is only less even.
    start = oldest[0].created_at if oldest else cutoff
    steps = PURGE_STEPS if start < cutoff else 1
    stderr = err_console()
    deleted = 0
    with Progress(
        TextColumn("purging"), BarColumn(), TaskProgressColumn(),
        TextColumn("{task.fields[deleted]} deleted"), TimeElapsedColumn(),
        console=stderr, disable=as_json or not stderr.is_terminal,
    ) as progress:  # fmt: skip
        task = progress.add_task("purge", total=steps, deleted=0)
        for step in range(1, steps + 1):
            before = cutoff if step == steps else start + (cutoff - start) * step / steps
            deleted += app.jobs.purge(before, failed=not keep_failed)
            progress.update(task, advance=1, deleted=deleted)
    return Output(
        {"deleted": deleted, "finished_before": cutoff},
        lambda out: out.print(
            f"deleted {deleted} job(s) that finished before {when(cutoff, app.clock())}"
        ),
    )


def _confirm_purge(what: str) -> None:
    """Ask on the terminal before deleting `what`; refuse without one (a script says --yes)."""
    if not sys.stdin.isatty():
        fail(
            f"this would delete {what}: confirm with --yes when stdin is not a terminal "
            "(--dry-run shows what would go)",
            USAGE,
        )
    if not click.confirm(f"Delete {what}?", default=False, err=True):
        fail("nothing deleted", NOT_FOUND)


__all__ = ["enqueued", "follow_job", "jobs", "render_job"]
