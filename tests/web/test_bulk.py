"""Bulk actions on a selection of jobs or on a list's filter, through the API and the pages."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

import conveyor
from conveyor import JobState

from .support import MANAGE_TOKEN, VIEW_TOKEN
from .test_pages import login

UNKNOWN_ID = "01a20a4f-0000-7000-8000-000000000000"
MANY_IDS = [f"01a20a4f-0000-7000-8000-{n:012x}" for n in range(201)]  # one more than a call takes


@dataclass
class Mixed:
    """One job in each of the states the actions tell apart."""

    failed: str
    completed: str
    pending: str
    scheduled: str


@pytest.fixture
def mixed(app: conveyor.App) -> Mixed:
    failed = app.enqueue("boom").id
    completed = app.enqueue("hello").id
    app.testing.drain()
    pending = app.enqueue("hello").id
    scheduled = app.enqueue("hello", delay=3600).id
    return Mixed(failed, completed, pending, scheduled)


def every(jobs: Mixed) -> list[str]:
    return [jobs.failed, jobs.completed, jobs.pending, jobs.scheduled]


def state(app: conveyor.App, job_id: str) -> JobState:
    return app.jobs.require(job_id).state


# the API ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "changed", "after"),
    [
        ("retry", "failed", JobState.PENDING),
        ("run-now", "scheduled", JobState.PENDING),
    ],
)
def test_api_acts_on_the_named_jobs_it_applies_to(
    manager: TestClient,
    app: conveyor.App,
    mixed: Mixed,
    action: str,
    changed: str,
    after: JobState,
) -> None:
    before = {job_id: state(app, job_id) for job_id in every(mixed)}
    answer = manager.post(f"/api/jobs/bulk/{action}", json={"ids": every(mixed)})
    assert answer.status_code == 200, answer.text
    target = getattr(mixed, changed)
    assert answer.json() == {"matched": 4, "changed": 1, "job_ids": [target], "truncated": False}
    assert state(app, target) is after
    assert all(state(app, i) is before[i] for i in every(mixed) if i != target)


def test_api_cancel_and_delete_by_id(manager: TestClient, app: conveyor.App, mixed: Mixed) -> None:
    cancelled = manager.post("/api/jobs/bulk/cancel", json={"ids": every(mixed)}).json()
    assert sorted(cancelled["job_ids"]) == sorted([mixed.pending, mixed.scheduled])
    assert state(app, mixed.pending) is state(app, mixed.scheduled) is JobState.CANCELLED
    deleted = manager.post("/api/jobs/bulk/delete", json={"ids": [mixed.failed, mixed.pending]})
    assert deleted.json()["changed"] == 2
    assert app.jobs.get(mixed.failed) is None and app.jobs.get(mixed.pending) is None
    assert state(app, mixed.completed) is JobState.COMPLETED


def test_api_run_now_and_delete_by_filter(
    manager: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    later = app.enqueue("boom", delay=60).id
    ran = manager.post("/api/jobs/bulk/run-now", json={"name": "hello"}).json()
    assert ran["job_ids"] == [mixed.scheduled] and state(app, later) is JobState.SCHEDULED
    deleted = manager.post("/api/jobs/bulk/delete", json={"state": "completed,failed"}).json()
    assert sorted(deleted["job_ids"]) == sorted([mixed.failed, mixed.completed])
    assert app.jobs.get(mixed.pending) is not None


def test_api_refuses_a_running_jobs_delete_but_not_the_rest(
    manager: TestClient, app: conveyor.App
) -> None:
    from contract.support import claim_one

    running = app.enqueue("hello").id
    waiting = app.enqueue("hello").id
    assert claim_one(app.backend, app.clock()).id == running  # a worker elsewhere runs it
    answer = manager.post("/api/jobs/bulk/delete", json={"ids": [running, waiting]}).json()
    assert (answer["matched"], answer["job_ids"]) == (2, [waiting])
    assert state(app, running) is JobState.RUNNING


@pytest.mark.parametrize(
    ("path", "body", "status", "words"),
    [
        ("/api/jobs/bulk/retry", {"ids": [UNKNOWN_ID]}, 404, "nothing was done"),
        ("/api/jobs/bulk/retry", {"ids": ["not-an-id"]}, 422, "ids"),
        ("/api/jobs/bulk/retry", {"ids": []}, 422, "ids"),
        ("/api/jobs/bulk/retry", {"ids": MANY_IDS}, 422, "ids"),
        ("/api/jobs/bulk/explode", {}, 422, "action"),
        ("/api/jobs/bulk/retry", {"ids": [UNKNOWN_ID], "state": "failed"}, 422, "invalid"),
        ("/api/jobs/bulk/delete", {"state": "bogus"}, 422, "state"),
    ],
)
def test_api_bad_bulk_requests_are_4xx_json(
    manager: TestClient, app: conveyor.App, path: str, body: object, status: int, words: str
) -> None:
    failed = app.enqueue("boom").id
    app.testing.drain()
    if status == 404:  # a known id beside the unknown one: still nothing is done
        body = {"ids": [failed, UNKNOWN_ID]}
    answer = manager.post(path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert words in answer.json()["error"]
    assert state(app, failed) is JobState.FAILED


def test_api_bulk_needs_manage(viewer: TestClient, app: conveyor.App, mixed: Mixed) -> None:
    answer = viewer.post("/api/jobs/bulk/delete", json={"ids": every(mixed)})
    assert answer.status_code == 403
    assert all(app.jobs.get(i) is not None for i in every(mixed))


# the pages ----------------------------------------------------------------------------------
def post(client: TestClient, path: str, csrf: str, **fields: str | list[str]) -> str:
    response = client.post(path, data={"csrf": csrf, "next": "/jobs?state=", **fields})
    assert response.status_code == 200, response.text
    return response.text


def test_the_jobs_list_offers_selection_to_managers_only(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    login(client, VIEW_TOKEN)
    html = client.get("/jobs").text
    assert "data-select" not in html and "data-bulk" not in html
    login(client, MANAGE_TOKEN)
    html = client.get("/jobs").text
    assert html.count('name="ids"') == 4 and "data-select-page" in html
    for action in ("retry", "cancel", "delete", "run-now"):
        assert f'formaction="/jobs/bulk/{action}"' in html
    assert 'form="bulk" name="ids" value="' + mixed.failed + '"' in html


def test_page_bulk_actions_on_ticked_jobs_say_what_they_did(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    page = post(client, "/jobs/bulk/run-now", csrf, ids=every(mixed))
    assert "1 of 4 selected jobs made due now; 3 were not scheduled." in page
    assert state(app, mixed.scheduled) is JobState.PENDING
    page = post(client, "/jobs/bulk/delete", csrf, ids=[mixed.failed, mixed.completed])
    assert "2 of 2 selected jobs deleted." in page
    assert app.jobs.get(mixed.failed) is None
    page = post(client, "/jobs/bulk/cancel", csrf, ids=[mixed.pending], scope="selected")
    assert "1 of 1 selected jobs cancelled." in page
    page = post(client, "/jobs/bulk/retry", csrf, ids=[mixed.pending])
    assert "1 of 1 selected jobs retried." in page
    assert "data-flash" not in client.get("/jobs").text  # shown once


def test_page_bulk_action_on_everything_matching_the_filter(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    page = post(client, "/jobs/bulk/delete", csrf, scope="matching", name="hello")
    assert "3 of 3 jobs deleted." in page  # completed, pending and scheduled hello jobs
    assert [j.id for j in app.jobs.list().jobs] == [mixed.failed]


def test_page_bulk_action_on_a_filter_nothing_it_applies_to_matches(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    page = post(client, "/jobs/bulk/run-now", csrf, scope="matching", state="failed")
    assert "No job matching the filter is scheduled: none made due now." in page
    assert state(app, mixed.scheduled) is JobState.SCHEDULED


def test_page_bulk_action_with_nothing_ticked_is_a_notice(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    page = post(client, "/jobs/bulk/delete", csrf)
    assert 'role="alert" data-flash>No job is selected' in page
    assert all(app.jobs.get(i) is not None for i in every(mixed))


@pytest.mark.parametrize(
    ("path", "fields", "status", "words"),
    [
        ("/jobs/bulk/explode", {"ids": "{failed}"}, 404, "there is no bulk action"),
        ("/jobs/bulk/delete", {"ids": ["{failed}", UNKNOWN_ID]}, 404, "nothing was done"),
        ("/jobs/bulk/delete", {"ids": ["{failed}", "<b>x</b>"]}, 422, "is not a job id"),
        ("/jobs/bulk/delete", {"ids": MANY_IDS}, 422, "at most 200"),
        ("/jobs/bulk/delete", {"ids": "{failed}", "scope": "everything"}, 422, "scope"),
    ],
)
def test_page_bulk_bad_forms_are_error_pages(
    client: TestClient,
    app: conveyor.App,
    mixed: Mixed,
    path: str,
    fields: dict[str, str | list[str]],
    status: int,
    words: str,
) -> None:
    csrf = login(client, MANAGE_TOKEN)

    def fill(value: str) -> str:
        return value.replace("{failed}", mixed.failed)

    sent = {
        k: [fill(v) for v in vs] if isinstance(vs, list) else fill(vs) for k, vs in fields.items()
    }
    response = client.post(path, data={"csrf": csrf, "next": "/jobs?state=failed", **sent})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert words in html.replace("&#39;", "'") and "<b>x</b>" not in html
    assert 'href="/jobs?state=failed" data-back' in html
    assert all(app.jobs.get(i) is not None for i in every(mixed))


def test_page_bulk_needs_csrf_and_manage(
    client: TestClient, app: conveyor.App, mixed: Mixed
) -> None:
    login(client, MANAGE_TOKEN)
    forged = client.post("/jobs/bulk/delete", data={"ids": mixed.failed, "csrf": "x"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    csrf = login(client, VIEW_TOKEN)
    refused = client.post("/jobs/bulk/delete", data={"ids": mixed.failed, "csrf": csrf})
    assert refused.status_code == 403 and "manage permission" in refused.text
    assert app.jobs.get(mixed.failed) is not None


def test_a_form_with_too_many_fields_is_an_error_page(
    client: TestClient, app: conveyor.App
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    fields = [("csrf", csrf)] + [("ids", UNKNOWN_ID)] * 1500
    response = client.post(
        "/jobs/bulk/delete",
        content="&".join(f"{k}={v}" for k, v in fields),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>Form not accepted</h1>" in response.text and "Too many fields" in response.text


def test_cancelling_a_running_job_says_it_was_asked_to_stop(
    client: TestClient, app: conveyor.App
) -> None:
    from contract.support import claim_one

    running = app.enqueue("hello").id
    waiting = app.enqueue("hello").id
    assert claim_one(app.backend, app.clock()).id == running
    csrf = login(client, MANAGE_TOKEN)
    page = post(client, "/jobs/bulk/cancel", csrf, ids=[running, waiting])
    assert "2 of 2 selected jobs cancelled (1 running: asked to stop)." in page
    assert app.jobs.require(running).cancel_requested
    assert state(app, waiting) is JobState.CANCELLED
