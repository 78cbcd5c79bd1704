"""Fixtures of the fault suite: a fresh store per test (SQLite file or PostgreSQL schema), the
producer App, the worker pool; a failed test's report ends with every worker's output."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

import conveyor
from faults.stores import make_url
from faults.support import Pool, RunLog, producer

STORES = ["sqlite", "postgres"]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Append the workers' output (and how each ended) to the report of a failed test."""
    report = yield
    pool = getattr(item, "funcargs", {}).get("pool")
    if report.failed and isinstance(pool, Pool):
        report.sections.append(("worker processes", pool.report()))
    return report


@pytest.fixture(params=STORES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's own store, on each of SQLite and PostgreSQL."""
    yield from make_url(request.param, tmp_path)


@pytest.fixture
def app(url: str) -> Iterator[conveyor.App]:
    """The producer and observer; it creates the store's schema before any worker starts."""
    application = producer(url)
    application.jobs.counts()  # opens the store: the workers then find it ready
    yield application
    application.close()


@pytest.fixture
def runs(tmp_path: Path) -> RunLog:
    """The file the workers' jobs note their runs in."""
    return RunLog(tmp_path / "runs.log")


@pytest.fixture
def settings() -> dict[str, float]:
    """The workers' settings (a test may override this fixture)."""
    return {"lease_seconds": 2.0, "heartbeat_interval": 0.2, "sweep_interval": 0.2}


@pytest.fixture
def pool(app: conveyor.App, runs: RunLog, settings: dict[str, float]) -> Iterator[Pool]:
    """Worker processes on the test's store; any left running are killed at the end."""
    workers = Pool(app.url, runs.path, **settings)
    yield workers
    workers.close()
