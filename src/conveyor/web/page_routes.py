"""What every dashboard page and form shares: the templates, one request's renderer, and how a
page, a form action and the login form are registered and checked."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from conveyor.errors import ConveyorError, NotFound
from conveyor.model.durations import duration
from conveyor.model.job import Job
from conveyor.web.auth import (
    CSRF_FIELD,
    FLASH_COOKIE,
    MANAGE,
    OPEN_REMOTE_REFUSED,
    VIEW,
    Flash,
    Identity,
    Session,
    new_session,
    set_flash_cookie,
    set_session_cookie,
)
from conveyor.web.dashboard import Dashboard
from conveyor.web.errors import BadForm, Refused, status_for
from conveyor.web.schemas import JOB_ID_PATTERN, preview

log = logging.getLogger("conveyor.web")

#: Builds a page's template values from the request (runs in a thread: it may query the store).
View = Callable[[Dashboard, Request], dict[str, Any]]
#: Does what a form asks and returns the notice (flashed to the page it returns to).
Action = Callable[[Dashboard, Request, Any], str | Flash]
#: Where an error page links back to: a path under the dashboard and the link's words.
Back = tuple[str, str]

OVERVIEW: Back = ("/", "Back to the overview")
#: An error page's title, by status, when the page gives none of its own.
ERROR_TITLES = {
    403: "Not allowed",
    404: "Page not found",
    405: "Not a page",
    409: "Not possible now",
    422: "Cannot show this page",
    429: "Queue full",
    500: "Something went wrong",
    503: "Store unavailable",
}
#: The header a page's live refresh sends (app.js): it fetches the page again and swaps in
#: its `data-live-region` elements.
LIVE_HEADER = "x-conveyor-live"
#: Paths under the dashboard that answer JSON or text, never an HTML error page (the static
#: files answer their own errors).
NOT_PAGES = ("/api", "/metrics")

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _iso(value: datetime) -> str:
    """A time as the browser parses it (app.js shows it relative, in the viewer's zone)."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Timings:
    """A job's durations: queued (due) to started, started to finished, created to finished."""

    waited: float | None
    ran: float | None
    total: float | None

    @classmethod
    def of(cls, job: Job) -> Timings:
        """From the job's times (None where a time is not there yet)."""

        def between(start: datetime | None, end: datetime | None) -> float | None:
            if start is None or end is None:
                return None
            return max(0.0, (end - start).total_seconds())

        return cls(
            waited=between(job.run_at, job.started_at),
            ran=between(job.started_at, job.finished_at),
            total=between(job.created_at, job.finished_at),
        )


def _reported(job: Job) -> bool:
    """Whether the job ever reported progress (else the pages show no bar at 0 %)."""
    return job.progress > 0 or bool(job.progress_message)


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=True)


def _percent(value: float) -> str:
    return f"{max(0.0, min(100.0, value)):.0f}"


_templates.filters["when"] = _when
_templates.filters["percent"] = _percent
_templates.filters["preview"] = preview
_templates.filters["pretty"] = _pretty
_templates.filters["iso"] = _iso
_templates.filters["duration"] = duration
_templates.filters["reported"] = _reported
_templates.globals["timings"] = Timings.of


