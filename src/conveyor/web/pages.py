"""The HTML pages (Jinja2, autoescaped), the login form and the page actions (POST forms),
one function per route group; page_routes.py has the checks they share."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from conveyor.errors import InvalidQueueSettings
from conveyor.model.history import parse_range
from conveyor.model.job import ACTIVE_STATES, JobState
from conveyor.web.attempts import attempt_groups
from conveyor.web.auth import (
    SESSION_COOKIE,
    VIEW,
    Flash,
    hash_token,
    new_session,
    set_session_cookie,
)
from conveyor.web.bulk import ACTIONS, BULK_LIMIT, MORE_FILTERS, action_named, on_filter, on_ids
from conveyor.web.dashboard import Dashboard
from conveyor.web.enqueue_form import enqueue_pages
from conveyor.web.errors import BadForm, Refused
from conveyor.web.history_views import history_view
from conveyor.web.job_list import (
    FILTER_KEYS,
    error_kinds,
    honest_total,
    list_jobs,
    page_link,
    pager,
    read_filters,
)
from conveyor.web.page_routes import Back, PageRoutes, field, page_number, path_id
from conveyor.web.schemas import StatsOut
from conveyor.web.workflow_views import workflow_pages

JOBS: Back = ("/jobs", "Back to jobs")
STATES = [state.value for state in JobState]
BULK_LABELS = {"retry": "Retry", "cancel": "Cancel", "delete": "Delete", "run-now": "Run now"}


def install_pages(api: FastAPI, dash: Dashboard) -> PageRoutes:
    """Add the pages, the login form and the page actions to `api`; returns their registrar
    (its `error_for` answers page errors with a page)."""
    routes = PageRoutes(api, dash)
    _overview_pages(routes)
    _job_pages(routes)
    _recurring_pages(routes)
    _queue_pages(routes)
    _worker_pages(routes)
    workflow_pages(routes)
    _login_routes(routes)
    return routes


# overview ----------------------------------------------------------------------------------
def _overview_pages(routes: PageRoutes) -> None:
    """The overview, at the dashboard's root (with and without a slash under a prefix)."""
    routes.view("", _overview, "overview.html")
    if routes.dash.prefix:
        routes.view("/", _overview, "overview.html")


def _overview(dash: Dashboard, request: Request) -> dict[str, Any]:
    jobs = dash.app.jobs
    stats = StatsOut.of(jobs.counts(), [], dash.app.clock())
    return {
        "title": "Overview",
        "states": STATES,
        "stats": stats,
        "history": _history(dash, request, None),
        "queues": jobs.queues(),
        "workers": jobs.workers(),
        "running": dash.running_by_worker(),
        "runtimes": dash.runtimes.get(),
    }


# jobs --------------------------------------------------------------------------------------
def _job_pages(routes: PageRoutes) -> None:
    """The job list and one job's page; cancel, retry, run now or delete one job, the ticked
    jobs or a filter's jobs."""
    routes.view("/jobs", _job_list, "jobs.html", back=JOBS)
    enqueue_pages(routes)  # before /jobs/{job_id}: "new" is no id
    routes.view("/jobs/{job_id}", _job_detail, "job.html", missing="Job not found", back=JOBS)
    routes.action("/jobs/bulk/{action}", _bulk)  # before /jobs/{job_id}/…: "bulk" is no id
    routes.action("/jobs/{job_id}/cancel", _cancel_job)
    routes.action("/jobs/{job_id}/retry", _retry_job)
    routes.action("/jobs/{job_id}/delete", _delete_job)
    routes.action("/jobs/{job_id}/run-now", _run_job_now)


