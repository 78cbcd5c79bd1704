"""What every verb shares: finding the App, `--app`/`--json`, one-line errors, and printing what
a verb did as JSON or for people (`verb`, `Output`)."""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table

from conveyor.app import App
from conveyor.cli.config import Config, find_config
from conveyor.cli.loading import ENV_VAR, NOT_FOUND, USAGE, LoadError, load_app
from conveyor.errors import (
    ConveyorError,
    InvalidArguments,
    InvalidFilter,
    InvalidJobOptions,
    InvalidQueueSettings,
)

F = TypeVar("F", bound=Callable[..., Any])
URL_VAR = "CONVEYOR_URL"
PIPE_WIDTH = 200  # columns of tables written to a pipe or file
DEBUG_VAR = "CONVEYOR_DEBUG"  # set to 1 to see the traceback of an unexpected error
_OURS = str(Path(__file__).resolve().parent)


@dataclasses.dataclass(slots=True)
class RootOptions:
    """Options given before the verb (`conveyor --app x:app jobs ls`)."""

    app_ref: str | None = None
    config_path: Path | None = None
    _config: Config | None = None
    app: App | None = None  # given by a host framework's command (`run_with_app`)

    def config(self) -> Config:
        """The configuration file's settings (read once)."""
        if self._config is None:
            try:
                self._config = find_config(Path.cwd(), self.config_path)
            except LoadError as exc:
                fail(str(exc), exc.exit_code)
        return self._config


