"""Flask: the Conveyor extension configured from app.config in an app factory, enqueue from
a view, `flask conveyor ...` through Flask's CLI, and the dashboard behind the Flask app's own
login (its session), with Flask's test client and a SQLite store."""

from __future__ import annotations

import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("flask")
pytest.importorskip("fastapi")  # the dashboard

import flask
from flask.testing import FlaskClient

import conveyor
from conveyor.integrations.flask import Conveyor, extension

from .support import assert_worker_command_runs, csrf_token

ROLES = {"ada": "manage", "grace": "view", "eve": None}


def create_site(ext: Conveyor, **config: Any) -> flask.Flask:
    """An app factory: config, the extension, a view that enqueues, a session login."""
    site = flask.Flask(__name__)
    site.config.update(SECRET_KEY="test-secret", **config)
    ext.init_app(site)

    @site.post("/welcome/<int:user_id>")
    def welcome(user_id: int) -> dict[str, str]:
        return {"job": extension().app.enqueue("send_welcome", {"user_id": user_id}).id}

    @site.get("/login/<name>")
    def login(name: str) -> str:
        flask.session["user"] = name
        return "signed in"

    def permission(request: flask.Request) -> str | None:
        return ROLES.get(flask.session.get("user", ""))

    ext.mount_dashboard(site, "/admin/jobs", authorize=permission)
    return site


def new_extension() -> Conveyor:
    ext = Conveyor()

    @ext.job(queue="mail")
    def send_welcome(ctx: conveyor.Context, user_id: int) -> str:
        return f"welcome {user_id}"

    return ext


@pytest.fixture
def ext() -> Iterator[Conveyor]:
    extension = new_extension()
    yield extension
    extension.close()


@pytest.fixture
def site(ext: Conveyor, tmp_path: Path) -> flask.Flask:
    return create_site(
        ext,
        CONVEYOR_URL=f"sqlite:///{tmp_path / 'jobs.db'}",
        CONVEYOR_SETTINGS={"concurrency": 3},
        CONVEYOR_QUEUES={"mail": 2},
    )


@pytest.fixture
def client(site: flask.Flask) -> FlaskClient:
    return site.test_client()


def test_config_is_read_from_app_config(ext: Conveyor, site: flask.Flask, tmp_path: Path) -> None:
    assert ext.app.url == f"sqlite:///{tmp_path / 'jobs.db'}"
    assert ext.app.settings.concurrency == 3 and ext.app.queue_limits == {"mail": 2}
    assert site.extensions["conveyor"] is ext


def test_a_view_enqueues_and_the_job_runs(ext: Conveyor, client: FlaskClient) -> None:
    job_id = client.post("/welcome/7").get_json()["job"]
    assert ext.app.jobs.require(job_id).state is conveyor.JobState.PENDING
    ext.app.testing.drain()  # the worker's own step
    assert ext.app.jobs.require(job_id).result == "welcome 7"


def test_the_dashboard_follows_the_flask_login(ext: Conveyor, client: FlaskClient) -> None:
    job_id = client.post("/welcome/1").get_json()["job"]
    api = "/admin/jobs/api/jobs"
    assert client.get(api).status_code == 401  # nobody signed in
    client.get("/login/eve")
    assert client.get(api).status_code == 401  # signed in, but no role
    client.get("/login/grace")
    listed = client.get(api)
    assert listed.status_code == 200 and [j["id"] for j in listed.get_json()["jobs"]] == [job_id]
    page = client.get(f"/admin/jobs/jobs/{job_id}")
    assert page.status_code == 200 and "send_welcome" in page.text
    token = {"X-CSRF-Token": csrf_token(page.text)}
    assert client.post(f"{api}/{job_id}/cancel", headers=token).status_code == 403
    client.get("/login/ada")
    page = client.get("/admin/jobs/")
    assert page.status_code == 200 and 'href="/admin/jobs/static/' in page.text
    assert client.post(f"{api}/{job_id}/cancel").status_code == 403  # no CSRF token
    token = {"X-CSRF-Token": csrf_token(page.text)}
    assert client.post(f"{api}/{job_id}/cancel", headers=token).status_code == 200
    assert ext.app.jobs.require(job_id).state is conveyor.JobState.CANCELLED
    assert client.get("/admin/jobs/static/app.css").status_code == 200
    assert client.get("/admin/jobs").status_code == 308  # to the dashboard's root


def test_the_pages_sign_in_form_posts_through_the_bridge(ext: Conveyor, site: flask.Flask) -> None:
    client = site.test_client()
    client.get("/login/ada")
    page = client.get("/admin/jobs/queues")
    assert page.status_code == 200
    pause = client.post(
        "/admin/jobs/queues/mail/pause",
        data={"csrf": csrf_token(page.text)},
        follow_redirects=False,
    )
    assert pause.status_code in (303, 302, 200), pause.text
    assert any(q.name == "mail" and q.paused for q in ext.app.jobs.queues())


