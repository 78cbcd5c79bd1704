"""The verbs of the `conveyor` command: worker, demo."""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import click

from conveyor.app import App
from conveyor.cli.loading import ENV_VAR, USAGE, LoadError, load_app, resolve_reference
from conveyor.errors import ConveyorError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LOG_LEVELS = ("debug", "info", "warning", "error")
_OURS = str(Path(__file__).resolve().parent)


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print a one-line error to stderr and exit."""
    click.echo(f"Error: {message}", err=True)
    sys.exit(exit_code)


def configure_logging(level: str) -> None:
    """Log to stderr, one readable line per record."""
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr, format=LOG_FORMAT, datefmt="%Y-%m-%d %H:%M:%S"
    )


def parse_queues(value: str | None) -> list[str] | None:
    """ "a, b" -> ["a", "b"]; None or blank -> None (every queue)."""
    if value is None:
        return None
    queues = [name.strip() for name in value.split(",") if name.strip()]
    if not queues:
        fail("--queues needs at least one queue name, e.g. --queues emails,reports", USAGE)
    return queues


def app_from(reference: str | None) -> App:
    """The App a reference (or $CONVEYOR_APP) names, or exit with a one-line error."""
    try:
        return load_app(resolve_reference(reference))
    except LoadError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # the user's module raised while being imported: show where
        traceback.print_exception(type(exc), exc, _user_frames(exc.__traceback__))
        fail(f"importing the app raised {type(exc).__name__}: {exc}")


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the importing machinery (ours and importlib's) at the top of a traceback."""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_OURS) or "importlib" in filename or "<frozen" in filename):
            break
        tb = tb.tb_next
    return tb


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="conveyor")
def cli() -> None:
    """Conveyor: background jobs for Python."""


@cli.command(short_help="Run the jobs of an App until stopped.")
@click.argument("app_ref", metavar="[MODULE:APP]", required=False)
@click.option("--queues", "-q", metavar="A,B", help="Only these queues (default: all).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    help="Jobs run at once (default: the app's concurrency setting).",
)
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
def worker(
    app_ref: str | None, queues: str | None, concurrency: int | None, log_level: str
) -> None:
    """Run jobs of the App at MODULE:APP (e.g. myjobs:app) until SIGINT or SIGTERM.

    Without MODULE:APP, the reference is read from $CONVEYOR_APP. The current directory is
    importable, so run it from your project's folder.
    """
    queue_list = parse_queues(queues)
    app = app_from(app_ref)
    configure_logging(log_level)
    try:
        job_worker = app.worker(queues=queue_list, concurrency=concurrency)
    except ConveyorError as exc:
        fail(f"cannot start the worker: {exc}")
    job_worker.run_forever()


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
    """Enqueue sample jobs, run them on an embedded worker, and show what happens."""
    from conveyor.cli.demo import run_demo

    try:
        code = run_demo(db=db, emails=emails, url=url)
    except ConveyorError as exc:
        fail(str(exc))
    sys.exit(code)


__all__ = ["ENV_VAR", "cli"]
