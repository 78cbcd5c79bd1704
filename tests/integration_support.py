"""Settings and store URLs shared by the integration tests."""

from __future__ import annotations

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
