"""The `conveyor` command: the root group, `worker`, `migrate`, `demo`, and the verb groups.

Every verb takes `--app MODULE:APP` (else $CONVEYOR_APP, else `app` in conveyor.toml or
`[tool.conveyor]` of pyproject.toml) and `--json`. Exit codes: 0 ok, 1 not found or refused,
2 usage. Errors are one line on stderr.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.live import Live

from conveyor.app import App
from conveyor.backends import open_backend
from conveyor.backends.protocol import Backend, Migrating
from conveyor.cli.admin import queues, recurring, stats
from conveyor.cli.base import (
    ConveyorGroup,
    Output,
    RootOptions,
    common,
    err_console,
    fail,
    load,
    root_options,
    verb,
)
from conveyor.cli.config import LOG_FORMATS, LOG_LEVELS
from conveyor.cli.jobs import jobs
from conveyor.cli.live import StatusLine
from conveyor.cli.loading import ENV_VAR, USAGE
from conveyor.cli.web import web
from conveyor.cli.workers import workers
from conveyor.cli.workflows import workflows
from conveyor.errors import ConveyorError
from conveyor.observability import logging as job_logging


@click.group(cls=ConveyorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--app", "app_ref", metavar="MODULE:APP",
              help=f"The App (default: ${ENV_VAR}, then the config file).")  # fmt: skip
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: ./conveyor.toml, else [tool.conveyor] in "
              "./pyproject.toml).")  # fmt: skip
@click.version_option(package_name="conveyor")
@click.pass_context
def cli(ctx: click.Context, app_ref: str | None, config_path: Path | None) -> None:
    """Conveyor: background jobs for Python.

    \b
    Examples:
      conveyor --app myjobs:app jobs ls --state failed
      CONVEYOR_APP=myjobs:app conveyor worker --concurrency 20
      conveyor stats --json
    """
    given = ctx.obj if isinstance(ctx.obj, App) else None  # from run_with_app
    ctx.obj = RootOptions(app_ref, config_path, app=given)


@cli.command(short_help="Run the jobs of an App until stopped.")
@click.argument("app_arg", metavar="[MODULE:APP]", required=False)
@click.option("--queues", "-q", metavar="A,B", help="Only these queues (default: all).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    help="Jobs run at once (default: the app's concurrency setting).",
)
@click.option(
    "--processes",
    "-p",
    type=click.IntRange(min=1),
    help="Child processes for executor='process' jobs (default: the processes setting, "
    "else the CPU count).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS),
              help="Default: info (or log_level in the config file).")  # fmt: skip
@click.option("--log-format", type=click.Choice(LOG_FORMATS),
              help="plain lines or one JSON object per line (default: plain).")  # fmt: skip
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve Prometheus metrics on this port (needs conveyor[metrics]).")  # fmt: skip
@click.option("--metrics-addr", default="0.0.0.0", show_default=True, help="Address to bind.")
@click.option("--live/--no-live", default=None,
              help="Status line on stderr (default: when stderr is a terminal).")  # fmt: skip
@common
def worker(
    app_arg: str | None,
    queues: str | None,
    concurrency: int | None,
    processes: int | None,
    log_level: str | None,
    log_format: str | None,
    metrics_port: int | None,
    metrics_addr: str,
    live: bool | None,
    app_ref: str | None,
    as_json: bool,
) -> None:
    """Run jobs of the App at MODULE:APP until SIGINT or SIGTERM.

    The App is MODULE:APP (or --app, $CONVEYOR_APP, the config file). The current directory
    is importable, so run it from your project's folder. On a terminal a live line shows
    processed, failed and the rate; otherwise (or with --no-live) only log lines are written.
    --json is the same as --log-format json.

    \b
    Examples:
      conveyor worker myjobs:app --concurrency 20 --queues emails,reports
      conveyor worker myjobs:app --processes 4   # children for executor="process" jobs
      conveyor worker --app myjobs:app --log-format json --metrics-port 9100
    """
    queue_list = parse_queues(queues)
    config = root_options().config()
    app = load(app_arg or app_ref)
    fmt = "json" if as_json else (log_format or config.log_format or "plain")
    level = log_level or config.log_level or "info"
    job_logging.install(app)
    port = metrics_port if metrics_port is not None else config.metrics_port
    if port is not None:
        start_metrics(app, port, metrics_addr)
    try:
        job_worker = app.worker(queues=queue_list, concurrency=concurrency, processes=processes)
    except ConveyorError as exc:
        fail(f"cannot start the worker: {exc}")
    stderr = err_console()
    if live if live is not None else stderr.is_terminal:
        line = StatusLine(job_worker.stats)
        with Live(get_renderable=lambda: line, console=stderr, refresh_per_second=2,
                  transient=True, redirect_stdout=False, redirect_stderr=True):  # fmt: skip
            job_logging.configure(level, fmt)  # sys.stderr is now rich's proxy: lines go above
            job_worker.run_forever()
        stderr.print(line.text())
    else:
        job_logging.configure(level, fmt)
        job_worker.run_forever()


def parse_queues(value: str | None) -> list[str] | None:
    """ "a, b" -> ["a", "b"]; None or blank -> None (every queue)."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        fail("--queues needs at least one queue name, e.g. --queues emails,reports", USAGE)
    return names