def _job_list(dash: Dashboard, request: Request) -> dict[str, Any]:
    filters = read_filters(request.query_params)
    state = filters["state"] or None
    number = page_number(request)
    found = list_jobs(dash.app.jobs, filters, number)  # a bad value: a 422 page saying why
    total = honest_total(dash.app.jobs, found, filters)
    kept = {k: v for k, v in filters.items() if v}
    bulk_cancel = state in (None, "scheduled", "pending", "running")
    return {
        "title": "Jobs",
        "states": STATES,
        "found": found,
        "total": total,
        "filters": filters,
        "filter_keys": FILTER_KEYS,
        "pager": pager(found, total, page_link(filters)),
        "error_kinds": error_kinds(),
        "names": dash.app.job_names,
        "bulk_actions": list(ACTIONS.values()),
        "bulk_labels": BULK_LABELS,
        "bulk_retry": state in (None, "failed", "cancelled"),
        "bulk_cancel": bulk_cancel,
        "cancel_question": _cancel_question(dash, kept) if bulk_cancel and found.total else "",
    }


def _cancel_question(dash: Dashboard, filters: dict[str, str]) -> str:
    """What "Cancel all active" asks first: with no filter set, how many jobs it cancels."""
    if filters:
        return "Cancel every active job matching this filter?"
    active = dash.app.jobs.list(state=ACTIVE_STATES, per_page=1)  # counted up to the cap
    if active.total_exact:
        return (
            f"No filter is set: cancel all {active.total:,} active jobs (scheduled, pending "
            "and running)?"
        )
    return (
        f"No filter is set: cancel {BULK_LIMIT:,} of the more than {active.total:,} active jobs "
        "(scheduled, pending and running)? Run it again for the rest."
    )


def _job_detail(dash: Dashboard, request: Request) -> dict[str, Any]:
    job = dash.app.jobs.require(_job_id(request))
    return {
        "title": f"Job {job.name}",
        "job": job,
        "finished": job.is_finished,
        "attempts": attempt_groups(job),
    }


def _cancel_job(dash: Dashboard, request: Request, form: Any) -> str | Flash:
    job = dash.app.jobs.cancel(_job_id(request))
    if job.state is JobState.RUNNING:  # true only while it runs: the job's page then drops it
        message = "Cancellation requested: the job will stop shortly."
        return Flash(message, job_id=job.id, while_state=JobState.RUNNING.value)
    return "Job cancelled."


