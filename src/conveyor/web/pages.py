"""The HTML pages (Jinja2, autoescaped), the login form and the page actions (POST forms)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from conveyor.errors import ConveyorError, NotFound
from conveyor.model.job import JobState
from conveyor.web.auth import (
    CSRF_FIELD,
    MANAGE,
    OPEN_REMOTE_REFUSED,
    SESSION_COOKIE,
    VIEW,
    Identity,
    Session,
    hash_token,
    new_session,
    set_session_cookie,
)
from conveyor.web.dashboard import Dashboard
from conveyor.web.errors import Refused
from conveyor.web.schemas import JOB_ID_PATTERN, StatsOut, preview

PER_PAGE = 50
STATES = [state.value for state in JobState]
_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _percent(value: float) -> str:
    return f"{max(0.0, min(100.0, value)):.0f}"


_templates.filters["when"] = _when
_templates.filters["percent"] = _percent
_templates.filters["preview"] = preview
_templates.filters["pretty"] = _pretty


class _Page:
    """Renders one request's page: identity, session cookie and CSRF token in place."""

    def __init__(self, dash: Dashboard, request: Request, identity: Identity) -> None:
        self.dash = dash
        self.request = request
        self.identity = identity
        self.fresh = identity.session is None
        self.session: Session = identity.session or new_session()

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        base = self.dash.base(self.request)
        html = _templates.get_template(template).render(
            base=base,
            csrf=self.dash.auth.signer.csrf_token(self.session),
            can_manage=self.identity.can(MANAGE),
            can_view=self.identity.can(VIEW),
            logged_in=self.session.token_hash is not None,
            open_access=self.dash.auth.open,
            path=self.request.url.path,
            here=_here(self.request),
            notice=self.request.query_params.get("notice", ""),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        if self.fresh:
            set_session_cookie(response, self.dash.auth.signer, self.session, base or "/")
        return response


def install_pages(api: FastAPI, dash: Dashboard) -> None:
    """Add the pages, the login form and the page actions to `api`."""
    prefix = dash.prefix
    jobs = dash.app.jobs
    recurring = dash.app.recurring_jobs

    async def page(request: Request) -> _Page:
        return _Page(dash, request, await dash.auth.identify(request))

    def login_form(p: _Page, message: str = "", status: int = 401) -> HTMLResponse:
        if dash.auth.open and not message:
            message = OPEN_REMOTE_REFUSED[0].upper() + OPEN_REMOTE_REFUSED[1:] + "."
        return p.render("login.html", status=status, message=message, next=p.request.url.path)

    def view_page(
        build: Callable[[Request], dict[str, Any]], template: str
    ) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            p = await page(request)
            if not p.identity.can(VIEW):
                return login_form(p)
            try:
                values = await run_in_threadpool(build, request)
            except NotFound as exc:
                return p.render("missing.html", status=404, message=str(exc))
            except (Refused, ConveyorError) as exc:
                return p.render("missing.html", status=422, message=str(exc))
            return p.render(template, **values)

        return endpoint

    # views ---------------------------------------------------------------------------------
    def overview(request: Request) -> dict[str, Any]:
        stats = StatsOut.of(jobs.counts(), jobs.throughput(60), dash.app.clock())
        return {
            "title": "Overview",
            "states": STATES,
            "stats": stats,
            "queues": jobs.queues(),
            "workers": jobs.workers(),
            "running": dash.running_by_worker(),
        }

    def job_list(request: Request) -> dict[str, Any]:
        params = request.query_params
        state = params.get("state") or None
        try:
            number = int(params.get("page", "1"))
        except ValueError:
            raise Refused(422, "page must be a whole number") from None
        if not 1 <= number <= 1_000_000:
            raise Refused(422, "page must be between 1 and 1,000,000")
        filters = {k: params.get(k, "")[:200] for k in ("state", "name", "queue", "q")}
        found = jobs.list(
            state=state,
            name=filters["name"] or None,
            queue=filters["queue"] or None,
            search=filters["q"] or None,
            page=number,
            per_page=PER_PAGE,
        )
        pages = max(1, math.ceil(found.total / PER_PAGE))  # of the capped total
        # past a capped total, a full page may have older ones after it
        older = found.page < pages or (not found.total_exact and len(found.jobs) == PER_PAGE)
        kept = {k: v for k, v in filters.items() if v}

        def page_link(n: int) -> str:
            return "?" + urlencode({**kept, "page": n})

        return {
            "title": "Jobs",
            "states": STATES,
            "found": found,
            "filters": filters,
            "pages": pages,
            "older": older,
            "page_link": page_link,
            "names": dash.app.job_names,
            "bulk_retry": state in (None, "failed", "cancelled"),
            "bulk_cancel": state in (None, "scheduled", "pending", "running"),
        }

    def job_detail(request: Request) -> dict[str, Any]:
        job = jobs.require(_job_id(request))
        return {"title": f"Job {job.name}", "job": job, "finished": job.is_finished}

    def recurring_list(request: Request) -> dict[str, Any]:
        items = [(r, recurring.describe(r)) for r in recurring.list()]
        return {"title": "Recurring", "items": items}

    def queue_list(request: Request) -> dict[str, Any]:
        return {"title": "Queues", "queues": jobs.queues()}

    def worker_list(request: Request) -> dict[str, Any]:
        return {
            "title": "Workers",
            "workers": jobs.workers(),
            "running": dash.running_by_worker(),
        }

    views = [
        ("", overview, "overview.html"),
        ("/jobs", job_list, "jobs.html"),
        ("/jobs/{job_id}", job_detail, "job.html"),
        ("/recurring", recurring_list, "recurring.html"),
        ("/queues", queue_list, "queues.html"),
        ("/workers", worker_list, "workers.html"),
    ]
    for path, build, template in views:
        api.add_api_route(
            f"{prefix}{path}" or "/",
            view_page(build, template),
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
        )
    if prefix:
        api.add_api_route(
            f"{prefix}/",
            view_page(overview, "overview.html"),
            methods=["GET"],
            include_in_schema=False,
        )

    # login ---------------------------------------------------------------------------------
    def safe_next(request: Request, target: str | None) -> str:
        base = dash.base(request)
        if target and target.startswith(base + "/") and not target.startswith("//"):
            return target
        return base + "/"

    async def login(request: Request) -> Response:
        p = await page(request)
        form = await request.form()
        if not dash.auth.signer.check_csrf(p.identity.session, _field(form, CSRF_FIELD)):
            return login_form(p, "Your session expired: please try again.", 403)
        token = _field(form, "token") or ""
        if not dash.auth.tokens.permissions_for(token):
            return login_form(p, "That token is not valid.", 401)
        target = safe_next(request, _field(form, "next"))
        response = RedirectResponse(target, status_code=303)
        session = new_session(hash_token(token))  # a new id on login: no session fixation
        set_session_cookie(response, dash.auth.signer, session, dash.base(request) or "/")
        return response

    async def logout(request: Request) -> Response:
        p = await page(request)
        form = await request.form()
        if not dash.auth.signer.check_csrf(p.identity.session, _field(form, CSRF_FIELD)):
            return login_form(p, "Your session expired: please try again.", 403)
        response = RedirectResponse(dash.base(request) + "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=dash.base(request) or "/")
        return response

    api.add_api_route(f"{prefix}/login", login, methods=["POST"], include_in_schema=False)
    api.add_api_route(f"{prefix}/logout", logout, methods=["POST"], include_in_schema=False)

    # actions -------------------------------------------------------------------------------
    def action(run: Callable[[Request, Any], str]) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            p = await page(request)
            if not p.identity.can(VIEW):
                return login_form(p)
            form = await request.form()
            if not dash.auth.signer.check_csrf(p.identity.session, _field(form, CSRF_FIELD)):
                return p.render("missing.html", status=403, message="Missing or wrong CSRF token.")
            if not p.identity.can(MANAGE):
                return p.render("missing.html", status=403, message="You may only view.")
            try:
                notice = await run_in_threadpool(run, request, form)
            except (Refused, ConveyorError) as exc:
                notice = str(exc)
            target = safe_next(request, _field(form, "next"))
            path, _, query = target.partition("?")
            kept = [(k, v) for k, v in parse_qsl(query) if k != "notice"]
            query = urlencode([*kept, ("notice", notice)])
            return RedirectResponse(f"{path}?{query}", status_code=303)

        return endpoint

    def do_cancel(request: Request, form: Any) -> str:
        job = dash.app.jobs.cancel(_job_id(request))
        if job.state is JobState.RUNNING:
            return "Cancellation requested: the job will stop shortly."
        return "Job cancelled."

    def do_retry(request: Request, form: Any) -> str:
        jobs.retry(_job_id(request))
        return "Job queued to run again."

    def do_delete(request: Request, form: Any) -> str:
        jobs.delete(_job_id(request))
        return "Job deleted."

    def do_bulk(kind: str) -> Callable[[Request, Any], str]:
        def run(request: Request, form: Any) -> str:
            result = dash.bulk(
                kind,
                state=_field(form, "state"),
                name=_field(form, "name"),
                queue=_field(form, "queue"),
                search=_field(form, "q"),
            )
            verb = "retried" if kind == "retry" else "cancelled"
            more = " (limit reached: run it again)" if result.truncated else ""
            return f"{len(result.changed)} of {result.matched} jobs {verb}{more}."

        return run

    def do_toggle(request: Request, form: Any) -> str:
        changed = recurring.toggle(request.path_params["name"])
        return f"{changed.name} {'enabled' if changed.enabled else 'disabled'}."

    def do_run(request: Request, form: Any) -> str:
        result = recurring.run_now(request.path_params["name"])
        return f"Enqueued job {result.job.id}."

    def do_remove(request: Request, form: Any) -> str:
        recurring.remove(request.path_params["name"])
        return "Recurring job deleted."

    def do_pause(request: Request, form: Any) -> str:
        jobs.pause_queue(request.path_params["name"])
        return f"Queue {request.path_params['name']} paused."

    def do_resume(request: Request, form: Any) -> str:
        jobs.resume_queue(request.path_params["name"])
        return f"Queue {request.path_params['name']} resumed."

    actions: list[tuple[str, Callable[[Request, Any], str]]] = [
        ("/jobs/bulk/retry", do_bulk("retry")),
        ("/jobs/bulk/cancel", do_bulk("cancel")),
        ("/jobs/{job_id}/cancel", do_cancel),
        ("/jobs/{job_id}/retry", do_retry),
        ("/jobs/{job_id}/delete", do_delete),
        ("/recurring/{name}/toggle", do_toggle),
        ("/recurring/{name}/run", do_run),
        ("/recurring/{name}/delete", do_remove),
        ("/queues/{name}/pause", do_pause),
        ("/queues/{name}/resume", do_resume),
    ]
    for path, run in actions:
        api.add_api_route(f"{prefix}{path}", action(run), methods=["POST"], include_in_schema=False)


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) else None


def _job_id(request: Request) -> str:
    job_id = str(request.path_params["job_id"])
    if not re.match(JOB_ID_PATTERN, job_id):
        raise Refused(422, f"{job_id!r} is not a job id")
    return job_id


def _here(request: Request) -> str:
    """This page's path and query, without a notice: where an action returns to."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "notice"]
    return request.url.path + ("?" + urlencode(kept) if kept else "")