class ConveyorGroup(click.Group):
    """A click group that turns Conveyor errors into one line on stderr and exit code 1."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command; usage errors become one line (`Error: … (see '… --help')`)."""
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            if exc.ctx is not None and exc.message.startswith("Usage:"):  # a group without a verb
                click.echo(exc.ctx.get_help(), err=True)
                sys.exit(exc.exit_code)
            where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(exc.format_message() + where, exc.exit_code)
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code)
        except click.Abort:
            fail("aborted", NOT_FOUND)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the verb; ConveyorError (and any unexpected error) → `Error: …`, exit 1; a
        refused option or argument (InvalidJobOptions, InvalidQueueSettings, InvalidArguments,
        InvalidFilter), as a usage error, exit 2."""
        try:
            return super().invoke(ctx)
        except (InvalidJobOptions, InvalidQueueSettings, InvalidArguments, InvalidFilter) as exc:
            fail(str(exc), USAGE)
        except ConveyorError as exc:
            fail(str(exc), NOT_FOUND)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except KeyboardInterrupt:
            fail("interrupted", 130)
        except Exception as exc:
            if os.environ.get(DEBUG_VAR):
                raise
            fail(f"unexpected {type(exc).__name__}: {exc} (set {DEBUG_VAR}=1 for the traceback)")


def fail(message: str, exit_code: int = NOT_FOUND) -> NoReturn:
    """Print a one-line error to stderr and exit with `exit_code`."""
    first_line = message.strip().splitlines()[0] if message.strip() else "failed"
    click.echo(f"Error: {first_line}", err=True)
    sys.exit(exit_code)


def root_options() -> RootOptions:
    """The options given to the `conveyor` group (defaults when invoked another way)."""
    ctx = click.get_current_context()
    obj = ctx.find_root().obj
    return obj if isinstance(obj, RootOptions) else RootOptions()


def common(func: F) -> F:
    """Add `--app MODULE:APP` and `--json` to a verb."""
    func = click.option(
        "--json", "as_json", is_flag=True, help="Print JSON (for scripts) instead of tables."
    )(func)
    return click.option(
        "--app",
        "app_ref",
        metavar="MODULE:APP",
        help=f"The App, e.g. myjobs:app (default: ${ENV_VAR}, then `app` in conveyor.toml).",
    )(func)


def store_option(func: F) -> F:
    """Add `--url URL`: read and act on the store at URL without importing job code."""
    return click.option(
        "--url",
        "store_url",
        metavar="URL",
        help=(
            f"The store, e.g. sqlite:///jobs.db, without importing job code (default: "
            f"${URL_VAR} when no app is given)."
        ),
    )(func)


def load(app_ref: str | None, store_url: str | None = None, *, store_alone: bool = False) -> App:
    """The App named by `--app`, else the group's `--app`, $CONVEYOR_APP or the config file.

    `store_url` (`--url`) gives an App of that store alone: what is stored can be read and
    acted on without the job code (jobs are enqueued by name only once declared there). With
    `store_alone` (the verbs that only use the store), so does $CONVEYOR_URL or the config
    file's `url` when no app is named anywhere.

    A host framework's command (`run_with_app`) gives its App, used unless a reference is
    given. The config file's `url` becomes $CONVEYOR_URL (unless that is set) before the app's
    module is imported, so an `App()` created without a URL uses it. The App's store is
    closed when the command ends. Exits with a one-line error if it cannot be loaded.
    """
    options = root_options()
    if store_url and (app_ref or options.app_ref):
        fail("give either --app (the job code) or --url (a store alone), not both", USAGE)
    if options.app is not None and not (app_ref or options.app_ref or store_url):
        return options.app  # the host framework's App (flask conveyor, manage.py conveyor)
    config = options.config()
    reference = app_ref or options.app_ref or os.environ.get(ENV_VAR) or config.app
    if store_alone and not reference:
        store_url = store_url or os.environ.get(URL_VAR) or config.url
    if store_url:
        alone = App(store_url)
        alone.backend  # noqa: B018 - a store that cannot be opened fails here, in one line
        click.get_current_context().call_on_close(alone.close)
        return alone
    if not reference:
        fail(
            f"no app given: pass --app MODULE:APP (e.g. myjobs:app), set {ENV_VAR}, "
            'or put app = "myjobs:app" in conveyor.toml',
            USAGE,
        )
    if config.url and not os.environ.get(URL_VAR):
        os.environ[URL_VAR] = config.url
    try:
        app = load_app(reference)
    except LoadError as exc:
        fail(str(exc), exc.exit_code)
    except Exception as exc:  # the user's module raised while being imported: show where
        traceback.print_exception(type(exc), exc, _user_frames(exc.__traceback__))
        fail(f"importing the app raised {type(exc).__name__}: {exc}")
    click.get_current_context().call_on_close(app.close)
    return app


def _user_frames(tb: TracebackType | None) -> TracebackType | None:
    """Skip the importing machinery (ours and importlib's) at the top of a traceback."""
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if not (filename.startswith(_OURS) or "importlib" in filename or "<frozen" in filename):
            break
        tb = tb.tb_next
    return tb


# output --------------------------------------------------------------------------------------
def console() -> Console:
    """A console on stdout: rich decides on colours; not on a terminal, tables may be wide."""
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = PIPE_WIDTH
    return out


def err_console() -> Console:
    """A console on stderr, for progress bars and live lines."""
    return Console(stderr=True, highlight=False)


def jsonable(value: Any) -> Any:
    """Records, datetimes, enums and tuples as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Print `value` as indented JSON on stdout."""
    click.echo(json.dumps(jsonable(value), indent=2, default=str))


@dataclasses.dataclass(frozen=True, slots=True)
class Output:
    """What a verb prints: `data` as JSON with --json, else `human` for people.

    `human` is a line of rich markup, or a function that prints on the console it is given
    (it runs only then, so it may look things up). The command exits with `exit_code` after.
    """

    data: Any
    human: str | Callable[[Console], object]
    exit_code: int = 0


def emit(output: Output, as_json: bool) -> None:
    """Print `output` as JSON (`as_json`) or for people; exit with its code unless that is 0."""
    if as_json:
        print_json(output.data)
    elif isinstance(output.human, str):
        console().print(output.human)
    else:
        output.human(console())
    if output.exit_code:
        sys.exit(output.exit_code)


def verb(func: Callable[..., Output]) -> Callable[..., None]:
    """Make `func(app, **options) -> Output` a verb's callback: `--app` and `--json` added,
    the App loaded and passed first, what it returns printed by `emit`.

    A `func` with an `as_json` parameter is given --json too (to keep progress bars quiet).
    """
    wants_json = "as_json" in inspect.signature(func).parameters

    @functools.wraps(func)
    def run(app_ref: str | None, as_json: bool, store_url: str | None, **options: Any) -> None:
        if wants_json:
            options["as_json"] = as_json
        emit(func(load(app_ref, store_url, store_alone=True), **options), as_json)

    return common(store_option(run))


def listing(
    items: Sequence[Any],
    *,
    empty: str,
    columns: Sequence[str],
    row: Callable[[Any], Sequence[str]],
    right: Sequence[str] = (),
) -> Output:
    """`items` as JSON, or as a table (one `row(item)` each, the `right` columns
    right-aligned), or the `empty` line when there are none."""

    def table(out: Console) -> None:
        if not items:
            out.print(empty)
            return
        shown = Table(header_style="bold")
        for column in columns:
            shown.add_column(column, justify="right" if column in right else "left")
        for item in items:
            shown.add_row(*row(item))
        out.print(shown)

    return Output(items, table)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(w|d|h|m|s)")
_UNITS = {"w": 604800.0, "d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> timedelta:
    """'7d', '12h', '1d12h', '30m', '90s', '2w' → timedelta; ValueError otherwise."""
    compact = text.strip().lower().replace(" ", "")
    pos, seconds = 0, 0.0
    while pos < len(compact):
        match = _DURATION.match(compact, pos)
        if match is None:
            raise ValueError(f"{text!r} is not a duration; write it like 7d, 12h, 30m or 1d12h")
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos == 0:
        raise ValueError(f"{text!r} is not a duration; write it like 7d, 12h, 30m or 1d12h")
    return timedelta(seconds=seconds)


class Duration(click.ParamType[timedelta]):
    """A click parameter for durations such as 7d or 12h."""

    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse the option's text into a timedelta."""
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class Limit(click.ParamType[int | str]):
    """A click parameter for a queue's limit or bound: an integer, or `none` for no limit
    (the range is checked by model/validation.py, as for every entry point)."""

    name = "N|none"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """The option's text as an int, or "none"."""
        if isinstance(value, int) or value == "none":
            return value
        text = str(value).strip().lower()
        if text in ("none", "unlimited"):
            return "none"
        try:
            return int(text)
        except ValueError:
            self.fail(f"{value!r} is neither an integer nor 'none'", param, ctx)


class JsonObject(click.ParamType[dict[str, Any]]):
    """A click parameter holding a JSON object (job arguments)."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse the option's text into a dict."""
        if isinstance(value, dict):
            return value
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            self.fail(f'not valid JSON ({exc}); e.g. --args \'{{"to": "ada"}}\'', param, ctx)
        if not isinstance(parsed, dict):
            self.fail('must be a JSON object, e.g. --args \'{"to": "ada"}\'', param, ctx)
        return parsed


def ago(moment: datetime | None, now: datetime) -> str:
    """'3m ago', 'in 5s', or '-' for no time."""
    if moment is None:
        return "-"
    seconds = (now - moment).total_seconds()
    text = short_duration(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def short_duration(seconds: float) -> str:
    """A compact duration: 450ms, 12s, 3m, 5h, 2d."""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def when(moment: datetime | None, now: datetime) -> str:
    """An absolute UTC time with its relative form: '2026-11-23 21:30:00 (3m ago)'."""
    if moment is None:
        return "-"
    return f"{moment.strftime('%Y-%m-%d %H:%M:%S')} ({ago(moment, now)})"


STATE_STYLES = {
    "waiting": "dim cyan",
    "scheduled": "cyan",
    "pending": "blue",
    "running": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
    "skipped": "dim",
}


def styled_state(state: str) -> str:
    """A job state with its colour markup."""
    return f"[{STATE_STYLES.get(state, 'white')}]{state}[/]"


__all__ = [
    "ConveyorGroup",
    "Duration",
    "JsonObject",
    "Output",
    "RootOptions",
    "ago",
    "common",
    "console",
    "emit",
    "err_console",
    "fail",
    "jsonable",
    "listing",
    "load",
    "parse_duration",
    "print_json",
    "root_options",
    "short_duration",
    "store_option",
    "styled_state",
    "verb",
    "when",
]
