"""The HTML pages: login, escaping, permissions, page actions with CSRF."""

from __future__ import annotations

import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import conveyor
from contract.support import claim_one, finish
from conveyor import JobState
from conveyor.web import create_app
from conveyor.web.auth import Flash, Signer

from .support import EVIL, MANAGE_TOKEN, TOKENS, VIEW_TOKEN

PAGES = ["/", "/jobs", "/recurring", "/queues", "/workers"]


def csrf_of(html: str) -> str:
    return html.split('data-csrf="')[1].split('"')[0]


def login(client: TestClient, token: str) -> str:
    csrf = csrf_of(client.get("/").text)
    response = client.post(
        "/login", data={"token": token, "csrf": csrf, "next": "/jobs"}, follow_redirects=False
    )
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    return csrf_of(client.get("/jobs").text)


@pytest.mark.parametrize("path", [*PAGES, "/jobs/01a20a4f-0000-7000-8000-000000000000"])
def test_pages_ask_for_a_token_without_permission(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert 'name="token"' in response.text and "<title>Sign in · Conveyor</title>" in response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_login_with_a_wrong_token_or_without_csrf(client: TestClient) -> None:
    csrf = csrf_of(client.get("/").text)
    wrong = client.post("/login", data={"token": "nope", "csrf": csrf, "next": "/queues"})
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert 'name="next" value="/queues"' in wrong.text  # the next try still goes there
    forged = client.post("/login", data={"token": MANAGE_TOKEN, "csrf": "x"})
    assert forged.status_code == 403
    assert client.get("/jobs").status_code == 401


def test_login_then_logout(client: TestClient) -> None:
    csrf = login(client, VIEW_TOKEN)
    assert client.get("/queues").status_code == 200
    response = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/queues").status_code == 401


def test_login_does_not_redirect_off_site(client: TestClient) -> None:
    csrf = csrf_of(client.get("/").text)
    response = client.post(
        "/login",
        data={"token": VIEW_TOKEN, "csrf": csrf, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


@pytest.mark.parametrize("path", PAGES)
def test_every_page_renders(manager: TestClient, app: conveyor.App, path: str) -> None:
    app.enqueue("hello")
    response = manager.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_markup_in_logs_args_and_errors_is_shown_as_text(
    manager: TestClient, app: conveyor.App
) -> None:
    job = app.enqueue("evil", {"note": EVIL}, metadata={"who": EVIL})
    app.testing.drain()
    for path in (f"/jobs/{job.id}", "/jobs", f"/jobs?q={job.id}"):
        html = manager.get(path).text
        assert "<script>alert" not in html
        if path.startswith("/jobs/"):
            assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;" in html
    # the only script tags are the shipped ones
    scripts = re.findall(r"<script[^>]*>", manager.get(f"/jobs/{job.id}").text)
    assert scripts == ['<script src="/static/theme.js">', '<script src="/static/app.js" defer>']


def test_job_names_and_errors_are_escaped(manager: TestClient, app: conveyor.App) -> None:
    app.declare("<img src=x onerror=alert(1)>")
    job = app.enqueue("<img src=x onerror=alert(1)>")
    for path in ("/jobs", f"/jobs/{job.id}"):
        html = manager.get(path).text
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_job_page_shows_its_key_and_rate_limits(viewer: TestClient, app: conveyor.App) -> None:
    app.declare("limited")
    job = app.enqueue(
        "limited", {"t": "<b>"}, concurrency_key="k:{t}", key_concurrency=2,
        rate_limit="3/m", rate_key="r:{t}",
    )  # fmt: skip
    html = viewer.get(f"/jobs/{job.id}").text
    assert 'k:&lt;b&gt; <span class="muted">(2 at once)</span>' in html
    assert '3/m <span class="muted">per r:&lt;b&gt;</span>' in html
    plain = viewer.get(f"/jobs/{app.enqueue('limited').id}").text
    assert "data-key-limit" not in plain and "data-rate-limit" not in plain


def test_job_detail_shows_attempts_with_tracebacks(manager: TestClient, app: conveyor.App) -> None:
    job = app.enqueue("boom")
    app.testing.drain()
    html = manager.get(f"/jobs/{job.id}").text
    assert "boom: the disk is full" in html and "Traceback" in html
    assert 'data-action="retry"' in html


def test_view_only_users_see_no_action_buttons(
    viewer: TestClient, manager: TestClient, app: conveyor.App
) -> None:
    failed = app.enqueue("boom")
    app.testing.drain()
    pending = app.enqueue("hello")
    pages = ["/jobs", f"/jobs/{failed.id}", f"/jobs/{pending.id}", "/recurring", "/queues"]
    for path in pages:
        html = viewer.get(path).text
        assert "data-action=" not in html, path
        assert 'method="post"' not in html, path
    assert all("data-action=" in manager.get(path).text for path in pages)


def test_page_actions_need_the_csrf_token(client: TestClient, app: conveyor.App) -> None:
    csrf = login(client, MANAGE_TOKEN)
    job = app.enqueue("hello")
    refused = client.post(f"/jobs/{job.id}/cancel", data={"next": "/jobs"})
    assert refused.status_code == 403 and "CSRF" in refused.text
    assert app.jobs.require(job.id).state is JobState.PENDING
    done = client.post(
        f"/jobs/{job.id}/cancel", data={"csrf": csrf, "next": "/jobs"}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"] == "/jobs"
    assert app.jobs.require(job.id).state is JobState.CANCELLED


def test_an_actions_notice_is_flashed_once_and_never_read_from_the_url(
    client: TestClient, app: conveyor.App
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    job = app.enqueue("hello")
    done = client.post(
        f"/jobs/{job.id}/cancel",
        data={"csrf": csrf, "next": f"/jobs/{job.id}?tab=logs"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == f"/jobs/{job.id}?tab=logs"
    cookie = done.headers["set-cookie"].lower()
    assert "conveyor_flash=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    shown = client.get(f"/jobs/{job.id}")
    assert 'role="status" data-flash>Job cancelled.</p>' in shown.text
    assert "conveyor_flash" not in client.cookies  # deleted once shown
    assert "data-flash" not in client.get(f"/jobs/{job.id}").text
    assert "data-flash" not in client.get(f"/jobs/{job.id}?notice=Official+banner").text
    waiting = app.enqueue("hello")
    refused = client.post(f"/jobs/{waiting.id}/retry", data={"csrf": csrf, "next": "/jobs"})
    assert 'class="notice failed" role="alert" data-flash>' in refused.text
    assert "only failed or cancelled" in refused.text


def test_a_cancellation_notice_shows_only_while_the_job_runs(
    client: TestClient, app: conveyor.App
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    job = app.enqueue("hello")
    claimed = claim_one(app.backend, app.clock())  # a worker elsewhere runs it
    assert claimed.id == job.id
    form = {"csrf": csrf, "next": f"/jobs/{job.id}"}
    shown = client.post(f"/jobs/{job.id}/cancel", data=form)
    assert "Cancellation requested" in shown.text  # it still runs
    client.post(f"/jobs/{job.id}/cancel", data=form, follow_redirects=False)
    finish(app.backend, claimed, JobState.CANCELLED, app.clock())  # it stopped meanwhile
    page = client.get(f"/jobs/{job.id}")
    assert "cancelled" in page.text and "Cancellation requested" not in page.text
    assert "<dt>Cancel</dt>" not in page.text


def test_a_flash_cookie_shows_only_for_its_own_session(client: TestClient, web: FastAPI) -> None:
    csrf = login(client, MANAGE_TOKEN)
    client.post("/queues/default/pause", data={"csrf": csrf, "next": "/queues"},
                follow_redirects=False)  # fmt: skip
    flash = client.cookies["conveyor_flash"]
    with TestClient(web, base_url="http://localhost") as other:
        login(other, VIEW_TOKEN)
        other.cookies.set("conveyor_flash", flash)
        assert "data-flash" not in other.get("/queues").text  # another session's notice
    assert "Queue default paused" in client.get("/queues").text
    session = Signer("test-secret").load(client.cookies["conveyor_session"])
    assert session is not None
    client.cookies.set("conveyor_flash", Signer("guess").dump_flash(session, Flash("forged")))
    assert "data-flash" not in client.get("/queues").text  # signed with another key
    client.cookies.set("conveyor_flash", Signer("test-secret").dump_flash(session, Flash("ok")))
    assert "data-flash>ok</p>" in client.get("/queues").text


def test_a_live_refresh_leaves_the_flash_to_the_page_a_person_opens(client: TestClient) -> None:
    csrf = login(client, MANAGE_TOKEN)
    client.post("/queues/default/pause", data={"csrf": csrf, "next": "/queues"},
                follow_redirects=False)  # fmt: skip
    polled = client.get("/queues", headers={"X-Conveyor-Live": "1"})
    assert polled.status_code == 200 and 'data-live-region="queues"' in polled.text
    assert "data-flash" not in polled.text and "set-cookie" not in polled.headers
    assert "Queue default paused" in client.get("/queues").text


@pytest.mark.parametrize(
    ("path", "regions"),
    [
        ("/", ["counts", "overview-queues", "overview-workers"]),
        ("/jobs", ["jobs-found", "jobs"]),
        ("/queues", ["queues"]),
        ("/workers", ["workers"]),
        ("/recurring", ["recurring"]),
    ],
)
def test_list_pages_mark_what_refreshes_live(
    viewer: TestClient, path: str, regions: list[str]
) -> None:
    html = viewer.get(path).text
    assert [r for r in regions if f'data-live-region="{r}"' not in html] == []
    assert "data-live-toggle" in html


def test_page_actions_refuse_view_only_sessions(client: TestClient, app: conveyor.App) -> None:
    csrf = login(client, VIEW_TOKEN)
    job = app.enqueue("hello")
    response = client.post(f"/jobs/{job.id}/cancel", data={"csrf": csrf})
    assert response.status_code == 403
    assert app.jobs.require(job.id).state is JobState.PENDING


def test_every_page_action(client: TestClient, app: conveyor.App) -> None:
    csrf = login(client, MANAGE_TOKEN)

    def post(path: str, **fields: str) -> str:
        response = client.post(path, data={"csrf": csrf, "next": "/jobs", **fields})
        assert response.status_code == 200, response.text
        return response.text

    failed = app.enqueue("boom")
    app.testing.drain()
    assert "queued to run again" in post(f"/jobs/{failed.id}/retry")
    assert "Job cancelled" in post(f"/jobs/{failed.id}/cancel")
    assert "Job deleted" in post(f"/jobs/{failed.id}/delete")
    assert "only failed or cancelled" in post(f"/jobs/{app.enqueue('hello').id}/retry")
    assert "1 of 1 jobs cancelled" in post("/jobs/bulk/cancel", name="hello", scope="matching")
    assert "1 of 1 jobs retried" in post("/jobs/bulk/retry", state="cancelled", scope="matching")
    assert "nightly-report disabled" in post("/recurring/nightly-report/toggle")
    assert "Enqueued job" in post("/recurring/nightly-report/run")
    assert "Recurring job deleted" in post("/recurring/nightly-report/delete")
    assert "no recurring job" in post("/recurring/nightly-report/delete")
    assert "Queue default paused" in post("/queues/default/pause")
    assert any(q.paused for q in app.jobs.queues())
    assert "Queue default resumed" in post("/queues/default/resume")
    later = app.enqueue("hello", delay=3600).id
    assert 'data-action="run now"' in client.get(f"/jobs/{later}").text
    assert "Job made due now" in post(f"/jobs/{later}/run-now")
    assert "only scheduled jobs" in post(f"/jobs/{later}/run-now")


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs?page=abc", 422),
        ("/jobs?page=0", 422),
        ("/jobs?state=exploded", 422),
        ("/jobs/not-an-id", 404),
        ("/jobs/01a20a4f-0000-7000-8000-000000000000", 404),
    ],
)
def test_bad_page_input(viewer: TestClient, path: str, status: int) -> None:
    response = viewer.get(path)
    assert response.status_code == status
    assert 'class="error"' in response.text


@pytest.mark.parametrize(
    ("path", "title", "words", "back"),
    [
        ("/nowhere", "Page not found", "no dashboard page at /nowhere", "/"),
        ("/jobs/nowhere/at/all", "Page not found", "no dashboard page at", "/"),
        ("/jobs/not-an-id", "Job not found", "not a job id", "/jobs"),
        ("/jobs/01a20a4f-0000-7000-8000-000000000000", "Job not found", "no job has id", "/jobs"),
        ("/jobs?page=abc", "Cannot show this page", "whole number", "/jobs"),
        ("/jobs/bulk/retry", "Not a page", "where a page's button sends its form", "/"),
    ],
)
def test_page_errors_are_dashboard_pages(
    viewer: TestClient, path: str, title: str, words: str, back: str
) -> None:
    response = viewer.get(path)
    assert response.status_code in (404, 405, 422)
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert f"<title>{title} · Conveyor</title>" in html and f"<h1>{title}</h1>" in html
    assert words in html.replace("&#39;", "'")
    assert f'href="{back}" data-back' in html
    assert 'aria-current="page"' in html or back == "/"  # the dashboard's own frame and nav


def test_page_errors_escape_the_path_and_reach_signed_out_callers(client: TestClient) -> None:
    response = client.get("/<b>x</b>")
    assert response.status_code == 404 and "<b>x</b>" not in response.text
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text and "Page not found" in response.text


def test_the_api_and_static_files_keep_their_own_errors(viewer: TestClient) -> None:
    api = viewer.get("/api/nowhere")
    assert api.status_code == 404 and api.json() == {"error": "Not Found"}
    wrong = viewer.get("/api/jobs/bulk/retry")
    assert wrong.status_code in (405, 422) and "error" in wrong.json()
    asset = viewer.get("/static/nowhere.js")
    assert asset.status_code == 404 and asset.headers["content-type"].startswith("text/plain")


def test_no_page_title_repeats_the_brand(manager: TestClient, app: conveyor.App) -> None:
    job = app.enqueue("hello")
    for path in [*PAGES, f"/jobs/{job.id}", "/login"]:
        html = manager.get(path).text
        title = html.split("<title>")[1].split("</title>")[0]
        assert title.count("Conveyor") == 1, (path, title)


def test_jobs_page_filters_and_pages(viewer: TestClient, app: conveyor.App) -> None:
    for i in range(55):
        app.enqueue("hello", {"who": str(i)})
    app.enqueue("slow")
    first = viewer.get("/jobs?name=hello").text
    assert "page 1 of 2" in first and "Older" in first and "slow" not in first.split("<tbody>")[1]
    second = viewer.get("/jobs?name=hello&page=2").text
    assert "page 2 of 2" in second and second.count('href="/jobs/0') == 5
    assert "56 found" in viewer.get("/jobs?state=pending").text


def test_cancel_all_without_a_filter_asks_with_the_count(
    manager: TestClient, app: conveyor.App
) -> None:
    done = app.enqueue("hello")
    app.testing.drain()
    assert app.jobs.require(done.id).state is JobState.COMPLETED
    app.enqueue("hello", delay=3600)
    for _ in range(2):
        app.enqueue("hello")  # three active: one scheduled, two pending
    html = manager.get("/jobs").text
    assert 'data-confirm="No filter is set: cancel all 3 active jobs' in html
    filtered = manager.get("/jobs?name=hello").text
    assert 'data-confirm="Cancel every active job matching this filter?"' in filtered


def test_cancel_all_past_the_cap_says_how_many_it_cancels(crowded: conveyor.App) -> None:
    web = create_app(crowded, tokens=TOKENS)
    headers = {"Authorization": f"Bearer {MANAGE_TOKEN}"}
    with TestClient(web, base_url="http://localhost", headers=headers) as manager:
        html = manager.get("/jobs").text
    assert "cancel 10,000 of the more than 10,000 active jobs" in html


def test_static_assets_are_shipped(client: TestClient) -> None:
    for asset in ("app.js", "app.css", "theme.js", "favicon.svg"):
        response = client.get(f"/static/{asset}")
        assert response.status_code == 200 and len(response.content) > 300, asset
    assert client.get("/static/favicon.svg").headers["content-type"].startswith("image/svg+xml")


def test_jobs_page_shows_a_capped_total(crowded: conveyor.App) -> None:
    web = create_app(crowded, tokens=TOKENS)
    with TestClient(
        web, base_url="http://localhost", headers={"Authorization": f"Bearer {VIEW_TOKEN}"}
    ) as viewer:
        overview = viewer.get("/").text
        first = viewer.get("/jobs").text
        pending = viewer.get("/jobs?state=pending").text
        later = viewer.get("/jobs?page=201").text
        slow = viewer.get("/jobs?q=slow").text
        searched = viewer.get("/jobs?q=hello").text
    # past the cap, a list by state (the overview's links) shows the overview's own number
    assert '<strong data-count="pending">10,002</strong>' in overview
    assert "10,002 found" in first and "page 1 of 201<" in first and "Older" in first
    assert "10,002 found" in pending and "data-page-last>Last »" in pending
    assert "page 201 of 201<" in later and later.count('href="/jobs/0') == 2
    assert "Older" not in later  # the last job: a page that is not full ends the list
    assert "1 found" in slow and "page 1 of 1<" in slow
    # any other filter past the cap: the store's estimate, or what it counted
    about = re.search(r"(about|more than) ([\d,]+) found", searched)
    assert about is not None, searched
    assert int(about.group(2).replace(",", "")) >= 10_000


def test_the_queue_page_shows_and_edits_the_stored_settings(
    client: TestClient, app: conveyor.App
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    page = client.get("/queues/reports")
    assert page.status_code == 200 and "<h1>Queue reports</h1>" in page.text
    assert 'data-setting="concurrency"><td>Concurrency' in page.text
    assert 'name="concurrency" inputmode="numeric" value="2"' in page.text
    assert 'href="/queues/reports"' in client.get("/queues").text

    def save(**fields: str) -> str:
        data = {"csrf": csrf, "next": "/queues/reports", **fields}
        response = client.post("/queues/reports/settings", data=data)
        assert response.status_code == 200, response.text
        return response.text.replace("&#39;", "'")

    saved = save(concurrency="2", max_size="500", when_full="refuse")
    assert "Queue reports: max size 500, when full refuse." in saved
    [stored] = [q for q in app.jobs.queues() if q.name == "reports"]
    assert (stored.concurrency, stored.max_size, stored.when_full) == (2, 500, "refuse")
    assert stored.operator_set == ("max_size", "when_full")  # concurrency was left as it was
    assert "nothing changed" in save(concurrency="2", max_size="500", when_full="refuse")
    assert "max size must be a whole number" in save(max_size="lots", when_full="refuse")
    assert "concurrency must be from 1" in save(concurrency="0", max_size="500")
    lifted = save(concurrency="", max_size="500", when_full="refuse")
    assert "Queue reports: concurrency None." in lifted
    rated = save(max_size="500", when_full="refuse", rate_limit="100/m")
    assert "Queue reports: rate limit 100/m." in rated
    assert 'data-setting="rate_limit"><td>Rate limit' in rated and "<td>100/m</td>" in rated
    assert "<td data-rate>100/m</td>" in client.get("/queues").text
    assert "rate_limit must be a rate like" in save(max_size="500", rate_limit="lots")
    reset = client.post(
        "/queues/reports/settings/reset", data={"csrf": csrf, "next": "/queues/reports"}
    )
    assert "settings handed back to code" in reset.text
    [back] = [q for q in app.jobs.queues() if q.name == "reports"]
    assert (back.concurrency, back.max_size, back.operator_set) == (2, None, ())


def test_queue_settings_forms_need_csrf_and_manage(client: TestClient, app: conveyor.App) -> None:
    csrf = login(client, VIEW_TOKEN)
    page = client.get("/queues/reports")
    assert page.status_code == 200 and "data-settings-form" not in page.text
    refused = client.post("/queues/reports/settings", data={"csrf": csrf, "concurrency": "1"})
    assert refused.status_code == 403
    login(client, MANAGE_TOKEN)
    forged = client.post("/queues/reports/settings", data={"csrf": "0" * 64, "concurrency": "1"})
    assert forged.status_code == 403 and "CSRF" in forged.text
    assert next(q for q in app.jobs.queues() if q.name == "reports").concurrency == 2
    missing = client.get("/queues/never-seen")
    assert missing.status_code == 404 and "Queue not found" in missing.text


def test_the_queue_and_workers_pages_show_limits_and_what_they_hold_back(
    client: TestClient, app: conveyor.App
) -> None:
    from datetime import timedelta

    from conveyor.backends.records import ClaimRequest

    login(client, VIEW_TOKEN)
    app.jobs.set_queue_settings("reports", {"rate_limit": "1/h"})
    for _ in range(3):
        app.enqueue("hello", queue="reports")
    for _ in range(2):
        app.enqueue("hello", concurrency_key="tenant:1")
    now = app.clock()
    app.backend.claim(ClaimRequest("w", 10, now, now + timedelta(seconds=60)))
    page = client.get("/queues/reports").text
    assert "1 running of 2" in page and "2 waiting for the rate" in page
    assert "<td>1/h</td>" in page
    listing = client.get("/queues").text
    assert "<td data-held>0 / 2</td>" in listing and "<td data-held>1 / 0</td>" in listing
    workers = client.get("/workers").text
    assert "Fleet-wide limits" in workers and 'data-queue="reports"' in workers
    assert 'data-queue="default"' in workers  # a key's limit holds one of its jobs back