def start_metrics(app: App, port: int, addr: str) -> None:
    """Install the app's metrics and serve them on addr:port, or exit with one line."""
    try:
        from conveyor.observability import metrics
    except ImportError:
        fail("--metrics-port needs prometheus-client: pip install 'conveyor[metrics]'")
    metrics.install(app)
    try:
        metrics.serve(port, addr)
    except OSError as exc:
        fail(f"cannot serve metrics on {addr}:{port}: {exc.strerror or exc}")


@cli.command(short_help="Create or upgrade the store's schema.")
@verb
def migrate(app: App) -> Output:
    """Apply the App's pending schema migrations and print the schema version.

    Workers and producers migrate on first use too; run this in a deploy step to do it once,
    up front (with PostgreSQL, the apps can then say ?migrate=false in their URL).

    \b
    Example:
      conveyor migrate --app myjobs:app
    """
    backend: Backend = open_backend(app.url, app.settings)
    applied: list[int] | None = None
    version: int | None = None
    if isinstance(backend, Migrating):
        # On a connection of its own, even when the app's URL says ?migrate=false (PostgreSQL),
        # which would make opening the store refuse a stale schema.
        try:
            applied = backend.migrate()
            version = backend.schema_version()
        finally:
            backend.close()
    store, where = type(backend).__name__, _safe_url(app.url)
    shown = "n/a (nothing is stored)" if version is None else str(version)
    if applied is not None:
        shown += f" (applied now: {', '.join(map(str, applied))})" if applied else " (up to date)"
    return Output(
        {"url": where, "store": store, "schema_version": version, "applied": applied},
        f"{store} at {where}: schema version {shown}",
    )


def _safe_url(url: str) -> str:
    """The URL without a password (in its user part or a libpq `password=` option)."""
    url = re.sub(r"([?&]password=)[^&]*", r"\1***", url)
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}{sep}{user}:***@{host}"


@cli.command(short_help="Run sample jobs on an embedded worker and show what happens.")
@click.option(
    "--db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to keep the jobs in (default: a temporary file, deleted afterwards).",
)
@click.option(
    "--jobs",
    "emails",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="How many quick jobs the bulk enqueue adds.",
)
@click.option("--url", hidden=True, help="Use another store URL, e.g. memory://")
def demo(db: Path | None, emails: int, url: str | None) -> None:
    """Enqueue sample jobs, run them on an embedded worker, and show what happens.

    \b
    Example:
      conveyor demo --jobs 50
    """
    from conveyor.cli.demo import run_demo

    try:
        code = run_demo(db=db, emails=emails, url=url)
    except ConveyorError as exc:
        fail(str(exc))
    sys.exit(code)


def run_with_app(app: App, args: Sequence[str], prog_name: str) -> None:
    """Run the `conveyor` command on `app` (a framework's own command forwards here:
    `flask conveyor worker`, `python manage.py conveyor migrate`); `--app` still wins.
    Exits like the command does (SystemExit with its code)."""
    cli.main(args=list(args), prog_name=prog_name, obj=app)


cli.add_command(jobs)
cli.add_command(recurring)
cli.add_command(queues)
cli.add_command(workers)
cli.add_command(stats)
cli.add_command(web)
cli.add_command(workflows)

__all__ = ["ENV_VAR", "cli", "run_with_app"]