class Page:
    """Renders one request's page: identity, session cookie and CSRF token in place."""

    def __init__(self, dash: Dashboard, request: Request, identity: Identity) -> None:
        self.dash = dash
        self.request = request
        self.identity = identity
        self.fresh = identity.session is None
        self.session: Session = identity.session or new_session()

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        """`template` with `values` and what every page shows (user, CSRF token, and the
        session's flashed notice, shown once: never anything from the URL)."""
        base = self.dash.base(self.request)
        signer = self.dash.auth.signer
        # a live refresh (the page's own poll) leaves the flash to the page a person opens
        live = self.request.headers.get(LIVE_HEADER) == "1"
        cookie = None if live else self.request.cookies.get(FLASH_COOKIE)
        flash = signer.load_flash(cookie, self.identity.session)
        html = _templates.get_template(template).render(
            base=base,
            csrf=signer.csrf_token(self.session),
            can_manage=self.identity.can(MANAGE),
            can_view=self.identity.can(VIEW),
            logged_in=self.session.token_hash is not None,
            open_access=self.dash.auth.open,
            path=self.request.url.path,
            here=_here(self.request),
            flash=flash,
            now_ms=int(self.dash.app.clock().timestamp() * 1000),
            **values,
        )
        response = HTMLResponse(html, status_code=status)
        if self.fresh:
            set_session_cookie(response, signer, self.session, base or "/")
        if cookie is not None:  # shown (or not ours): gone either way
            response.delete_cookie(FLASH_COOKIE, path=base or "/", httponly=True, samesite="strict")
        return response

    def error(
        self, status: int, message: str, title: str | None = None, back: Back = OVERVIEW
    ) -> HTMLResponse:
        """An error page: what happened (`title`, by default the status's), why (`message`)
        and a link back."""
        href, label = back
        return self.render(
            "error.html",
            status=status,
            title=title or ERROR_TITLES.get(status, "Cannot show this page"),
            message=message,
            back_href=self.dash.base(self.request) + href,
            back_label=label,
        )


