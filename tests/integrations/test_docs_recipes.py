"""Each docs/integrations page is a runnable recipe: its `# file:` blocks are written to a
folder and run here, against the real framework and a SQLite store."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import wait_until

from .support import DOCS, csrf_token, importable, write_recipe


def test_the_fastapi_recipe_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    assert write_recipe(DOCS / "fastapi.md", tmp_path) == ["tasks.py", "webapp.py"]
    monkeypatch.setenv("CONVEYOR_URL", f"sqlite:///{tmp_path / 'recipe.db'}")
    with (
        importable(tmp_path, "tasks", "webapp") as modules,
        TestClient(modules["webapp"].site) as client,
    ):
        started = client.post("/images/cat.png/resize", params={"width": 640})
        assert started.status_code == 202
        status = f"/jobs/{started.json()['job']}"
        wait_until(lambda: client.get(status).json()["state"] == "completed")
        assert client.get(status).json()["result"] == {"name": "cat.png", "width": 640}
        assert client.get("/admin/jobs/api/jobs").status_code == 401
        assert client.get("/admin/jobs/api/jobs", auth=("grace", "hopper")).status_code == 200
        page = client.get("/admin/jobs/", auth=("ada", "s3cret"))
        enqueued = client.post(
            "/admin/jobs/api/jobs",
            auth=("ada", "s3cret"),
            headers={"x-csrf-token": csrf_token(page.text)},
            json={"name": "resize_image", "args": {"name": "dog.png", "width": 10}},
        )
        assert enqueued.status_code == 201
        modules["tasks"].app.close()


def test_the_flask_recipe_runs(tmp_path: Path) -> None:
    pytest.importorskip("flask")
    pytest.importorskip("fastapi")

    assert write_recipe(DOCS / "flask.md", tmp_path) == ["shop.py", "tasks.py"]
    with importable(tmp_path, "tasks", "shop") as modules:
        config = {"CONVEYOR_URL": f"sqlite:///{tmp_path / 'shop.db'}", "TESTING": True}
        site = modules["shop"].create_app(config)
        jobs = modules["tasks"].jobs
        client = site.test_client()
        started = client.post("/orders/42/invoice")
        assert started.status_code == 202
        status = f"/jobs/{started.get_json()['job']}"
        assert client.get(status).get_json()["state"] == "pending"
        runner = site.test_cli_runner()
        assert runner.invoke(args=["conveyor", "jobs", "ls"]).exit_code == 0
        jobs.app.testing.drain()
        assert client.get(status).get_json() == {"state": "completed", "result": "invoice-42.pdf"}
        assert client.get("/admin/jobs/api/jobs").status_code == 401
        assert client.post("/login", data={"name": "ada", "password": "no"}).status_code == 401
        client.post("/login", data={"name": "grace", "password": "hopper"})
        assert client.get("/admin/jobs/api/jobs").status_code == 200
        page = client.get("/admin/jobs/")
        refused = client.post(
            "/admin/jobs/api/jobs",
            headers={"X-CSRF-Token": csrf_token(page.text)},
            json={"name": "send_invoice", "args": {"order_id": 1}},
        )
        assert refused.status_code == 403
        client.post("/login", data={"name": "ada", "password": "s3cret"})
        page = client.get("/admin/jobs/")
        enqueued = client.post(
            "/admin/jobs/api/jobs",
            headers={"X-CSRF-Token": csrf_token(page.text)},
            json={"name": "send_invoice", "args": {"order_id": 1}},
        )
        assert enqueued.status_code == 201
        jobs.close()
