"""Quiet, stop and resume a worker through the REST API and the workers page (the worker here
is a heartbeat written to the store, as a worker elsewhere would write it)."""

from __future__ import annotations

from dataclasses import replace

from fastapi.testclient import TestClient

import conveyor
from contract.support import worker_info

from .support import EVIL, MANAGE_TOKEN, VIEW_TOKEN
from .test_api import login as api_login
from .test_pages import login as page_login


def alive(app: conveyor.App, worker_id: str = "w1", **fields: object) -> None:
    """A worker's heartbeat at the app's time."""
    info = replace(worker_info(worker_id, app.clock()), **fields)  # type: ignore[arg-type]
    app.backend.heartbeat(info, [], app.clock())


def test_the_api_quiets_resumes_and_stops_a_worker(manager: TestClient, app: conveyor.App) -> None:
    alive(app)
    [listed] = manager.get("/api/workers").json()
    assert (listed["mode"], listed["requested"], listed["pending"]) == ("running", None, None)

    quiet = manager.post("/api/workers/w1/quiet")
    assert quiet.status_code == 200
    body = quiet.json()
    assert (body["id"], body["mode"], body["requested"], body["pending"]) == (
        "w1", "running", "quiet", "quiet",
    )  # fmt: skip
    assert app.backend.heartbeat(worker_info("w1", app.clock()), [], app.clock()).requested == (
        "quiet"
    )
    resumed = manager.post("/api/workers/w1/resume").json()
    assert resumed["requested"] is None
    stopped = manager.post("/api/workers/w1/stop").json()
    assert stopped["requested"] == "stop" and stopped["pending"] == "stopping"
    assert [w.requested for w in app.jobs.workers()] == ["stop"]


def test_the_api_answers_404_and_409_in_json(manager: TestClient, app: conveyor.App) -> None:
    unknown = manager.post("/api/workers/nobody/quiet")
    assert unknown.status_code == 404
    assert "no live worker has id 'nobody'" in unknown.json()["error"]
    alive(app, "w1", mode="stopping")
    conflict = manager.post("/api/workers/w1/resume")
    assert conflict.status_code == 409 and "is stopping" in conflict.json()["error"]
    assert manager.post("/api/workers/w1/pause").status_code == 404  # no such action
    assert manager.post("/api/workers/" + "x" * 301 + "/stop").status_code == 422
    alive(app, "web-1.example:4242:1a2b3c4d")  # ids as workers make them
    colon = manager.post("/api/workers/web-1.example:4242:1a2b3c4d/quiet")
    assert colon.status_code == 200 and colon.json()["requested"] == "quiet"


def test_worker_actions_need_manage_and_a_csrf_token(
    viewer: TestClient, client: TestClient, app: conveyor.App
) -> None:
    alive(app)
    refused = viewer.post("/api/workers/w1/stop")
    assert refused.status_code == 403 and "manage" in refused.json()["error"]
    csrf = api_login(client, MANAGE_TOKEN)
    no_token = client.post("/api/workers/w1/stop")
    assert no_token.status_code == 403 and "CSRF" in no_token.json()["error"]
    assert app.jobs.workers()[0].requested is None
    assert client.post("/api/workers/w1/stop", headers={"X-CSRF-Token": csrf}).status_code == 200
    assert app.jobs.workers()[0].requested == "stop"


def test_the_workers_page_shows_the_mode_and_the_buttons(
    client: TestClient, app: conveyor.App
) -> None:
    alive(app, "w1")
    alive(app, "w2", mode="quiet")
    app.jobs.quiet_worker("w2")
    alive(app, "w3")
    app.jobs.stop_worker("w3")
    page_login(client, MANAGE_TOKEN)
    html = client.get("/workers").text
    assert 'data-mode="running"' in html and 'data-mode="quiet"' in html
    assert 'data-pending="stopping"' in html  # w3: asked, not yet followed
    row = html[html.index('data-worker="w1"') :].split("</tr>")[0]
    assert 'data-action="quiet"' in row and 'data-action="stop"' in row
    assert "data-confirm=" in row.split('data-action="stop"')[0]  # Stop asks first
    row = html[html.index('data-worker="w2"') :].split("</tr>")[0]
    assert 'data-action="resume"' in row and 'data-action="quiet"' not in row
    row = html[html.index('data-worker="w3"') :].split("</tr>")[0]
    assert "data-action=" not in row  # stopping: nothing more to ask
    page_login(client, VIEW_TOKEN)
    assert "data-action=" not in client.get("/workers").text.split("<tbody>")[1]


def test_the_page_forms_quiet_and_stop_a_worker(client: TestClient, app: conveyor.App) -> None:
    alive(app)
    csrf = page_login(client, MANAGE_TOKEN)
    form = {"csrf": csrf, "next": "/workers"}
    shown = client.post("/workers/w1/quiet", data=form)
    assert "Worker w1 asked to go quiet" in shown.text
    assert app.jobs.workers()[0].requested == "quiet"
    assert "Worker w1 asked to stop" in client.post("/workers/w1/stop", data=form).text
    refused = client.post("/workers/w1/resume", data=form)
    assert "is stopping" in refused.text and app.jobs.workers()[0].requested == "stop"
    missing = client.post("/workers/nobody/stop", data=form)
    assert missing.status_code == 200 and "no live worker has id" in missing.text
    forged = client.post("/workers/w1/quiet", data={"csrf": "0" * 64, "next": "/workers"})
    assert forged.status_code == 403
    csrf = page_login(client, VIEW_TOKEN)
    viewer = client.post("/workers/w1/quiet", data={"csrf": csrf, "next": "/workers"})
    assert viewer.status_code == 403


def test_a_worker_id_with_markup_is_escaped(client: TestClient, app: conveyor.App) -> None:
    alive(app, EVIL, host=EVIL)
    page_login(client, MANAGE_TOKEN)
    html = client.get("/workers").text
    assert EVIL not in html
    app.jobs.quiet_worker(EVIL)
    assert EVIL not in client.get("/workers").text
