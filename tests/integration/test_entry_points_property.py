"""Random options and text at the Python API and the REST API, on every store: each call is
either a clear refusal (InvalidJobOptions / InvalidArguments, HTTP 422) or a stored job that
reads back as given. Never a driver error, a TypeError, or a 500."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

import conveyor
from conveyor import Context
from conveyor.errors import InvalidArguments, InvalidJobOptions
from property_inputs import arguments, options

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def register(app: conveyor.App) -> None:
    if "echo" not in app.job_names:

        @app.job(name="echo")
        def echo(ctx: Context, **args: Any) -> None:
            return None


def check_stored(app: conveyor.App, job_id: str, args: Any, given: dict[str, Any]) -> None:
    job = app.jobs.get(job_id)
    assert job is not None
    assert job.args == args
    for name in ("priority", "max_attempts", "queue", "unique_key"):
        if name in given and given[name] is not None:
            assert getattr(job, name) == given[name], name
    if given.get("metadata"):
        assert given["metadata"].items() <= job.metadata.items()


@SETTINGS
@given(args=arguments, opts=options)
def test_the_python_api_refuses_clearly_or_stores_what_it_was_given(
    app: conveyor.App, args: Any, opts: dict[str, Any]
) -> None:
    register(app)
    try:
        handle = app.enqueue("echo", args, **opts)
    except (InvalidJobOptions, InvalidArguments) as exc:
        refusal = str(exc)
    else:
        check_stored(app, handle.id, {} if args is None else args, opts)  # None: no arguments
        return
    assert refusal  # a message saying what was wrong


def _plain(value: Any) -> bool:
    """Whether the REST API can be sent `value` as standard JSON (no NaN or infinity)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(map(_plain, value))
    if isinstance(value, dict):
        return all(map(_plain, value.values()))
    return True


@SETTINGS
@given(args=arguments, opts=options)
def test_the_rest_api_answers_422_or_stores_what_it_was_given(
    app: conveyor.App, args: Any, opts: dict[str, Any]
) -> None:
    pytest.importorskip("conveyor.web")
    from fastapi.testclient import TestClient

    from conveyor.web import create_app

    register(app)
    body = json.dumps({"name": "echo", "args": args, **opts}, allow_nan=True)
    web = create_app(app, tokens={"t": {"manage"}})
    with TestClient(web, base_url="http://localhost") as client:
        response = client.post(
            "/api/jobs",
            content=body,
            headers={"Authorization": "Bearer t", "Content-Type": "application/json"},
        )
    assert response.status_code in (201, 422), response.text
    assert response.json().get("error") or response.status_code == 201
    if response.status_code == 201:
        sent = json.loads(body)
        stored_args = {} if sent["args"] is None else sent["args"]
        check_stored(app, response.json()["job"]["id"], stored_args, sent)
