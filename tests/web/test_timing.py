"""Durations and times on the pages: queued -> started -> finished, relative times' markup,
no progress bar for a job that never reported any."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

import conveyor
from contract.support import claim_one, finish
from conveyor import JobState
from conveyor.web.page_routes import duration

from .support import MANAGE_TOKEN


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "—"),
        (-1.0, "0 ms"),
        (0.0123, "12 ms"),
        (3.42, "3.4 s"),
        (42.9, "42 s"),
        (125, "2 min 5 s"),
        (120, "2 min"),
        (3 * 3600 + 600, "3 h 10 min"),
        (2 * 86400 + 4 * 3600 + 59, "2 d 4 h"),
    ],
)
def test_durations_in_words(seconds: float | None, words: str) -> None:
    assert duration(seconds) == words


def ran_for(app: conveyor.App, waited: float, ran: float) -> str:
    """A hello job claimed `waited` seconds after it was due and completed `ran` later."""
    job = app.enqueue("hello").job
    started = job.run_at + timedelta(seconds=waited)
    claimed = claim_one(app.backend, started)
    finish(app.backend, claimed, JobState.COMPLETED, started + timedelta(seconds=ran))
    return job.id


def row_of(html: str, job_id: str) -> str:
    start = html.index(f'<tr data-job="{job_id}"')
    return html[start : html.index("</tr>", start)]


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def test_a_list_row_says_how_long_a_job_waited_and_ran(
    manager: TestClient, app: conveyor.App
) -> None:
    done = ran_for(app, waited=1.5, ran=3.42)
    later = app.enqueue("hello", delay=600).id
    html = manager.get("/jobs").text
    assert "waited 1.5 s · ran 3.4 s" in text_of(row_of(html, done))
    scheduled = row_of(html, later)
    assert "due" in text_of(scheduled) and 'data-when="Due"' in scheduled


def test_a_running_or_waiting_job_has_a_clock_the_page_ticks(
    manager: TestClient, app: conveyor.App
) -> None:
    running = app.enqueue("hello").job
    claim_one(app.backend, running.run_at + timedelta(seconds=2))
    waiting = app.enqueue("hello").id
    html = manager.get("/jobs").text
    row = row_of(html, running.id)
    assert "waited 2.0 s" in text_of(row)
    assert re.search(r'data-since="[^"]+Z" data-since-label="running"', row)
    assert 'data-since-label="waiting"' in row_of(html, waiting)


def test_a_job_page_shows_queued_started_finished_with_durations(
    manager: TestClient, app: conveyor.App
) -> None:
    job_id = ran_for(app, waited=0.25, ran=125)
    html = manager.get(f"/jobs/{job_id}").text
    line = text_of(
        html[html.index("data-timeline") : html.index("</p>", html.index("data-timeline"))]
    )
    assert "waited 250 ms" in line and "ran 2 min 5 s" in line and "completed" in line
    assert "after running 2 min 5 s" in text_of(html)
    for label in ("Queued", "Started", "Finished", "Created", "Due"):
        assert f'data-when="{label}"' in html
    job = app.jobs.require(job_id)
    assert job.started_at is not None
    stamp = job.started_at.strftime("%Y-%m-%dT%H:%M:%S")
    assert re.search(rf'<time datetime="{stamp}\.\d{{3}}Z" data-when="Started">', html)


def test_no_progress_bar_for_a_job_that_never_reported_any(
    manager: TestClient, app: conveyor.App
) -> None:
    silent = ran_for(app, waited=0, ran=1)
    talking = app.enqueue("evil").id  # reports 40 %
    app.testing.drain()
    listing = manager.get("/jobs").text
    assert "<progress" not in row_of(listing, silent) and "data-no-progress" in row_of(
        listing, silent
    )
    assert "<progress" in row_of(listing, talking)
    assert "data-progress-card hidden" in manager.get(f"/jobs/{silent}").text
    assert "data-progress-card>" in manager.get(f"/jobs/{talking}").text


def test_the_overview_shows_p50_and_p95_run_time_per_job_and_queue(
    manager: TestClient, app: conveyor.App
) -> None:
    for seconds in range(1, 21):  # hello jobs ran 1 s to 20 s
        ran_for(app, waited=0, ran=seconds)
    job = app.enqueue("slow").job  # on the reports queue
    claimed = claim_one(app.backend, job.run_at)
    finish(app.backend, claimed, JobState.COMPLETED, job.run_at + timedelta(seconds=300))
    html = manager.get("/").text
    assert "p50 and p95 of the 21 completed jobs" in text_of(html)
    names = html[html.index('data-runtimes="name"') :]
    start = names.index('data-runtime="hello"')
    hello = text_of("<tr " + names[start : names.index("</tr>", start)])
    assert hello == "hello 20 10 s 19 s"  # nearest rank: the 10th and 19th of 20
    queues = html[html.index('data-runtimes="queue"') :]
    assert 'data-runtime="reports"' in queues and "5 min" in queues
    api = manager.get("/api/stats/runtimes").json()
    assert api["sampled"] == 21 and api["complete"] is True
    by_queue = {row["key"]: row for row in api["by_queue"]}
    assert by_queue["default"]["p95_seconds"] == 19.0 and by_queue["reports"]["count"] == 1


def test_workers_show_the_names_of_the_jobs_they_run(
    manager: TestClient, app: conveyor.App
) -> None:
    from contract.support import worker_info

    job = app.enqueue("slow").job
    claimed = claim_one(app.backend, job.run_at)  # by worker w1
    now = app.clock()
    info = worker_info("w1", now)
    app.backend.heartbeat(info, [claimed.id], now + timedelta(seconds=30))
    html = manager.get("/workers").text
    assert f'data-running-job="{job.id}">slow</a>' in html
    assert "slow" in text_of(html[html.index("data-running") :][:400])
    assert '<div class="small" data-running>slow</div>' in manager.get("/").text
    [worker] = manager.get("/api/workers").json()
    assert worker["current_jobs"] == [job.id] and worker["current_job_names"] == ["slow"]


def test_the_api_lists_durations_too(manager: TestClient, app: conveyor.App) -> None:
    job_id = ran_for(app, waited=1.5, ran=3.25)
    waiting = app.enqueue("hello").id
    listed = {j["id"]: j for j in manager.get("/api/jobs").json()["jobs"]}
    assert (listed[job_id]["wait_seconds"], listed[job_id]["duration_seconds"]) == (1.5, 3.25)
    assert listed[waiting]["wait_seconds"] is listed[waiting]["duration_seconds"] is None


def test_a_waiting_workflow_step_says_so_and_a_bulk_cancel_takes_it(
    client: TestClient, app: conveyor.App
) -> None:
    from .test_pages import login

    flow = conveyor.chain(app.request("hello"), app.request("hello"), name="pair")
    handle = app.enqueue_workflow(flow)
    first, second = (step.id for step in handle.steps.values())
    assert app.jobs.require(second).state is JobState.WAITING
    csrf = login(client, MANAGE_TOKEN)
    html = client.get("/jobs").text
    assert "waiting on its parents" in text_of(row_of(html, second))
    assert "waiting on its parents" in text_of(client.get(f"/jobs/{second}").text)
    done = client.post("/jobs/bulk/cancel", data={"csrf": csrf, "ids": [second], "next": "/jobs"})
    assert "1 of 1 selected jobs cancelled." in done.text
    assert app.jobs.require(second).state is JobState.CANCELLED
    assert app.jobs.require(first).state is JobState.PENDING