class PageRoutes:
    """Registers the dashboard's pages and forms on `api`, each behind the checks it needs."""

    def __init__(self, api: FastAPI, dash: Dashboard) -> None:
        self.api = api
        self.dash = dash

    async def page(self, request: Request) -> Page:
        """The renderer for `request`, with the identity it authenticates as."""
        return Page(self.dash, request, await self.dash.auth.identify(request))

    def login_form(
        self, p: Page, message: str = "", status: int = 401, back_to: str | None = None
    ) -> HTMLResponse:
        """The login form, returning to `back_to` (default: this page); it says why open access
        refused a caller."""
        if self.dash.auth.open and not message:
            message = OPEN_REMOTE_REFUSED[0].upper() + OPEN_REMOTE_REFUSED[1:] + "."
        target = back_to or p.request.url.path
        return p.render("login.html", title="Sign in", status=status, message=message, next=target)

    def csrf_ok(self, p: Page, form: Any) -> bool:
        """Whether the form carries the CSRF token of the caller's session."""
        return self.dash.auth.signer.check_csrf(p.identity.session, field(form, CSRF_FIELD))

    def safe_next(self, request: Request, target: str | None) -> str:
        """`target` if it is a page of this dashboard, else the overview: no open redirect."""
        base = self.dash.base(request)
        if target and target.startswith(base + "/") and not target.startswith("//"):
            return target
        return base + "/"

    def is_page(self, request: Request) -> bool:
        """Whether `request` is for a dashboard page (not the API, a static file or metrics),
        so an error answers it with an HTML page."""
        base = self.dash.base(request)
        path = request.url.path
        if path != base and not path.startswith(base + "/"):
            return False
        rest = path[len(base) :]
        return not any(rest == p or rest.startswith(p + "/") for p in NOT_PAGES)

    async def error_for(self, request: Request, status: int, message: str) -> Response | None:
        """The error page answering a request no page route took (an unknown path, a method
        a page does not take), or None when it is not for a page (the API answers JSON)."""
        if not self.is_page(request):
            return None
        p = await self.page(request)
        path = request.url.path
        if status == 404:
            return p.error(404, f"There is no dashboard page at {path}.")
        if status == 405:
            if request.method in ("GET", "HEAD"):
                why = f"{path} is where a page's button sends its form, not a page to open."
            else:
                why = f"{path} is a page to open, not a form to send ({request.method})."
            return p.error(405, why)
        return p.error(status, message)

    def view(
        self,
        path: str,
        build: View,
        template: str,
        *,
        missing: str = ERROR_TITLES[404],
        back: Back = OVERVIEW,
    ) -> None:
        """GET `path` (under the prefix): `template` with `build`'s values, for viewers.

        Without the view permission it is the login form. What `build` refuses is an error
        page linking to `back`: a NotFound (or a 404 refusal) is a 404 titled `missing`,
        another refusal or Conveyor error its own status, anything else a logged 500.
        """

        async def endpoint(request: Request) -> Response:
            p = await self.page(request)
            if not p.identity.can(VIEW):
                return self.login_form(p)
            try:
                values = await run_in_threadpool(build, self.dash, request)
            except NotFound as exc:
                return p.error(404, str(exc), missing, back)
            except Refused as exc:
                title = missing if exc.status == 404 else None
                return p.error(exc.status, exc.message, title, back)
            except ConveyorError as exc:
                return p.error(status_for(exc), str(exc), None, back)
            except Exception:
                log.exception("conveyor.web: the page %s failed", request.url.path)
                failed = "The page failed to render; the server's log has the details."
                return p.error(500, failed, None, back)
            return p.render(template, **values)

        self.api.add_api_route(
            f"{self.dash.prefix}{path}" or "/",
            endpoint,
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
        )

    def action(self, path: str, run: Action) -> None:
        """POST `path` (under the prefix): a form that changes something, for managers.

        Checks the view permission (else the login form), the CSRF token and the manage
        permission (else a 403 page), then redirects back to the form's `next` page, which
        shows `run`'s notice (or the refusal's message) once, flashed in a signed cookie. A
        form `run` finds malformed (BadForm) is an error page of its status instead.
        """

        async def endpoint(request: Request) -> Response:
            p = await self.page(request)
            if not p.identity.can(VIEW):
                return self.login_form(p)
            try:
                form = await request.form()
            except HTTPException as exc:  # more fields than the parser takes, say
                why = str(exc.detail).rstrip(".")
                return p.error(422, f"The form could not be read: {why}.", "Form not accepted")
            target = self.safe_next(request, field(form, "next"))
            back = (target[len(self.dash.base(request)) :], "Back to the page")
            if not self.csrf_ok(p, form):
                return p.error(
                    403,
                    "The form's CSRF token is missing or is not this session's (the page was "
                    "older than your sign-in): reload the page and try again.",
                    "Form expired",
                    back,
                )
            if not p.identity.can(MANAGE):
                only = "You may only view: this needs the manage permission."
                return p.error(403, only, None, back)
            try:
                done = await run_in_threadpool(run, self.dash, request, form)
                flash = done if isinstance(done, Flash) else Flash(done)
            except BadForm as exc:
                return p.error(exc.status, exc.message, None, back)
            except (Refused, ConveyorError) as exc:
                flash = Flash(str(exc), error=True)
            response = RedirectResponse(target, status_code=303)
            session = p.identity.session
            assert session is not None  # the CSRF check passed: the form came with one
            cookie_path = self.dash.base(request) or "/"
            set_flash_cookie(response, self.dash.auth.signer, session, flash, cookie_path)
            return response

        self.form(path, endpoint)

    def form(self, path: str, endpoint: Callable[[Request], Any]) -> None:
        """POST `path` (under the prefix) answered by `endpoint`, which does its own checks."""
        self.api.add_api_route(
            f"{self.dash.prefix}{path}", endpoint, methods=["POST"], include_in_schema=False
        )


def path_id(request: Request, what: str) -> str:
    """The `{what}_id` of the path (job and workflow ids have one form); a 404 refusal when
    it is not an id, so no such thing can have it."""
    value = str(request.path_params[f"{what}_id"])
    if not re.match(JOB_ID_PATTERN, value):
        raise Refused(404, f"{value!r} is not a {what} id, so no {what} has it")
    return value


def page_number(request: Request) -> int:
    """The `page` of a listing's query string (default 1); a 422 refusal when it is not a
    whole number from 1 to 1,000,000."""
    try:
        number = int(request.query_params.get("page", "1"))
    except ValueError:
        raise Refused(422, "page must be a whole number") from None
    if not 1 <= number <= 1_000_000:
        raise Refused(422, "page must be between 1 and 1,000,000")
    return number


def field(form: Any, name: str) -> str | None:
    """A form's text field, or None when it is missing or a file."""
    value = form.get(name)
    return value if isinstance(value, str) else None


def _here(request: Request) -> str:
    """This page's path and query: where an action returns to."""
    query = request.url.query
    return request.url.path + ("?" + query if query else "")
