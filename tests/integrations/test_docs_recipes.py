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


RECIPE_CHECK = """
from django.contrib.auth.models import User
from django.db import transaction
from django.test import Client

from billing.jobs import send_invoice
from billing.models import Invoice
from conveyor.integrations.django import app

client = Client()
answer = client.post("/invoices/", {"amount": "120"})
assert answer.status_code == 201, answer.content
job_id = answer.json()["job"]
assert client.get(f"/jobs/{job_id}/").json()["state"] == "pending"
app.testing.drain()
done = client.get(f"/jobs/{job_id}/").json()
assert done == {"state": "completed", "result": f"sent {answer.json()['invoice']}"}, done

try:
    with transaction.atomic():
        invoice = Invoice.objects.create(amount=1)
        dropped = send_invoice.enqueue(invoice_id=invoice.id)
        raise RuntimeError("roll back")
except RuntimeError:
    pass
assert app.jobs.get(dropped.id) is None

assert client.get("/admin/jobs/api/jobs").status_code == 401
client.force_login(User.objects.create_user("clerk"))
assert client.get("/admin/jobs/api/jobs").status_code == 200
client.force_login(User.objects.create_user("boss", is_staff=True))
page = client.get("/admin/jobs/")
assert page.status_code == 200 and "send_invoice" in client.get("/admin/jobs/jobs").text
print("recipe ok")
"""


def test_the_django_recipe_runs(tmp_path: Path) -> None:
    pytest.importorskip("django")
    pytest.importorskip("fastapi")
    import os
    import secrets
    import subprocess
    import sys
    from urllib.parse import urlsplit

    import psycopg

    from postgres.server import BASE_URL, require_server

    require_server()
    written = write_recipe(DOCS / "django.md", tmp_path)
    assert "billing/jobs.py" in written and "mysite/settings.py" in written
    name = f"conveyor_recipe_{secrets.token_hex(5)}"
    server = urlsplit(BASE_URL)
    env = {
        **os.environ,
        "DB_NAME": name,
        "DB_HOST": server.hostname or "127.0.0.1",
        "DB_PORT": str(server.port or 5432),
        "DB_USER": server.username or "postgres",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def manage(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    with psycopg.connect(BASE_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        manage("makemigrations", "billing")
        manage("migrate", "--noinput")
        assert "schema version" in manage("conveyor", "migrate")
        assert "recipe ok" in manage("shell", "-c", RECIPE_CHECK)
        assert "send_invoice" in manage("conveyor", "jobs", "ls")
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
