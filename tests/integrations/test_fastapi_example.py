"""examples/fastapi_app, as its README runs it: a report enqueued from a route runs on the
embedded worker, its status route answers, and the dashboard shows it to the site's users."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient

from helpers import wait_until

from .support import EXAMPLES, csrf_token, importable

ALICE = ("alice", "wonderland")  # may manage
BOB = ("bob", "builder")  # may view


@pytest.fixture
def example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The example's main module, its App on a SQLite file of this test."""
    monkeypatch.setenv("CONVEYOR_URL", f"sqlite:///{tmp_path / 'example.db'}")
    with importable(EXAMPLES / "fastapi_app", "jobs", "main") as modules:
        yield modules["main"]
        modules["jobs"].app.close()


@pytest.fixture
def client(example: ModuleType) -> Iterator[TestClient]:
    with TestClient(example.site) as test_client:
        yield test_client


def test_a_report_enqueued_from_a_route_runs_and_its_status_answers(client: TestClient) -> None:
    started = client.post("/reports", params={"month": "2024-05"})
    assert started.status_code == 202
    status = started.json()["status"]

    def completed() -> bool:
        return client.get(status).json()["state"] == "completed"

    wait_until(completed, what="the report to complete")
    answer = client.get(status).json()
    assert answer == {
        "id": started.json()["id"],
        "state": "completed",
        "progress": 100,
        "result": {"month": "2024-05", "rows": 700},
    }
    assert client.get("/reports/0190aaaa0000700080000000000000ff").status_code == 404


def test_the_dashboard_answers_the_sites_users_by_role(client: TestClient) -> None:
    job_id = client.post("/reports", params={"month": "2024-06"}).json()["id"]
    assert client.get("/admin/jobs/api/jobs").status_code == 401
    assert client.get("/admin/jobs/api/jobs", auth=("alice", "wrong")).status_code == 400
    listed = client.get("/admin/jobs/api/jobs", auth=BOB)
    assert listed.status_code == 200 and job_id in {job["id"] for job in listed.json()["jobs"]}
    page = client.get(f"/admin/jobs/jobs/{job_id}", auth=BOB)
    assert page.status_code == 200 and "2024-06" in page.text
    token = csrf_token(page.text)
    retry = f"/admin/jobs/api/jobs/{job_id}/cancel"
    assert client.post(retry, auth=BOB, headers={"x-csrf-token": token}).status_code == 403
    manager_page = client.get("/admin/jobs/", auth=ALICE)
    assert manager_page.status_code == 200
    enqueue = client.post(
        "/admin/jobs/api/jobs",
        auth=ALICE,
        headers={"x-csrf-token": csrf_token(manager_page.text)},
        json={"name": "build_report", "args": {"month": "2024-07"}},
    )
    assert enqueue.status_code == 201


def test_the_login_route_asks_the_browser_for_credentials(client: TestClient) -> None:
    asked = client.get("/admin/login", follow_redirects=False)
    assert asked.status_code == 401 and asked.headers["www-authenticate"].startswith("Basic")
    signed_in = client.get("/admin/login", auth=ALICE, follow_redirects=False)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/admin/jobs/"
