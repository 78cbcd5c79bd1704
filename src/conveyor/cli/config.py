"""Settings for the `conveyor` command from `conveyor.toml` or `[tool.conveyor]` in pyproject.toml.

Looked up in the current directory only (the directory a project's commands run from):

    # conveyor.toml                      # pyproject.toml
    app = "myjobs:app"                   [tool.conveyor]
    url = "sqlite:///jobs.db"            app = "myjobs:app"

`conveyor.toml` wins when both exist. Command-line options and environment variables
(`CONVEYOR_APP`, `CONVEYOR_URL`) win over the file.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.cli.loading import USAGE, LoadError

CONFIG_FILE = "conveyor.toml"
PYPROJECT = "pyproject.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("plain", "json")
_KEYS = {"app", "url", "log_level", "log_format", "metrics_port"}


@dataclass(frozen=True, slots=True)
class Config:
    """What the configuration file says (None: not set)."""

    app: str | None = None
    url: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    metrics_port: int | None = None
    source: Path | None = None  # the file it came from


def find_config(directory: Path, explicit: Path | None = None) -> Config:
    """The configuration in `explicit`, else in `directory`; an empty Config when there is none.

    Raises LoadError (exit code 2) for unreadable TOML, unknown keys and values of the wrong type.
    """
    if explicit is not None:
        if not explicit.is_file():
            raise LoadError(f"config file {str(explicit)!r} does not exist", USAGE)
        table = _read(explicit)
        if explicit.name == PYPROJECT:
            table = _tool_table(table)
        return _parse(table, explicit)
    own = directory / CONFIG_FILE
    if own.is_file():
        return _parse(_read(own), own)
    pyproject = directory / PYPROJECT
    if pyproject.is_file():
        table = _tool_table(_read(pyproject))
        if table:
            return _parse(table, pyproject)
    return Config()


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as file:
            return tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise LoadError(f"{path.name} is not valid TOML: {exc}", USAGE) from None
    except OSError as exc:
        raise LoadError(f"cannot read {path}: {exc.strerror}", USAGE) from None


def _tool_table(pyproject: dict[str, Any]) -> dict[str, Any]:
    tool = pyproject.get("tool", {})
    table = tool.get("conveyor", {}) if isinstance(tool, dict) else {}
    return table if isinstance(table, dict) else {}


def _parse(table: dict[str, Any], source: Path) -> Config:
    unknown = set(table) - _KEYS
    if unknown:
        raise LoadError(
            f"{source.name}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known keys: {', '.join(sorted(_KEYS))}",
            USAGE,
        )
    for key in ("app", "url", "log_level", "log_format"):
        if key in table and not isinstance(table[key], str):
            raise LoadError(f"{source.name}: {key} must be a string", USAGE)
    port = table.get("metrics_port")
    if port is not None and (not isinstance(port, int) or isinstance(port, bool)):
        raise LoadError(f"{source.name}: metrics_port must be an integer", USAGE)
    level, fmt = table.get("log_level"), table.get("log_format")
    if level is not None and level not in LOG_LEVELS:
        raise LoadError(f"{source.name}: log_level must be one of {', '.join(LOG_LEVELS)}", USAGE)
    if fmt is not None and fmt not in LOG_FORMATS:
        raise LoadError(f"{source.name}: log_format must be one of {', '.join(LOG_FORMATS)}", USAGE)
    return Config(table.get("app"), table.get("url"), level, fmt, port, source)


__all__ = ["CONFIG_FILE", "LOG_FORMATS", "LOG_LEVELS", "Config", "find_config"]
