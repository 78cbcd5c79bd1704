"""An App per test on each store, with short intervals so tests run fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from integration_support import FAST, store_url


@pytest.fixture(params=["memory", "sqlite"])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """A fresh App on each store."""
    application = conveyor.App(store_url(request.param, tmp_path), **FAST)
    yield application
    application.close()
