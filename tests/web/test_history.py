"""History in the REST API and on the overview and queue pages (rendered, escaped, guarded)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape

import conveyor

from .support import MANAGE_TOKEN, VIEW_TOKEN
from .test_pages import login

ODD_QUEUE = "<img src=x onerror=alert(1)>&\"'"


def finish_some(app: conveyor.App) -> None:
    """Two completed jobs (one in `reports`), one failed, through the worker's step."""
    app.enqueue("hello")
    app.enqueue("boom")
    app.enqueue("hello", queue="reports")
    app.testing.drain()


@pytest.mark.parametrize(
    ("span", "points", "step"), [("1h", 60, 60), ("24h", 96, 900), ("7d", 168, 3600)]
)
def test_the_api_gives_every_step_of_the_range(
    viewer: TestClient, app: conveyor.App, span: str, points: int, step: int
) -> None:
    finish_some(app)

    body = viewer.get(f"/api/stats/history?range={span}").json()

    assert (body["range"], body["step_seconds"], body["queue"]) == (span, step, None)
    assert len(body["points"]) == points
    assert sum(p["completed"] for p in body["points"]) == 2
    assert sum(p["failed"] for p in body["points"]) == 1
    last = body["points"][-1]
    assert last["completed"] == 2 and last["run_p95"] in body["run_bounds"]
    assert sum(last["run_buckets"]) == 3 and last["wait_mean"] is not None


def test_the_api_gives_one_queue(viewer: TestClient, app: conveyor.App) -> None:
    finish_some(app)

    body = viewer.get("/api/stats/history", params={"queue": "reports"}).json()

    assert body["queue"] == "reports" and body["range"] == "1h"
    assert [sum(p[k] for p in body["points"]) for k in ("completed", "failed")] == [1, 0]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"range": "2h"}, "use one of 1h, 24h, 7d"),
        ({"range": ""}, "use one of"),
        ({"queue": "a/b"}, "not a valid queue name"),
        ({"queue": ""}, "not a valid queue name"),
        ({"queue": "x" * 201}, "at most 200 characters"),
    ],
)
def test_the_api_refuses_bad_parameters(
    viewer: TestClient, query: dict[str, str], words: str
) -> None:
    response = viewer.get("/api/stats/history", params=query)
    assert response.status_code == 422 and words in response.json()["error"]


def test_the_api_needs_the_view_permission(client: TestClient) -> None:
    assert client.get("/api/stats/history").status_code == 401


def test_the_overview_draws_the_range_asked_for(client: TestClient, app: conveyor.App) -> None:
    finish_some(app)
    login(client, VIEW_TOKEN)

    hour = client.get("/").text
    day = client.get("/?range=24h").text

    assert 'data-history="1h"' in hour and 'data-history="24h"' in day
    assert re.search(r'data-range="24h" class="on" aria-current="page"', day)
    assert hour.count('<rect class="col"') == 2  # a completed bar and a failed bar
    assert '<span data-total="completed">2 completed</span>' in day
    assert "1 failed (33.3%)" in day
    assert 'data-line="run"' in day and 'data-line="wait"' in day


def test_a_bad_range_is_an_error_page(client: TestClient) -> None:
    login(client, VIEW_TOKEN)

    page = client.get("/?range=<b>")

    assert page.status_code == 422 and "use one of 1h, 24h, 7d" in page.text
    assert "<b>" not in page.text.split("<main", 1)[1]


def test_the_queue_page_shows_its_own_history_escaped(
    client: TestClient, app: conveyor.App
) -> None:
    finish_some(app)
    app.enqueue("hello", queue=ODD_QUEUE)
    app.testing.drain()
    login(client, MANAGE_TOKEN)

    reports = client.get("/queues/reports?range=7d").text
    odd = client.get("/queues/" + ODD_QUEUE.replace("&", "%26").replace("'", "%27")).text

    assert 'data-history="7d"' in reports
    assert '<span data-total="completed">1 completed</span>' in reports
    assert "0 failed" in reports
    assert ODD_QUEUE not in odd and str(escape(ODD_QUEUE)) in odd
    assert '<span data-total="completed">1 completed</span>' in odd


def test_the_pages_need_the_view_permission(client: TestClient) -> None:
    page = client.get("/?range=24h")
    assert 'data-live-region="history"' not in page.text and "token" in page.text
