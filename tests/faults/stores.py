"""The fault tests' stores: a SQLite file in the test's folder, or a PostgreSQL schema."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


def make_url(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh store of `kind` (sqlite or postgres) for one test; a schema is dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db"
        return
    pytest.importorskip("psycopg", reason='psycopg missing: pip install -e ".[dev]"')
    from postgres.server import fresh_schema, url_for

    with fresh_schema() as schema:
        # short connect and pool timeouts: a worker notices a dead server in seconds
        yield url_for(schema, application_name=schema, connect_timeout="2", pool_timeout="2")