def _retry_job(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.jobs.retry(_job_id(request))
    return "Job queued to run again."


def _run_job_now(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.jobs.run_now(_job_id(request))
    return "Job made due now: the next free worker runs it."


def _delete_job(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.jobs.delete(_job_id(request))
    return "Job deleted."


def _bulk(dash: Dashboard, request: Request, form: Any) -> str:
    """A bulk action on the ticked jobs (`ids`), or with `scope=matching` on every job the
    list's filter (sent along) matches."""
    try:
        action = action_named(str(request.path_params["action"]))
    except Refused as exc:
        raise BadForm(exc.status, exc.message) from None
    scope = field(form, "scope") or "selected"
    if scope == "matching":
        return on_filter(
            dash.app.jobs,
            action,
            state=field(form, "state"),
            name=field(form, "name"),
            queue=field(form, "queue"),
            search=field(form, "q"),
            more={key: field(form, key) for key in MORE_FILTERS},
        ).notice()
    if scope != "selected":
        raise BadForm(422, f"scope {scope[:40]!r} is neither 'selected' nor 'matching'")
    ids = [value for value in form.getlist("ids") if isinstance(value, str)]
    if not ids:  # a person's slip (the buttons wait for a tick): a notice, not an error page
        raise Refused(422, "No job is selected: tick the jobs to act on first.")
    try:
        return on_ids(dash.app.jobs, action, ids).notice()
    except Refused as exc:
        raise BadForm(exc.status, exc.message) from None


def _job_id(request: Request) -> str:
    return path_id(request, "job")


# recurring jobs ----------------------------------------------------------------------------
def _recurring_pages(routes: PageRoutes) -> None:
    """The recurring jobs' page; toggle, run now or delete one."""
    routes.view("/recurring", _recurring_list, "recurring.html")
    routes.action("/recurring/{name}/toggle", _toggle_recurring)
    routes.action("/recurring/{name}/run", _run_recurring)
    routes.action("/recurring/{name}/delete", _remove_recurring)


def _recurring_list(dash: Dashboard, request: Request) -> dict[str, Any]:
    recurring = dash.app.recurring_jobs
    items = [(r, recurring.describe(r)) for r in recurring.list()]
    return {"title": "Recurring", "items": items}


def _toggle_recurring(dash: Dashboard, request: Request, form: Any) -> str:
    changed = dash.app.recurring_jobs.toggle(request.path_params["name"])
    return f"{changed.name} {'enabled' if changed.enabled else 'disabled'}."


def _run_recurring(dash: Dashboard, request: Request, form: Any) -> str:
    result = dash.app.recurring_jobs.run_now(request.path_params["name"])
    return f"Enqueued job {result.job.id}."


def _remove_recurring(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.recurring_jobs.remove(request.path_params["name"])
    return "Recurring job deleted."


# queues and workers ------------------------------------------------------------------------
def _queue_pages(routes: PageRoutes) -> None:
    """The queues' page and one queue's page; change a queue's settings, pause or resume it."""
    routes.view("/queues", _queue_list, "queues.html")
    back: Back = ("/queues", "Back to the queues")
    routes.view("/queues/{name}", _queue_detail, "queue.html", missing="Queue not found", back=back)
    routes.action("/queues/{name}/settings", _set_queue_settings)
    routes.action("/queues/{name}/settings/reset", _reset_queue_settings)
    routes.action("/queues/{name}/pause", _pause_queue)
    routes.action("/queues/{name}/resume", _resume_queue)


def _queue_list(dash: Dashboard, request: Request) -> dict[str, Any]:
    return {"title": "Queues", "queues": dash.app.jobs.queues()}


def _queue_detail(dash: Dashboard, request: Request) -> dict[str, Any]:
    queue = dash.app.jobs.queue(request.path_params["name"])
    return {
        "title": f"Queue {queue.name}",
        "q": queue,
        "history": _history(dash, request, queue.name),
        "history_queue": queue.name,
    }


def _history(dash: Dashboard, request: Request, queue: str | None) -> dict[str, Any]:
    """The history section of the range in `?range=` (1h by default)."""
    span = parse_range(request.query_params.get("range", "1h")[:20])
    return history_view(dash.app.jobs.history(span.name, queue), span)


def _set_queue_settings(dash: Dashboard, request: Request, form: Any) -> str:
    """The form's settings that differ from the stored ones become operator-set (a field
    left as it was is not, so code keeps setting it)."""
    name = request.path_params["name"]
    current = dash.app.jobs.queue(name).settings
    given = {
        "concurrency": _form_limit(form, "concurrency"),
        "max_size": _form_limit(form, "max_size"),
        "when_full": field(form, "when_full") or current.when_full,
        "rate_limit": (field(form, "rate_limit") or "").strip() or None,
    }
    changes = {k: v for k, v in given.items() if v != getattr(current, k)}
    if not changes:
        return f"Queue {name}: nothing changed."
    queue = dash.app.jobs.set_queue_settings(name, changes)
    shown = ", ".join(f"{k.replace('_', ' ')} {getattr(queue, k)}" for k in sorted(changes))
    return f"Queue {name}: {shown}."


def _form_limit(form: Any, name: str) -> object:
    """A limit typed in the form: empty (or "none") lifts it; the range is checked by
    model/validation.py through app.jobs."""
    text = (field(form, name) or "").strip()
    if text.lower() in ("", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        label = name.replace("_", " ")
        raise InvalidQueueSettings(
            f"{label} must be a whole number, or empty for no limit, not {text!r}"
        ) from None


def _reset_queue_settings(dash: Dashboard, request: Request, form: Any) -> str:
    queue = dash.app.jobs.reset_queue_settings(request.path_params["name"])
    return f"Queue {queue.name}: settings handed back to code."


def _pause_queue(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.jobs.pause_queue(request.path_params["name"])
    return f"Queue {request.path_params['name']} paused."


def _resume_queue(dash: Dashboard, request: Request, form: Any) -> str:
    dash.app.jobs.resume_queue(request.path_params["name"])
    return f"Queue {request.path_params['name']} resumed."


def _worker_pages(routes: PageRoutes) -> None:
    """The live workers' page; quiet, stop or resume one."""
    routes.view("/workers", _worker_list, "workers.html")
    routes.action("/workers/{worker_id}/quiet", _quiet_worker)
    routes.action("/workers/{worker_id}/stop", _stop_worker)
    routes.action("/workers/{worker_id}/resume", _resume_worker)


def _worker_list(dash: Dashboard, request: Request) -> dict[str, Any]:
    return {
        "title": "Workers",
        "workers": dash.app.jobs.workers(),
        "running": dash.running_by_worker(),
        # the queues a limit, a rate or a key's limit shapes, with what they hold back now
        "limited": [
            q
            for q in dash.app.jobs.queues()
            if q.concurrency is not None
            or q.rate_limit is not None
            or q.held_by_key
            or q.held_by_rate
        ],
    }


def _quiet_worker(dash: Dashboard, request: Request, form: Any) -> str:
    worker = dash.app.jobs.quiet_worker(request.path_params["worker_id"])
    return f"Worker {worker.id} asked to go quiet: it claims no new jobs from its next heartbeat."


def _stop_worker(dash: Dashboard, request: Request, form: Any) -> str:
    worker = dash.app.jobs.stop_worker(request.path_params["worker_id"])
    return f"Worker {worker.id} asked to stop: it finishes its running jobs, then exits."


def _resume_worker(dash: Dashboard, request: Request, form: Any) -> str:
    worker = dash.app.jobs.resume_worker(request.path_params["worker_id"])
    return f"Worker {worker.id} asked to resume claiming jobs."


# login -------------------------------------------------------------------------------------
def _login_routes(routes: PageRoutes) -> None:
    """Log in with a token (a new session), log out (the session cookie deleted)."""
    dash = routes.dash
    expired = "Your session expired: please try again."

    async def login(request: Request) -> Response:
        p = await routes.page(request)
        form = await request.form()
        # a refused try keeps the page it was going to (the form posts to /login, so this
        # request's own path would send the next try's success back to the login form)
        target = routes.safe_next(request, field(form, "next"))
        if not routes.csrf_ok(p, form):
            return routes.login_form(p, expired, 403, back_to=target)
        token = field(form, "token") or ""
        if not dash.auth.tokens.permissions_for(token):
            return routes.login_form(p, "That token is not valid.", 401, back_to=target)
        response = RedirectResponse(target, status_code=303)
        session = new_session(hash_token(token))  # a new id on login: no session fixation
        set_session_cookie(response, dash.auth.signer, session, dash.base(request) or "/")
        return response

    async def logout(request: Request) -> Response:
        p = await routes.page(request)
        form = await request.form()
        if not routes.csrf_ok(p, form):
            return routes.login_form(p, expired, 403)
        response = RedirectResponse(dash.base(request) + "/", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=dash.base(request) or "/")
        return response

    async def login_page(request: Request) -> Response:
        """GET /login: the login form; with ?token= (the link `conveyor web` prints) a valid
        token logs in at once and the redirect takes it out of the address bar."""
        p = await routes.page(request)
        target = routes.safe_next(request, request.query_params.get("next"))
        if target == dash.base(request) + "/login":
            target = dash.base(request) + "/"
        token = request.query_params.get("token")
        if token is None:
            if p.identity.can(VIEW):
                return RedirectResponse(target, status_code=303)
            return p.render("login.html", title="Sign in", status=200, message="", next=target)
        if not dash.auth.tokens.permissions_for(token):
            return p.render(
                "login.html",
                title="Sign in",
                status=401,
                message="That token is not valid.",
                next=target,
            )
        response = RedirectResponse(target, status_code=303)
        set_session_cookie(response, dash.auth.signer, new_session(hash_token(token)),
                           dash.base(request) or "/")  # fmt: skip
        response.headers["Referrer-Policy"] = "no-referrer"  # the token is in this URL
        return response

    routes.form("/login", login)
    routes.api.add_api_route(
        f"{dash.prefix}/login", login_page, methods=["GET"], include_in_schema=False
    )
    routes.form("/logout", logout)
