"""The `conveyor` command (the `cli` extra: click and rich)."""

from __future__ import annotations

import sys


def main() -> None:
    """Entry point of the `conveyor` command."""
    try:
        from conveyor.cli.commands import cli
    except ModuleNotFoundError as exc:
        if exc.name not in ("click", "rich"):
            raise
        sys.stderr.write(
            f"Error: the conveyor command needs {exc.name!r}: "
            "install it with pip install 'conveyor[cli]'\n"
        )
        raise SystemExit(1) from None
    cli()


__all__ = ["main"]
