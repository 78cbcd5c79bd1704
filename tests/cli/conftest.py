"""Fixtures for the CLI tests."""

from __future__ import annotations

import importlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import JOBS_MODULE, Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """A project folder (the current directory) with a uniquely named jobs module."""
    name = f"jobs_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(JOBS_MODULE.format(db=tmp_path / "jobs.db"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    monkeypatch.delenv("CONVEYOR_URL", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(name)
    yield Project(tmp_path, name, module)
    module.GATE.set()
    module.app.close()
    sys.modules.pop(name, None)
