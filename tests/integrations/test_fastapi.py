"""FastAPI and Starlette: the lifespan (store, embedded worker, the site's own lifespan), the
dependency, and the dashboard mounted behind the site's authentication, on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import conveyor
from conveyor.integrations.fastapi import (
    ConveyorApp,
    conveyor_lifespan,
    dashboard,
    get_conveyor,
    mount_dashboard,
)
from helpers import wait_until


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[conveyor.App]:
    """An app on a SQLite file with one job."""
    app = conveyor.App(f"sqlite:///{tmp_path / 'jobs.db'}", poll_interval=0.05)

    @app.job
    def double(ctx: conveyor.Context, n: int) -> int:
        return 2 * n

    yield app
    app.close()


def site_for(jobs: conveyor.App, **options: Any) -> FastAPI:
    site = FastAPI(lifespan=conveyor_lifespan(jobs, **options))

    @site.post("/double/{n}")
    async def enqueue(n: int, app: ConveyorApp) -> dict[str, str]:
        return {"id": (await app.enqueue_async("double", {"n": n})).id}

    @site.get("/jobs/{job_id}")
    def status(job_id: str, app: ConveyorApp) -> dict[str, Any]:
        job = app.jobs.require(job_id)
        return {"state": job.state.value, "result": job.result}

    return site


def test_the_embedded_worker_runs_what_a_route_enqueued(jobs: conveyor.App) -> None:
    with TestClient(site_for(jobs, worker=True)) as client:
        job_id = client.post("/double/21").json()["id"]
        wait_until(lambda: client.get(f"/jobs/{job_id}").json()["state"] == "completed")
        assert client.get(f"/jobs/{job_id}").json() == {"state": "completed", "result": 42}


def test_without_a_worker_the_site_only_enqueues(jobs: conveyor.App) -> None:
    with TestClient(site_for(jobs)) as client:
        job_id = client.post("/double/1").json()["id"]
        assert client.get(f"/jobs/{job_id}").json()["state"] == "pending"
    assert jobs.jobs.require(job_id).state is conveyor.JobState.PENDING


def test_the_sites_own_lifespan_runs_inside_and_its_state_is_kept(jobs: conveyor.App) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def own(site: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("own start")
        await jobs.enqueue_async("double", {"n": 5})  # the store is open, the worker running
        yield {"greeting": "hello"}
        events.append("own stop")

    site = FastAPI(lifespan=conveyor_lifespan(jobs, worker=True, lifespan=own))

    @site.get("/state")
    def state(request: Request, app: ConveyorApp) -> dict[str, Any]:
        return {"greeting": request.state.greeting, "same": app is jobs}

    with TestClient(site) as client:
        assert client.get("/state").json() == {"greeting": "hello", "same": True}
        wait_until(lambda: jobs.jobs.counts().by_state.get("completed") == 1)
        events.append("serving")
    assert events == ["own start", "serving", "own stop"]


def test_a_plain_starlette_site_works_too(jobs: conveyor.App) -> None:
    async def count(request: Request) -> JSONResponse:
        return JSONResponse(len(get_conveyor(request).job_names))

    site = Starlette(routes=[Route("/count", count)], lifespan=conveyor_lifespan(jobs))
    with TestClient(site) as client:
        assert client.get("/count").json() == 1


def test_the_dependency_without_the_lifespan_says_what_to_add(jobs: conveyor.App) -> None:
    site = FastAPI()

    @site.get("/")
    def index(app: ConveyorApp) -> str:
        return app.url

    with TestClient(site) as client, pytest.raises(conveyor.ConfigurationError, match="lifespan"):
        client.get("/")


def test_a_lifespan_state_key_named_conveyor_is_refused(jobs: conveyor.App) -> None:
    @asynccontextmanager
    async def own(site: Starlette) -> AsyncIterator[dict[str, Any]]:
        yield {"conveyor": "mine"}

    site = FastAPI(lifespan=conveyor_lifespan(jobs, lifespan=own))
    with pytest.raises(conveyor.ConfigurationError, match="rename yours"), TestClient(site):
        pass


def test_bad_arguments_are_refused_with_what_to_do(jobs: conveyor.App) -> None:
    with pytest.raises(conveyor.ConfigurationError, match=r"needs a conveyor\.App"):
        conveyor_lifespan("sqlite:///x.db")  # type: ignore[arg-type]
    with pytest.raises(conveyor.ConfigurationError, match="lifespan function"):
        conveyor_lifespan(jobs, lifespan="mine")  # type: ignore[arg-type]
    with pytest.raises(conveyor.ConfigurationError, match="needs your authentication"):
        dashboard(jobs)
    with pytest.raises(conveyor.ConfigurationError, match="function of the request"):
        dashboard(jobs, authorize="manage")  # type: ignore[arg-type]
    for path in ("/", "jobs", ""):
        with pytest.raises(conveyor.ConfigurationError, match="below the site's root"):
            mount_dashboard(FastAPI(), jobs, path=path, authorize=lambda request: "view")


def role_site(jobs: conveyor.App, hook: Any) -> FastAPI:
    """A site whose users say who they are in X-Role (set by a trusted proxy, say)."""
    site = FastAPI(lifespan=conveyor_lifespan(jobs))
    mount_dashboard(site, jobs, path="/ops/jobs/", authorize=hook)
    return site


def by_role(request: Request) -> str | None:
    return {"admin": "manage", "staff": "view"}.get(request.headers.get("x-role", ""))


@pytest.mark.parametrize("hook", ["sync", "async"])
def test_the_dashboard_grants_what_the_hook_returns(jobs: conveyor.App, hook: str) -> None:
    async def by_role_async(request: Request) -> str | None:
        return by_role(request)

    site = role_site(jobs, by_role if hook == "sync" else by_role_async)
    job = jobs.enqueue("double", {"n": 2})
    with TestClient(site) as client:
        assert client.get("/ops/jobs/api/jobs").status_code == 401
        assert client.get("/ops/jobs/api/jobs", headers={"x-role": "nobody"}).status_code == 401
        staff = client.get("/ops/jobs/api/jobs", headers={"x-role": "staff"})
        assert staff.status_code == 200 and [j["id"] for j in staff.json()["jobs"]] == [job.id]
        refused = client.post(f"/ops/jobs/api/jobs/{job.id}/cancel", headers={"x-role": "staff"})
        assert refused.status_code == 403
    assert jobs.jobs.require(job.id).state is conveyor.JobState.PENDING


def test_a_manager_changes_jobs_with_the_pages_csrf_token(jobs: conveyor.App) -> None:
    from .support import csrf_token

    job = jobs.enqueue("double", {"n": 2})
    with TestClient(role_site(jobs, by_role)) as client:
        admin = {"x-role": "admin"}
        page = client.get("/ops/jobs/", headers=admin)
        assert page.status_code == 200 and 'href="/ops/jobs/jobs' in page.text
        cancel = f"/ops/jobs/api/jobs/{job.id}/cancel"
        assert client.post(cancel, headers=admin).status_code == 403  # no CSRF token
        headers = {**admin, "x-csrf-token": csrf_token(page.text)}
        assert client.post(cancel, headers=headers).status_code == 200
    assert jobs.jobs.require(job.id).state is conveyor.JobState.CANCELLED


@pytest.mark.parametrize("answer", ["admin", ["view", "everything"], 1, True])
def test_a_hook_answer_that_is_no_permission_is_an_error_never_access(
    jobs: conveyor.App, answer: object, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(role_site(jobs, lambda request: answer)) as client:
        for path in ("/ops/jobs/api/jobs", "/ops/jobs/api/stats"):
            response = client.get(path)
            assert response.status_code == 500
            message = "the dashboard is misconfigured: see the server's log"
            assert response.json() == {"error": message}
    assert "'view'" in caplog.text and "the permission hook" in caplog.text


def test_an_awaitable_from_a_sync_hook_is_an_error(
    jobs: conveyor.App, caplog: pytest.LogCaptureFixture
) -> None:
    async def later() -> str:
        return "manage"

    def hook(request: Request) -> Any:
        return later()

    with TestClient(role_site(jobs, hook)) as client:
        assert client.get("/ops/jobs/api/jobs").status_code == 500
    assert "async def" in caplog.text
