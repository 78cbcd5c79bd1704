"""The PostgreSQL store's SQL: its named queries and migrations, read by the shared loader.

Both are written with `__schema__` where the store's schema goes; `render` puts in the quoted
schema name, so every statement names its tables fully and nothing depends on a search_path.
A store renders the queries once, when it is built for its schema.
"""

from __future__ import annotations

from collections.abc import Mapping

from conveyor.backends import sqlfile

__all__ = ["CHANNEL_TOKEN", "SCHEMA_TOKEN", "Q", "migrations", "quote_identifier", "render"]

_PACKAGE = __name__.rpartition(".")[0]
SCHEMA_TOKEN = "__schema__"
CHANNEL_TOKEN = "__channel__"


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
    return sqlfile.migrations(_PACKAGE)


Q: Mapping[str, str] = sqlfile.load_queries(_PACKAGE)
"""Every named query of queries.sql, with __schema__ still in it."""
