"""Fixtures for the web tests: an app with sample jobs and API clients per permission."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient

import conveyor
from conveyor.backends.records import LIST_COUNT_CAP
from conveyor.web import create_app
from integration_support import STORES, store

from .support import MANAGE_TOKEN, TOKENS, VIEW_TOKEN, build_app, sync_recurring


@pytest.fixture(params=STORES)
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """An app on each store with its recurring job stored."""
    with store(request.param, tmp_path) as url:
        application = build_app(url)
        sync_recurring(application)
        yield application
        application.close()


@pytest.fixture(params=STORES)
def crowded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[conveyor.App]:
    """An app on each store holding more pending jobs than a listing counts (LIST_COUNT_CAP),
    all named hello, and one job named slow, the newest."""
    with store(request.param, tmp_path) as url:
        application = build_app(url, max_queue_size=0)  # the memory store's bound is 10,000
        application.enqueue_many([application.request("hello") for _ in range(LIST_COUNT_CAP + 1)])
        application.enqueue("slow")
        yield application
        application.close()


@pytest.fixture
def web(app: conveyor.App) -> FastAPI:
    """The dashboard with a manage token and a view token."""
    return create_app(app, tokens=TOKENS, secret="test-secret")


@pytest.fixture
def client(web: FastAPI) -> Iterator[TestClient]:
    """An unauthenticated client (add headers per call, or use the fixtures below)."""
    with TestClient(web, base_url="http://localhost") as test_client:
        yield test_client


@pytest.fixture
def manager(web: FastAPI) -> Iterator[TestClient]:
    """A client sending the manage token."""
    with TestClient(
        web, base_url="http://localhost", headers={"Authorization": f"Bearer {MANAGE_TOKEN}"}
    ) as test_client:
        yield test_client


@pytest.fixture
def viewer(web: FastAPI) -> Iterator[TestClient]:
    """A client sending the view token."""
    with TestClient(
        web, base_url="http://localhost", headers={"Authorization": f"Bearer {VIEW_TOKEN}"}
    ) as test_client:
        yield test_client
