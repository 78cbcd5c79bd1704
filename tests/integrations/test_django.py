"""Django: the test project in tests/django_project, run with Django's own test runner on the
real PostgreSQL server (a database of its own per run) and on SQLite, and `manage.py
conveyor` as a real process."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytest.importorskip("django")
pytest.importorskip("fastapi")  # the dashboard

import conveyor
from postgres.server import BASE_URL, require_server

from .support import assert_worker_command_runs

PROJECT = Path(__file__).resolve().parents[1] / "django_project"


def manage(
    *args: str, env: dict[str, str], timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """Run the test project's manage.py with `args`."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def postgres_env() -> dict[str, str]:
    """The project's settings on the test server, in a database no other run uses (Django's
    runner creates it as test_<name> and drops it at the end)."""
    require_server()
    server = urlsplit(BASE_URL)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "CONVEYOR_DJANGO_DB": f"conveyor_dj_{secrets.token_hex(5)}",
        "CONVEYOR_DJANGO_HOST": server.hostname or "127.0.0.1",
        "CONVEYOR_DJANGO_PORT": str(server.port or 5432),
        "CONVEYOR_DJANGO_USER": server.username or "postgres",
    }


def sqlite_env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings_sqlite",
        "CONVEYOR_DJANGO_DIR": str(folder),
    }


def test_djangos_runner_passes_the_project_on_postgresql() -> None:
    done = manage(
        "test", "shop.tests_postgres", "shop.tests_dashboard", "--noinput", env=postgres_env()
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\nOK" in done.stderr and "Ran " in done.stderr


def test_djangos_runner_passes_the_project_on_sqlite(tmp_path: Path) -> None:
    done = manage("test", "shop.tests_sqlite", "shop.tests_dashboard", env=sqlite_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "\nOK" in done.stderr


def test_manage_py_conveyor_forwards_to_the_conveyor_command(tmp_path: Path) -> None:
    env = sqlite_env(tmp_path)
    helped = manage("conveyor", "--help", env=env)
    assert helped.returncode == 0 and "manage.py conveyor" in helped.stdout
    assert "worker" in helped.stdout and "migrate" in helped.stdout
    migrated = manage("conveyor", "migrate", "--json", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert '"schema_version"' in migrated.stdout
    wrong = manage("conveyor", "nonsense", env=env)
    assert wrong.returncode == 2 and "nonsense" in wrong.stderr


@pytest.mark.slow
def test_manage_py_conveyor_worker_runs_jobs_until_sigterm(tmp_path: Path) -> None:
    producer = conveyor.App(f"sqlite:///{tmp_path / 'jobs.db'}")
    producer.declare("send_receipt", queue="receipts")
    job_id = producer.enqueue("send_receipt", {"order_id": 9}).id
    command = [sys.executable, "manage.py", "conveyor", "worker", "--concurrency", "2"]
    assert_worker_command_runs(
        command, PROJECT, sqlite_env(tmp_path), producer, job_id, "receipt-9"
    )
