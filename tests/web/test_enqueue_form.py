"""The dashboard's "Enqueue a job" form: checked like the API, managers only, CSRF-protected."""

from __future__ import annotations

from fastapi.testclient import TestClient

import conveyor

from .support import VIEW_TOKEN
from .test_pages import login
from .test_workflow_views import sign_in


def post(client: TestClient, csrf: str, **fields: str) -> str:
    page = client.post(
        "/jobs/new", data={"csrf": csrf, "next": "/jobs/new", **fields}, follow_redirects=True
    )
    assert page.status_code == 200
    return page.text


def test_a_manager_enqueues_a_job_by_name(app: conveyor.App, client: TestClient) -> None:
    csrf = sign_in(client)
    form = client.get("/jobs/new")
    assert form.status_code == 200 and '<option value="hello"' in form.text

    shown = post(client, csrf, name="hello", args='{"who": "form"}', priority="5")

    [job] = app.jobs.list(name="hello").jobs
    assert (job.args, job.priority) == ({"who": "form"}, 5)
    assert f"Job hello enqueued: {job.id}." in shown


def test_bad_input_is_a_notice_and_nothing_is_stored(app: conveyor.App, client: TestClient) -> None:
    csrf = sign_in(client)

    assert "not JSON" in post(client, csrf, name="hello", args="{nope")
    assert "unknown argument" in post(client, csrf, name="hello", args='{"whom": 1}')
    assert "no-such-job" in post(client, csrf, name="no-such-job")
    assert "priority" in post(client, csrf, name="hello", priority="lots")
    assert app.jobs.list(name="hello").total == 0


def test_viewers_and_forged_forms_are_refused(app: conveyor.App, client: TestClient) -> None:
    csrf = login(client, VIEW_TOKEN)
    assert "needs the manage permission" in client.get("/jobs/new").text
    refused = client.post("/jobs/new", data={"csrf": csrf, "name": "hello", "next": "/jobs"})
    assert refused.status_code == 403
    forged = client.post("/jobs/new", data={"name": "hello", "next": "/jobs"})
    assert forged.status_code == 403
    assert app.jobs.list(name="hello").total == 0
