"""The REST API: every route, each permission, bad input, CSRF."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.routing import Mount

import conveyor
from conveyor import JobState
from conveyor.backends.records import LIST_COUNT_CAP
from conveyor.errors import ConfigurationError
from conveyor.web import create_app, parse_token_option

from .support import EVIL, MANAGE_TOKEN, TOKENS, VIEW_TOKEN, build_app

UNKNOWN_ID = "01a20a4f-0000-7000-8000-000000000000"

# (method, path, json body) of every route; {id} is a pending job, {name} a recurring job
VIEW_ROUTES = [
    ("GET", "/api/jobs", None),
    ("GET", "/api/jobs/{id}", None),
    ("GET", "/api/recurring", None),
    ("GET", "/api/queues", None),
    ("GET", "/api/queues/reports", None),
    ("GET", "/api/workers", None),
    ("GET", "/api/stats", None),
    ("GET", "/api/stats/runtimes", None),
]
MANAGE_ROUTES = [
    ("POST", "/api/jobs", {"name": "hello"}),
    ("POST", "/api/jobs/{id}/cancel", None),
    ("POST", "/api/jobs/{id}/retry", None),
    ("POST", "/api/jobs/{id}/run-now", None),
    ("DELETE", "/api/jobs/{id}", None),
    ("POST", "/api/jobs/bulk/retry", {}),
    ("POST", "/api/jobs/bulk/cancel", {"state": "pending"}),
    ("POST", "/api/jobs/bulk/delete", {"ids": [UNKNOWN_ID]}),
    ("POST", "/api/jobs/bulk/run-now", {"state": "scheduled"}),
    ("POST", "/api/recurring/{name}/toggle", None),
    ("POST", "/api/recurring/{name}/run", None),
    ("DELETE", "/api/recurring/{name}", None),
    ("POST", "/api/queues/default/pause", None),
    ("POST", "/api/queues/default/resume", None),
    ("PATCH", "/api/queues/reports/settings", {"concurrency": 1}),
    ("POST", "/api/queues/reports/settings/reset", None),
]


def call(client: TestClient, method: str, path: str, body: Any, **extra: Any) -> Any:
    return client.request(method, path, json=body, **extra)


def fill(path: str, job_id: str) -> str:
    return path.replace("{id}", job_id).replace("{name}", "nightly-report")


@pytest.mark.parametrize(("method", "path", "body"), VIEW_ROUTES + MANAGE_ROUTES)
def test_no_credential_is_401_json(
    client: TestClient, app: conveyor.App, method: str, path: str, body: Any
) -> None:
    job = app.enqueue("hello")
    response = call(client, method, fill(path, job.id), body)
    assert response.status_code == 401
    assert "authentication required" in response.json()["error"]
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), VIEW_ROUTES + MANAGE_ROUTES)
def test_a_wrong_token_is_401(
    client: TestClient, app: conveyor.App, method: str, path: str, body: Any
) -> None:
    job = app.enqueue("hello")
    headers = {"Authorization": "Bearer not-a-token"}
    assert call(client, method, fill(path, job.id), body, headers=headers).status_code == 401


@pytest.mark.parametrize(("method", "path", "body"), VIEW_ROUTES)
def test_view_may_read_everything(
    viewer: TestClient, app: conveyor.App, method: str, path: str, body: Any
) -> None:
    job = app.enqueue("hello")
    response = call(viewer, method, fill(path, job.id), body)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(("method", "path", "body"), MANAGE_ROUTES)
def test_view_may_change_nothing(
    viewer: TestClient, app: conveyor.App, method: str, path: str, body: Any
) -> None:
    job = app.enqueue("hello")
    response = call(viewer, method, fill(path, job.id), body)
    assert response.status_code == 403
    assert "manage" in response.json()["error"]
    assert app.jobs.require(job.id).state is JobState.PENDING
    assert app.recurring_jobs.get("nightly-report").enabled


def test_list_jobs_newest_first_with_filters_and_paging(
    manager: TestClient, app: conveyor.App
) -> None:
    ids = [app.enqueue("hello", {"who": str(i)}).id for i in range(5)]
    app.enqueue("slow")
    page = manager.get("/api/jobs", params={"name": "hello", "per_page": 2}).json()
    assert page["total"] == 5 and page["pages"] == 3 and page["per_page"] == 2
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    last = manager.get("/api/jobs", params={"name": "hello", "per_page": 2, "page": 3}).json()
    assert [j["id"] for j in last["jobs"]] == [ids[0]]
    by_queue = manager.get("/api/jobs", params={"queue": "reports"}).json()
    assert [j["name"] for j in by_queue["jobs"]] == ["slow"]
    by_text = manager.get("/api/jobs", params={"q": ids[3][-12:]}).json()
    assert [j["id"] for j in by_text["jobs"]] == [ids[3]]
    several = manager.get("/api/jobs", params={"state": "failed,pending"}).json()
    assert several["total"] == 6
    assert manager.get("/api/jobs", params={"state": "completed"}).json()["total"] == 0


def test_lists_cut_large_args_and_errors_but_detail_has_everything(
    manager: TestClient, app: conveyor.App
) -> None:
    job = app.enqueue("hello", {"who": "x" * 5000})
    [summary] = manager.get("/api/jobs").json()["jobs"]
    assert len(summary["args_preview"]) <= 200 and summary["args_preview"].endswith("…")
    assert "args" not in summary and "logs" not in summary
    detail = manager.get(f"/api/jobs/{job.id}").json()
    assert detail["args"] == {"who": "x" * 5000}


def test_job_detail_has_logs_attempts_tracebacks_and_timings(
    manager: TestClient, app: conveyor.App
) -> None:
    done = app.enqueue("hello", {"who": "ada"})
    failed = app.enqueue("boom")
    app.testing.drain()
    detail = manager.get(f"/api/jobs/{done.id}").json()
    assert detail["state"] == "completed" and detail["result"] == "hello ada"
    assert [line["message"] for line in detail["logs"]] == ["hello ada"]
    assert detail["duration_seconds"] is not None and detail["duration_seconds"] >= 0
    broken = manager.get(f"/api/jobs/{failed.id}").json()
    assert broken["state"] == "failed"
    [error] = broken["errors"]
    assert "disk is full" in error["message"] and "RuntimeError" in error["traceback"]
    [row] = manager.get("/api/jobs", params={"state": "failed"}).json()["jobs"]
    assert "disk is full" in row["last_error"]


def test_arguments_that_do_not_fit_the_job_are_422_naming_the_parameter(
    manager: TestClient, app: conveyor.App
) -> None:
    for args, words in [
        ({"who": 5}, "job 'hello': argument 'who' expects str, got int 5"),
        ({"whom": "x"}, "unknown argument 'whom' (it takes: who); did you mean 'who'?"),
    ]:
        response = manager.post("/api/jobs", json={"name": "hello", "args": args})
        assert response.status_code == 422, response.text
        assert words in response.json()["error"]
    assert sum(app.jobs.counts().by_state.values()) == 0


def test_enqueue_by_name(manager: TestClient, app: conveyor.App) -> None:
    response = manager.post(
        "/api/jobs",
        json={
            "name": "hello",
            "args": {"who": "api"},
            "queue": "reports",
            "priority": 5,
            "delay": 60,
            "unique_key": "k1",
            "metadata": {"by": "test"},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["created"] is True
    job = app.jobs.require(body["job"]["id"])
    assert (job.queue, job.priority, job.state, job.metadata["by"]) == (
        "reports",
        5,
        JobState.SCHEDULED,
        "test",
    )
    again = manager.post("/api/jobs", json={"name": "hello", "unique_key": "k1"}).json()
    assert again["created"] is False and again["job"]["id"] == job.id


NESTED_TOO_DEEP: Any = 1
for _ in range(33):
    NESTED_TOO_DEEP = [NESTED_TOO_DEEP]


def test_enqueue_with_a_concurrency_key(manager: TestClient, app: conveyor.App) -> None:
    body = {"name": "hello", "args": {"who": "ada"}, "concurrency_key": "greet:{who}"}
    response = manager.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    assert app.jobs.require(response.json()["job"]["id"]).concurrency_key == "greet:ada"
    missing = manager.post("/api/jobs", json={**body, "concurrency_key": "greet:{whom}"})
    assert missing.status_code == 422 and "needs the argument" in missing.text


def test_enqueue_with_key_and_rate_limits(manager: TestClient, app: conveyor.App) -> None:
    body = {
        "name": "hello", "args": {"who": "ada"}, "concurrency_key": "greet:{who}",
        "key_concurrency": 3, "rate_limit": "10/s", "rate_key": "r:{who}",
    }  # fmt: skip
    response = manager.post("/api/jobs", json=body)
    assert response.status_code == 201, response.text
    shown = response.json()["job"]
    assert (shown["key_concurrency"], shown["rate_limit"], shown["rate_key"]) == (
        3,
        "10/s",
        "r:ada",
    )
    stored = app.jobs.require(shown["id"])
    assert (stored.key_concurrency, stored.rate_limit, stored.rate_key) == (3, "10/s", "r:ada")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"key_concurrency": 0}, "greater than or equal to 1"),
        ({"key_concurrency": True}, "not true or false"),
        ({"rate_limit": "10/week"}, "rate_limit"),
        ({"rate_key": "r:{whom}"}, "needs the argument"),
        ({"concurrency_key": None}, "limits the jobs of one concurrency_key"),
        ({"rate_limit": None}, "give a rate_limit too"),
    ],
)
def test_enqueue_refuses_bad_key_and_rate_limits(
    manager: TestClient, change: dict[str, Any], words: str
) -> None:
    body = {
        "name": "hello", "args": {"who": "ada"}, "concurrency_key": "greet:{who}",
        "key_concurrency": 2, "rate_limit": "10/s", "rate_key": "r:{who}", **change,
    }  # fmt: skip
    response = manager.post("/api/jobs", json={k: v for k, v in body.items() if v is not None})
    assert response.status_code == 422 and words in response.text, response.text


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "no-such-job"},
        {"name": "hello", "args": [1, 2]},
        {"name": "hello", "priority": "high"},
        {"name": "hello", "delay": -1},
        {"name": "hello", "delay": False},
        {"name": "hello", "priority": True},
        {"name": "hello", "priority": 1.5},
        {"name": "hello", "metadata": {"a": 1}},
        {"name": "hello", "surprise": True},
        "not an object",
        # refused by the one validator the Python API and the CLI use too
        {"name": "hello", "args": {"n": 2**64}},
        {"name": "hello", "args": {"s": "a\u0000"}},
        {"name": "hello", "args": {"deep": NESTED_TOO_DEEP}},
        {"name": "hello", "queue": "a/b"},
        {"name": "hello", "unique_key": "k\u0000"},
    ],
)
def test_bad_enqueue_bodies_are_422_with_a_message(
    manager: TestClient, app: conveyor.App, body: Any
) -> None:
    response = manager.post("/api/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["error"]
    assert app.jobs.counts().by_state.get("pending", 0) == 0


@pytest.mark.parametrize("param", ["q", "name", "queue"])
def test_list_filters_a_store_cannot_hold_are_422(manager: TestClient, param: str) -> None:
    response = manager.get("/api/jobs", params={param: "a\x00"})
    assert response.status_code == 422 and response.json()["error"]


def test_malformed_json_is_422(manager: TestClient) -> None:
    response = manager.post(
        "/api/jobs", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and response.json()["error"]


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "-3"},
        {"page": "two"},
        {"page": "99999999999999999999"},
        {"per_page": "0"},
        {"per_page": "5000"},
        {"state": "exploded"},
        {"state": "pending,nope"},
        {"q": "x" * 500},
    ],
)
def test_bad_filters_are_422(viewer: TestClient, params: dict[str, str]) -> None:
    response = viewer.get("/api/jobs", params=params)
    assert response.status_code == 422
    assert response.json()["error"]


@pytest.mark.parametrize("bad", ["abc", "123", "01a20a4f-0000-7000-8000-00000000000g", "%00"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("POST", "/run-now"), ("DELETE", "")],
)
def test_malformed_ids_are_422(manager: TestClient, bad: str, method: str, suffix: str) -> None:
    response = manager.request(method, f"/api/jobs/{bad}{suffix}")
    assert response.status_code == 422
    assert "job_id" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("POST", "/cancel"), ("POST", "/retry"), ("POST", "/run-now"), ("DELETE", "")],
)
def test_unknown_ids_are_404(manager: TestClient, method: str, suffix: str) -> None:
    response = manager.request(method, f"/api/jobs/{UNKNOWN_ID}{suffix}")
    assert response.status_code == 404
    assert UNKNOWN_ID in response.json()["error"]


def test_cancel_retry_delete(manager: TestClient, app: conveyor.App) -> None:
    job = app.enqueue("hello")
    cancelled = manager.post(f"/api/jobs/{job.id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["job"]["state"] == "cancelled"
    assert manager.post(f"/api/jobs/{job.id}/cancel").status_code == 409
    retried = manager.post(f"/api/jobs/{job.id}/retry")
    assert retried.status_code == 200 and retried.json()["job"]["state"] == "pending"
    conflict = manager.post(f"/api/jobs/{job.id}/retry")
    assert conflict.status_code == 409 and "only failed or cancelled" in conflict.json()["error"]
    assert manager.delete(f"/api/jobs/{job.id}").status_code == 204
    assert manager.get(f"/api/jobs/{job.id}").status_code == 404


def test_run_a_scheduled_job_now(manager: TestClient, app: conveyor.App) -> None:
    later = app.enqueue("hello", delay=3600)
    ran = manager.post(f"/api/jobs/{later.id}/run-now")
    assert ran.status_code == 200 and ran.json()["job"]["state"] == "pending"
    assert app.jobs.require(later.id).run_at <= app.clock()
    again = manager.post(f"/api/jobs/{later.id}/run-now")
    assert again.status_code == 409 and "only scheduled jobs" in again.json()["error"]


def test_bulk_retry_and_cancel(manager: TestClient, app: conveyor.App) -> None:
    failed = [app.enqueue("boom").id for _ in range(3)]
    app.testing.drain()
    waiting = [app.enqueue("hello").id for _ in range(4)]
    other = app.enqueue("slow").id
    retried = manager.post("/api/jobs/bulk/retry", json={"name": "boom"}).json()
    assert retried["matched"] == 3 and retried["changed"] == 3 and not retried["truncated"]
    assert sorted(retried["job_ids"]) == sorted(failed)
    assert all(app.jobs.require(i).state is JobState.PENDING for i in failed)
    cancelled = manager.post("/api/jobs/bulk/cancel", json={"name": "hello"}).json()
    assert cancelled["changed"] == 4
    assert all(app.jobs.require(i).state is JobState.CANCELLED for i in waiting)
    assert app.jobs.require(other).state is JobState.PENDING
    nothing = manager.post("/api/jobs/bulk/retry", json={"state": "pending"}).json()
    assert nothing == {"matched": 0, "changed": 0, "job_ids": [], "truncated": False}
    bad = manager.post("/api/jobs/bulk/cancel", json={"state": "bogus"})
    assert bad.status_code == 422
    assert manager.post("/api/jobs/bulk/cancel", json={"limit": 3}).status_code == 422


def test_recurring_list_toggle_run_delete(manager: TestClient, app: conveyor.App) -> None:
    [item] = manager.get("/api/recurring").json()
    assert item["name"] == "nightly-report" and item["cron"] == "0 3 * * *"
    assert item["enabled"] is True and item["next_fire_at"] and item["schedule"]
    toggled = manager.post("/api/recurring/nightly-report/toggle").json()
    assert toggled["enabled"] is False
    assert not app.recurring_jobs.get("nightly-report").enabled
    run = manager.post("/api/recurring/nightly-report/run")
    assert run.status_code == 201
    job = app.jobs.require(run.json()["job"]["id"])
    assert job.name == "hello" and job.args == {"who": "night"}
    assert manager.delete("/api/recurring/nightly-report").status_code == 204
    assert manager.get("/api/recurring").json() == []
    for method, path in [
        ("POST", "/api/recurring/nope/toggle"),
        ("POST", "/api/recurring/nope/run"),
        ("DELETE", "/api/recurring/nope"),
    ]:
        response = manager.request(method, path)
        assert response.status_code == 404 and "nope" in response.json()["error"]


def test_queues_pause_and_resume(manager: TestClient, app: conveyor.App) -> None:
    app.enqueue("hello")
    queues = {q["name"]: q for q in manager.get("/api/queues").json()}
    assert queues["default"]["waiting"] == 1 and queues["default"]["paused"] is False
    assert queues["reports"]["concurrency"] == 2
    paused = manager.post("/api/queues/default/pause").json()
    assert paused["paused"] is True and paused["waiting"] == 1
    assert next(q for q in app.jobs.queues() if q.name == "default").paused
    assert manager.post("/api/queues/default/resume").json()["paused"] is False
    assert manager.post("/api/queues/never-seen/resume").status_code == 404
    missing = manager.post("/api/queues/never-seen/pause")
    assert missing.status_code == 404 and "no queue is named" in missing.json()["error"]
    assert "never-seen" not in {q.name for q in app.jobs.queues()}
    created = manager.post("/api/queues/never-seen/pause", params={"create": "true"})
    assert created.status_code == 200 and created.json()["paused"] is True


def test_queue_settings_change_for_the_fleet_and_reset(
    manager: TestClient, app: conveyor.App
) -> None:
    shown = manager.get("/api/queues/reports").json()
    assert (shown["concurrency"], shown["max_size"], shown["operator_set"]) == (2, None, [])
    changed = manager.patch("/api/queues/reports/settings", json={"concurrency": 1, "max_size": 50})
    assert changed.status_code == 200
    body = changed.json()
    assert (body["concurrency"], body["max_size"], body["when_full"]) == (1, 50, "wait")
    assert body["operator_set"] == ["concurrency", "max_size"]
    [stored] = [q for q in app.backend.queues(app.clock()) if q.name == "reports"]
    assert (stored.settings.concurrency, stored.settings.max_size) == (1, 50)
    lifted = manager.patch("/api/queues/reports/settings", json={"max_size": None}).json()
    assert (lifted["concurrency"], lifted["max_size"]) == (1, None)
    rated = manager.patch("/api/queues/reports/settings", json={"rate_limit": "100/m"}).json()
    assert rated["rate_limit"] == "100/m" and "rate_limit" in rated["operator_set"]
    [stored] = [q for q in app.backend.queues(app.clock()) if q.name == "reports"]
    assert stored.settings.rate_limit == "100/m"
    reset = manager.post("/api/queues/reports/settings/reset").json()
    assert (reset["concurrency"], reset["max_size"], reset["operator_set"]) == (2, None, [])
    assert reset["rate_limit"] is None


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"concurrency": 0}, "greater than or equal to 1"),
        ({"concurrency": True}, "not true or false"),
        ({"concurrency": 2.5}, "valid integer"),
        ({"max_size": 10**12}, "less than or equal to"),
        ({"when_full": "drop"}, "'wait' or 'refuse'"),
        ({"rate_limit": "10/d"}, "rate_limit"),
        ({"rate_limit": "0/s"}, "rate_limit"),
        ({"rate_limit": 5}, "rate_limit"),
        ({"priority": 1}, "Extra inputs"),
        ({}, "no setting to change"),
        ([1], "valid dictionary"),
    ],
)
def test_queue_settings_refusals_are_422(
    manager: TestClient, app: conveyor.App, body: Any, words: str
) -> None:
    response = manager.patch("/api/queues/reports/settings", json=body)
    assert response.status_code == 422 and words in response.json()["error"]
    assert manager.get("/api/queues/reports").json()["operator_set"] == []


def test_enqueue_into_a_full_queue_is_429_naming_it(manager: TestClient) -> None:
    bounded = manager.patch(
        "/api/queues/reports/settings", json={"max_size": 1, "when_full": "refuse"}
    )
    assert bounded.status_code == 200
    assert manager.post("/api/jobs", json={"name": "slow"}).status_code == 201
    full = manager.post("/api/jobs", json={"name": "slow"})
    assert full.status_code == 429
    assert "queue 'reports' is full" in full.json()["error"]
    assert "max_size=1" in full.json()["error"]


def test_settings_of_an_unknown_queue_are_404_unless_created(manager: TestClient) -> None:
    assert manager.get("/api/queues/never-seen").status_code == 404
    missing = manager.patch("/api/queues/never-seen/settings", json={"concurrency": 1})
    assert missing.status_code == 404 and "no queue is named" in missing.json()["error"]
    assert manager.post("/api/queues/never-seen/settings/reset").status_code == 404
    created = manager.patch(
        "/api/queues/never-seen/settings", params={"create": "true"}, json={"max_size": 3}
    )
    assert created.status_code == 200 and created.json()["max_size"] == 3
    assert manager.get("/api/queues/never-seen").json()["max_size"] == 3


def test_stats_count_by_state_and_queue_with_an_hour_of_minutes(
    manager: TestClient, app: conveyor.App
) -> None:
    app.enqueue("hello")
    app.enqueue("boom")
    app.testing.drain()
    app.enqueue("slow")
    stats = manager.get("/api/stats").json()
    assert stats["by_state"]["completed"] == 1 and stats["by_state"]["failed"] == 1
    assert stats["by_queue"]["reports"]["pending"] == 1
    assert len(stats["throughput"]) == 60
    assert sum(m["completed"] for m in stats["throughput"]) == 1
    assert sum(m["failed"] for m in stats["throughput"]) == 1


def test_workers_empty_without_a_worker(viewer: TestClient) -> None:
    assert viewer.get("/api/workers").json() == []


def test_hashed_tokens_and_the_authorize_hook(app: conveyor.App) -> None:
    digest = hashlib.sha256(b"s3cret").hexdigest()

    def authorize(request: Any) -> set[str]:
        return {"view"} if request.headers.get("x-user") == "alice" else set()

    web = create_app(app, tokens={f"sha256:{digest}": {"manage"}}, authorize=authorize)
    with TestClient(web, base_url="http://localhost") as client:
        assert client.get("/api/stats").status_code == 401
        assert client.get("/api/stats", headers={"X-User": "alice"}).status_code == 200
        refused = client.post("/api/queues/default/pause", headers={"X-User": "alice"})
        assert refused.status_code == 403
        bearer = {"Authorization": "Bearer s3cret"}
        assert client.post("/api/queues/default/pause", headers=bearer).status_code == 200
        raw = {"Authorization": f"Bearer sha256:{digest}"}  # the hash itself is no token
        assert client.get("/api/stats", headers=raw).status_code == 401


def test_an_async_authorize_hook(app: conveyor.App) -> None:
    async def authorize(request: Any) -> set[str]:
        return {"manage"}

    with TestClient(create_app(app, authorize=authorize), base_url="http://localhost") as client:
        assert client.get("/api/jobs").status_code == 200


def test_bad_token_configuration_is_refused(app: conveyor.App) -> None:
    with pytest.raises(ConfigurationError, match="unknown permissions"):
        create_app(app, tokens={"t": {"admin"}})
    assert parse_token_option("abc:view,manage") == ("abc", {"view", "manage"})
    with pytest.raises(ConfigurationError, match="TOKEN:PERMISSION"):
        parse_token_option("abc")


def test_security_headers(viewer: TestClient) -> None:
    headers = viewer.get("/api/stats").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"


def test_openapi_documents_every_route(client: TestClient, viewer: TestClient) -> None:
    assert client.get("/api/openapi.json").status_code == 401  # view permission, as every route
    schema = viewer.get("/api/openapi.json").json()
    paths = schema["paths"]
    for method, path, _ in VIEW_ROUTES + MANAGE_ROUTES:
        templated = path.replace("{id}", "{job_id}").replace("/default/", "/{name}/")
        templated = re.sub(r"/bulk/[a-z-]+$", "/bulk/{action}", templated)
        templated = templated.replace("/queues/reports", "/queues/{name}")
        assert method.lower() in paths[templated], (method, path)
    assert "JobDetail" in schema["components"]["schemas"]


def test_escaped_json_for_markup_in_logs(manager: TestClient, app: conveyor.App) -> None:
    job = app.enqueue("evil")
    app.testing.drain()
    response = manager.get(f"/api/jobs/{job.id}")
    assert response.headers["content-type"] == "application/json"
    assert response.json()["logs"][0]["message"] == EVIL


# cookie sessions and CSRF ---------------------------------------------------------------------
def login(client: TestClient, token: str) -> str:
    """Log in through the page form; returns the CSRF token the pages carry."""
    page = client.get("/")
    csrf = page.text.split('data-csrf="')[1].split('"')[0]
    response = client.post(
        "/login", data={"token": token, "csrf": csrf, "next": "/"}, follow_redirects=False
    )
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    return client.get("/").text.split('data-csrf="')[1].split('"')[0]


def test_a_cookie_session_needs_the_csrf_header_for_changes(
    client: TestClient, app: conveyor.App
) -> None:
    csrf = login(client, MANAGE_TOKEN)
    assert client.get("/api/stats").status_code == 200  # reads need no CSRF token
    refused = client.post("/api/queues/default/pause")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    wrong = client.post("/api/queues/default/pause", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = client.post("/api/queues/default/pause", headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 200


def test_a_view_session_cannot_manage_even_with_csrf(client: TestClient) -> None:
    csrf = login(client, VIEW_TOKEN)
    response = client.post("/api/queues/default/pause", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 403 and "manage" in response.json()["error"]


def test_a_forged_session_cookie_is_ignored(client: TestClient) -> None:
    client.cookies.set("conveyor_session", "eyJzaWQiOiAieCIsICJ0b2siOiAieSJ9.deadbeef")
    assert client.get("/api/stats").status_code == 401


def test_mounted_under_a_prefix(app: conveyor.App) -> None:
    web = create_app(app, tokens=TOKENS, prefix="/admin/jobs")
    headers = {"Authorization": f"Bearer {VIEW_TOKEN}"}
    with TestClient(web, base_url="http://localhost", headers=headers) as client:
        assert client.get("/admin/jobs/api/stats").status_code == 200
        page = client.get("/admin/jobs/")
        assert page.status_code == 200 and 'href="/admin/jobs/static/app.css"' in page.text
        assert client.get("/admin/jobs/static/app.js").status_code == 200
        assert client.get("/api/stats").status_code == 404
    host = Starlette(routes=[Mount("/ops", app=create_app(app, tokens=TOKENS))])
    with TestClient(host, base_url="http://localhost", headers=headers) as client:
        assert client.get("/ops/api/jobs").status_code == 200
        page = client.get("/ops/jobs")
        assert page.status_code == 200 and 'href="/ops/static/app.css"' in page.text


def test_a_dashboard_without_credentials_is_refused_unless_open_mode_is_asked(
    app: conveyor.App,
) -> None:
    with pytest.raises(conveyor.ConfigurationError, match="needs credentials"):
        create_app(app)
    with pytest.raises(conveyor.ConfigurationError, match="open_mode is for a dashboard"):
        create_app(app, tokens=TOKENS, open_mode=True)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "127.0.0.2"])
def test_a_host_header_not_allowed_is_refused_in_every_mode(app: conveyor.App, host: str) -> None:
    for web in (create_app(app, open_mode=True), create_app(app, tokens=TOKENS)):
        with TestClient(web, base_url=f"http://{host}", client=("127.0.0.1", 5)) as client:
            listed = client.get("/api/jobs", headers={"Authorization": f"Bearer {MANAGE_TOKEN}"})
            paused = client.post(
                "/api/queues/default/pause", headers={"Authorization": f"Bearer {MANAGE_TOKEN}"}
            )
            page = client.get("/")
        assert listed.status_code == paused.status_code == page.status_code == 400
        assert "--allowed-host" in listed.json()["error"]
    assert all(not queue.paused for queue in app.jobs.queues())


def test_allowed_hosts_name_the_host_names_answered(app: conveyor.App) -> None:
    web = create_app(app, tokens=TOKENS, allowed_hosts=["jobs.example.com", "*.ops.example"])
    headers = {"Authorization": f"Bearer {VIEW_TOKEN}"}
    for base, status in [
        ("http://jobs.example.com:8443", 200),
        ("http://a.ops.example", 200),
        ("http://ops.example", 400),
        ("http://localhost", 400),  # the default names are replaced, not extended
    ]:
        with TestClient(web, base_url=base, headers=headers) as client:
            assert client.get("/api/stats").status_code == status, base


def test_the_login_link_signs_in_and_leaves_the_address_bar(app: conveyor.App) -> None:
    web = create_app(app, tokens=TOKENS)
    with TestClient(web, base_url="http://localhost", follow_redirects=False) as browser:
        assert browser.get("/api/stats").status_code == 401  # no credential, even locally
        wrong = browser.get("/login", params={"token": "nope"})
        assert wrong.status_code == 401 and "not valid" in wrong.text
        assert browser.get("/login").status_code == 200  # the form, not 405
        signed = browser.get("/login", params={"token": MANAGE_TOKEN})
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        assert "token" not in signed.headers["location"]
        assert browser.get("/jobs").status_code == 200  # the session cookie carries it
        assert browser.get("/login").status_code == 303  # signed in already


def test_open_mode_without_tokens_or_hook(app: conveyor.App) -> None:
    with TestClient(
        create_app(app, open_mode=True), base_url="http://localhost", client=("127.0.0.1", 50000)
    ) as client:
        assert client.get("/api/jobs").status_code == 200
        # a browser form from another site sends no Authorization header: refused
        assert client.post("/api/queues/default/pause").status_code == 403
        scripted = client.post("/api/queues/default/pause", headers={"Authorization": "Bearer x"})
        assert scripted.status_code == 200


def test_open_mode_refuses_every_request_from_another_machine(app: conveyor.App) -> None:
    web = create_app(app, open_mode=True)
    with TestClient(web, base_url="http://localhost", client=("192.0.2.7", 50000)) as remote:
        listed = remote.get("/api/jobs")
        paused = remote.post("/api/queues/default/pause", headers={"Authorization": "Bearer x"})
        page = remote.get("/jobs")
    assert listed.status_code == 401 and "only requests from this machine" in listed.text
    assert paused.status_code == 401
    assert page.status_code == 401 and "only requests from this machine" in page.text
    assert all(not queue.paused for queue in app.jobs.queues())
    with TestClient(web, base_url="http://localhost", client=("::1", 50000)) as local:
        assert local.get("/api/jobs").status_code == 200


def test_list_jobs_caps_the_total_past_the_count_cap(crowded: conveyor.App) -> None:
    web = create_app(crowded, tokens=TOKENS)
    with TestClient(
        web, base_url="http://localhost", headers={"Authorization": f"Bearer {MANAGE_TOKEN}"}
    ) as manager:
        every = manager.get("/api/jobs").json()
        hello = manager.get("/api/jobs", params={"q": "HELL", "per_page": 200}).json()
        past = manager.get("/api/jobs", params={"name": "hello", "page": 201}).json()
        slow = manager.get("/api/jobs", params={"q": "slo"}).json()
    assert (every["total"], every["total_exact"], every["pages"]) == (10_000, False, 200)
    assert every["jobs"][0]["name"] == "slow"
    assert (hello["total"], hello["total_exact"], hello["pages"]) == (10_000, False, 50)
    assert len(hello["jobs"]) == 200 and {j["name"] for j in hello["jobs"]} == {"hello"}
    assert len(past["jobs"]) == 1 and not past["total_exact"]  # pages are never capped
    assert (slow["total"], slow["total_exact"], slow["pages"]) == (1, True, 1)


def test_bulk_action_past_the_count_cap_is_truncated() -> None:
    # on the memory store only: 10,000 cancels take 20 s on PostgreSQL, and every store's
    # capped total (all the bulk action reads) is in the contract tests
    app = build_app(max_queue_size=0)
    app.enqueue_many([app.request("hello") for _ in range(LIST_COUNT_CAP + 1)])
    web = create_app(app, tokens=TOKENS)
    with TestClient(
        web, base_url="http://localhost", headers={"Authorization": f"Bearer {MANAGE_TOKEN}"}
    ) as manager:
        first = manager.post("/api/jobs/bulk/cancel", json={"name": "hello"}).json()
        rest = manager.post("/api/jobs/bulk/cancel", json={"name": "hello"}).json()
    app.close()
    assert (first["matched"], first["changed"], first["truncated"]) == (10_000, 10_000, True)
    assert (rest["matched"], rest["changed"], rest["truncated"]) == (1, 1, False)


def test_list_jobs_finds_text_in_arguments_and_errors_and_filters_by_kind(
    manager: TestClient, app: conveyor.App
) -> None:
    wanted = app.enqueue("hello", {"who": "Ada Lovelace"})
    app.enqueue("hello", {"who": "Bob"})
    failed = app.enqueue("boom")
    app.testing.drain()

    def ids(**params: str) -> list[str]:
        response = manager.get("/api/jobs", params=params)
        assert response.status_code == 200, response.text
        return [job["id"] for job in response.json()["jobs"]]

    assert ids(q="lovelace") == [wanted.id]
    assert ids(error_kind="exception") == [failed.id]  # "exception" is kind "error"
    assert ids(name_contains="OOM", finished_after="1h") == [failed.id]
    assert ids(created_before="2000-01-01T00:00") == []
    assert ids(worker="nobody") == []
    body = {"error_kind": "error"}
    retried = manager.post("/api/jobs/bulk/retry", json=body)
    assert retried.status_code == 200 and retried.json()["job_ids"] == [failed.id]


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"error_kind": "meltdown"}, "unknown error kind 'meltdown'"),
        ({"created_after": "last tuesday"}, "is not a time"),
        ({"finished_after": "1h", "finished_before": "3h"}, "the finished range is empty"),
        ({"name_contains": "a\tb"}, "control character"),
    ],
)
def test_list_jobs_refuses_bad_filter_values_with_422(
    manager: TestClient, params: dict[str, str], words: str
) -> None:
    response = manager.get("/api/jobs", params=params)
    assert response.status_code == 422 and words in response.json()["error"], response.text
    bulk = manager.post("/api/jobs/bulk/cancel", json=params)
    assert bulk.status_code == 422 and words in bulk.json()["error"], bulk.text
