"""Loading the store's SQL: named queries from queries.sql and the numbered migrations.

Both are written with `__schema__` where the store's schema goes; `render` puts in the quoted
schema name, so every statement names its tables fully and nothing depends on a search_path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib.resources import files
from types import MappingProxyType

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")
_MIGRATION = re.compile(r"^(\d+)_\w+\.sql$")
_PACKAGE = __name__.rpartition(".")[0]
SCHEMA_TOKEN = "__schema__"
CHANNEL_TOKEN = "__channel__"


def parse_queries(text: str) -> dict[str, str]:
    """`-- name: x` blocks to {x: statement}; comment lines and blank lines are dropped."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            if match.group(1) in blocks:
                raise ValueError(f"query {match.group(1)!r} is defined twice")
            current = blocks[match.group(1)] = []
        elif current is not None and line.strip() and not line.lstrip().startswith("--"):
            current.append(line)
    queries = {name: "\n".join(lines).strip() for name, lines in blocks.items()}
    for name, statement in queries.items():
        if statement.rstrip(";").count(";"):
            raise ValueError(f"query {name!r} must hold one statement")
    return queries


def render(statement: str, schema: str, channel: str | None = None) -> str:
    """`statement` with the quoted schema name in place of __schema__ (and the quoted
    channel name in place of __channel__, when given)."""
    rendered = statement.replace(SCHEMA_TOKEN, quote_identifier(schema))
    if channel is not None:
        rendered = rendered.replace(CHANNEL_TOKEN, quote_identifier(channel))
    return rendered


def quote_identifier(name: str) -> str:
    """A double-quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def migrations() -> list[tuple[int, str]]:
    """(version, script) of every migration shipped, oldest first."""
    found: list[tuple[int, str]] = []
    for entry in files(_PACKAGE).joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text(encoding="utf-8")))
    return sorted(found)


Q: Mapping[str, str] = MappingProxyType(
    parse_queries(files(_PACKAGE).joinpath("queries.sql").read_text(encoding="utf-8"))
)
"""Every named query of queries.sql, with __schema__ still in it."""
