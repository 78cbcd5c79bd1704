"""The SQLite store's SQL: its named queries and migrations, read by the shared loader."""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.backends import sqlfile
from conveyor.backends.sqlfile import split_statements

__all__ = ["Q", "migrations", "split_statements"]

_PACKAGE = __name__.rpartition(".")[0]


def migrations() -> list[tuple[int, str]]:
    """(version, script) of every migration shipped, oldest first."""
    return sqlfile.migrations(_PACKAGE)


Q: Mapping[str, str] = sqlfile.load_queries(_PACKAGE)
"""Every named query of queries.sql."""
