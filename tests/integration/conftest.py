"""An App per test on each store, with short intervals so tests run fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor

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


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """A fresh App on each store."""
    application = conveyor.App(store_url(request.param, tmp_path), **FAST)
    yield application
    application.close()
