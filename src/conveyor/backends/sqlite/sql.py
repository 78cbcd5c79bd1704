"""Loading the store's SQL: named queries from queries.sql and the numbered migrations."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator, Mapping
from importlib.resources import files
from types import MappingProxyType

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")
_MIGRATION = re.compile(r"^(\d+)_\w+\.sql$")
_PACKAGE = __name__.rpartition(".")[0]


def split_statements(text: str) -> Iterator[str]:
    """The complete statements of a script, in order (comments between them are dropped)."""
    buffer: list[str] = []
    for line in text.splitlines():
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer.append(line)
        statement = "\n".join(buffer)
        if sqlite3.complete_statement(statement):
            yield statement
            buffer = []
    if buffer:
        raise ValueError(f"incomplete SQL statement at the end of a script: {buffer[0]!r}")


def parse_queries(text: str) -> dict[str, str]:
    """`-- name: x` blocks to {x: statement}; each block holds exactly one statement."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line)
        if match:
            if match.group(1) in blocks:
                raise ValueError(f"query {match.group(1)!r} is defined twice")
            current = blocks[match.group(1)] = []
        elif current is not None:
            current.append(line)
    queries: dict[str, str] = {}
    for name, lines in blocks.items():
        statements = list(split_statements("\n".join(lines)))
        if len(statements) != 1:
            raise ValueError(f"query {name!r} must hold one statement, not {len(statements)}")
        queries[name] = statements[0]
    return queries


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
"""Every named query of queries.sql."""
