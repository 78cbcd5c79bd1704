"""The dashboard's "Enqueue a job" form: a job by name, its arguments as JSON, and the options
the REST API takes, checked by the same schema (`EnqueueIn`) and the same validator."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from pydantic import ValidationError

from conveyor.web.dashboard import Dashboard
from conveyor.web.errors import Refused
from conveyor.web.page_routes import Back, PageRoutes, field
from conveyor.web.schemas import EnqueueIn

JOBS: Back = ("/jobs", "Back to jobs")
_OPTIONS = ("queue", "priority", "delay")


def enqueue_pages(routes: PageRoutes) -> None:
    """GET /jobs/new (the form, for viewers who may manage) and its POST."""
    routes.view("/jobs/new", _form, "new_job.html", back=JOBS)
    routes.action("/jobs/new", _enqueue)


def _form(dash: Dashboard, request: Request) -> dict[str, Any]:
    chosen = request.query_params.get("name", "")[:200]
    return {"title": "Enqueue a job", "names": dash.app.job_names, "chosen": chosen}


def _enqueue(dash: Dashboard, request: Request, form: Any) -> str:
    body = _body(form)
    options: dict[str, Any] = {
        key: getattr(body, key) for key in _OPTIONS if getattr(body, key) is not None
    }
    handle = dash.app.enqueue(body.name, body.args, **options)
    if not handle.created:
        return f"Job {handle.id} was already waiting with the same unique key: nothing new."
    return f"Job {body.name} enqueued: {handle.id}."


def _body(form: Any) -> EnqueueIn:
    """The form's fields as the API's request body; a 422 refusal saying what is wrong."""
    text = (field(form, "args") or "").strip() or "{}"
    try:
        args = json.loads(text)
    except ValueError as exc:
        raise Refused(
            422, f"the arguments are not JSON ({exc}): write an object, e.g. {{}}"
        ) from None
    values: dict[str, Any] = {"name": (field(form, "name") or "").strip(), "args": args}
    for key in _OPTIONS:
        raw = (field(form, key) or "").strip()
        if raw:
            values[key] = raw
    try:
        return EnqueueIn.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'form'}: {error['msg']}"
            for error in exc.errors()
        )
        raise Refused(422, f"cannot enqueue: {problems}") from None
