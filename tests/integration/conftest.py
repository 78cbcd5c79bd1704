"""An App per test on each store, with short intervals so tests run fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import conveyor
from integration_support import FAST, STORES, store


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """A fresh App on each store."""
    with store(request.param, tmp_path) as url:
        application = conveyor.App(url, **FAST)
        yield application
        application.close()
