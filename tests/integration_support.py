"""Settings and store URLs shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FAST = {
    "heartbeat_interval": 0.1,
    "lease_seconds": 1.0,
    "poll_interval": 0.05,
    "sweep_interval": 0.1,
    "progress_flush_interval": 0.05,
    "shutdown_timeout": 2.0,
}


def store_url(kind: str, tmp_path: Path) -> str:
    """A fresh store of `kind` for one test."""
    if kind == "sqlite":
        pytest.importorskip("conveyor.backends.sqlite.backend", reason="SQLite store missing")
        return f"sqlite:///{tmp_path}/jobs.db"
    return "memory://"


@contextmanager
def store(kind: str, tmp_path: Path) -> Iterator[str]:
    """A fresh store of `kind` for one test; a PostgreSQL one gets its own schema, dropped after."""
    if kind != "postgres":
        yield store_url(kind, tmp_path)
        return
    from postgres.server import drop_schema, new_schema_name, require_server, url_for

    require_server()
    schema = new_schema_name()
    try:
        yield url_for(schema)
    finally:
        drop_schema(schema)


STORES = ["memory", "sqlite", "postgres"]
