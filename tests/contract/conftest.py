"""Run every contract test once per store, each on a fresh, opened store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.backends import open_backend
from conveyor.backends.protocol import Backend
from conveyor.model.settings import Settings
from postgres.server import fresh_schema, url_for

from .support import MakeBackend


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty store of each kind (PostgreSQL: a schema of its own, dropped
    after the test)."""
    if request.param == "postgres":
        with fresh_schema() as schema:
            yield url_for(schema)
        return
    if request.param == "sqlite":
        module = pytest.importorskip(
            "conveyor.backends.sqlite", reason="SQLite store not written yet"
        )
        if not hasattr(module, "SQLiteBackend"):
            pytest.skip("SQLite store not written yet")
        yield f"sqlite:///{tmp_path}/c.db"
        return
    yield "memory://"


@pytest.fixture
def make_backend(store_url: str) -> Iterator[MakeBackend]:
    """Build and open stores with chosen settings; all are closed after the test."""
    opened: list[Backend] = []

    def make(settings: Settings) -> Backend:
        backend = open_backend(store_url, settings)
        backend.open()
        opened.append(backend)
        return backend

    yield make
    for backend in reversed(opened):
        backend.close()


@pytest.fixture
def backend(make_backend: MakeBackend) -> Backend:
    """An opened store with the default settings."""
    return make_backend(Settings())