def test_a_hook_answer_that_is_no_permission_is_an_error_never_access(
    ext: Conveyor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    site = flask.Flask(__name__)
    site.config["CONVEYOR_URL"] = f"sqlite:///{tmp_path / 'x.db'}"
    ext.init_app(site)
    ext.mount_dashboard(site, "/jobs", authorize=lambda request: "admin")
    response = site.test_client().get("/jobs/api/jobs")
    assert response.status_code == 500 and b"misconfigured" in response.data
    assert "'admin'" in caplog.text


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"CONVEYOR_URL": 5}, "CONVEYOR_URL must be a store URL"),
        ({"CONVEYOR_SETTINGS": "fast"}, "CONVEYOR_SETTINGS must be a dict"),
        ({"CONVEYOR_SETTINGS": {"speed": 9}}, "unknown setting"),
        ({"CONVEYOR_QUEUES": {"mail": "two"}}, r"CONVEYOR_QUEUES\['mail'\] must be"),
        ({"CONVEYOR_QUEUES": {"mail": 0}}, "concurrency must be from 1"),
        ({"CONVEYOR_QUEUES": {"mail": {"size": 9}}}, r"\['mail'\]: unknown queue setting"),
        ({"CONVEYOR_QUEUES": {"mail": {"max_size": 0}}}, "max_size must be from 1"),
    ],
)
def test_bad_config_is_refused_with_what_to_do(config: dict[str, Any], words: str) -> None:
    site = flask.Flask(__name__)
    site.config.update(config)
    with pytest.raises(conveyor.ConfigurationError, match=words):
        Conveyor(site)


def test_queue_settings_from_the_config(tmp_path: Path) -> None:
    site = flask.Flask(__name__)
    site.config.update(
        CONVEYOR_URL=f"sqlite:///{tmp_path / 'jobs.db'}",
        CONVEYOR_QUEUES={"mail": 2, "imports": {"max_size": 100, "when_full": "refuse"}},
    )
    ext = Conveyor(site)
    try:
        assert ext.app.queue_settings == {
            "mail": conveyor.QueueSettings(concurrency=2),
            "imports": conveyor.QueueSettings(max_size=100, when_full="refuse"),
        }
        assert ext.app.jobs.queue("imports").max_size == 100  # written when the store opened
    finally:
        ext.app.close()


def test_bad_arguments_are_refused(ext: Conveyor, site: flask.Flask) -> None:
    with pytest.raises(conveyor.ConfigurationError, match="takes the Flask application"):
        ext.init_app("site")  # type: ignore[arg-type]
    with pytest.raises(conveyor.ConfigurationError, match=r"takes a conveyor\.App"):
        Conveyor(app="memory://")  # type: ignore[arg-type]
    with pytest.raises(conveyor.ConfigurationError, match="function of the request"):
        ext.mount_dashboard(site, "/other", authorize="manage")  # type: ignore[arg-type]
    with pytest.raises(conveyor.ConfigurationError, match="below the site's root"):
        ext.mount_dashboard(site, "/", authorize=lambda request: None)


def test_a_store_in_use_is_not_reconfigured(ext: Conveyor, site: flask.Flask) -> None:
    ext.app.jobs.counts()  # opens the store
    other = flask.Flask(__name__)
    other.config["CONVEYOR_URL"] = "memory://"
    with pytest.raises(conveyor.ConfigurationError, match="is open already"):
        ext.init_app(other)


def test_without_the_extension_the_helper_says_what_to_call() -> None:
    with (
        flask.Flask(__name__).app_context(),
        pytest.raises(conveyor.ConfigurationError, match="init_app"),
    ):
        extension()


def test_flask_conveyor_runs_the_conveyor_command(ext: Conveyor, site: flask.Flask) -> None:
    runner = site.test_cli_runner()
    migrated = runner.invoke(args=["conveyor", "migrate", "--json"])
    assert migrated.exit_code == 0, migrated.output
    job = ext.app.enqueue("send_welcome", {"user_id": 3})
    listed = runner.invoke(args=["conveyor", "jobs", "ls", "--json"])
    assert listed.exit_code == 0, listed.output
    assert job.id in listed.output
    helped = runner.invoke(args=["conveyor", "--help"])
    assert helped.exit_code == 0 and "worker" in helped.output
    unknown = runner.invoke(args=["conveyor", "nonsense"])
    assert unknown.exit_code == 2 and "nonsense" in unknown.output


PROJECT = """
import flask
import conveyor
from conveyor.integrations.flask import Conveyor

jobs = Conveyor()


@jobs.job
def shout(ctx: conveyor.Context, word: str) -> str:
    return word.upper()


def create_app() -> flask.Flask:
    site = flask.Flask(__name__)
    site.config.from_prefixed_env("SITE")
    jobs.init_app(site)
    return site
"""


@pytest.mark.slow
def test_flask_conveyor_worker_runs_jobs_until_sigterm(tmp_path: Path) -> None:
    (tmp_path / "siteapp.py").write_text(textwrap.dedent(PROJECT))
    url = f"sqlite:///{tmp_path / 'site.db'}"
    env = {**os.environ, "SITE_CONVEYOR_URL": url, "FLASK_APP": "siteapp:create_app"}
    producer = conveyor.App(url)
    producer.declare("shout")  # a producer that does not import the jobs
    job_id = producer.enqueue("shout", {"word": "hi"}).id
    command = [sys.executable, "-m", "flask", "conveyor", "worker", "--concurrency", "2"]
    assert_worker_command_runs(command, tmp_path, env, producer, job_id, "HI")
