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
