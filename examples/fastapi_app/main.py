"""A FastAPI site that enqueues reports, runs them on an embedded worker and shows them in the
dashboard at /admin/jobs to its own users (HTTP Basic here, for brevity).

Run it from this folder: `uvicorn main:site`, then
`curl -u alice:wonderland -X POST 'localhost:8000/reports?month=2024-05'`, follow the
`status` link it returns, and open http://localhost:8000/admin/login to sign in to the
dashboard as alice (password wonderland: may manage) or bob (builder: may view).
"""

from __future__ import annotations

import base64
import binascii
import secrets

from fastapi import FastAPI, HTTPException
from jobs import app as jobs_app
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
)
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import RedirectResponse, Response

import conveyor
from conveyor.integrations.fastapi import (
    ConveyorApp,
    Permission,
    conveyor_lifespan,
    mount_dashboard,
)

# The site's users: name -> (password, what they may do in the dashboard). A real site has a
# user table and a login of its own; the dashboard only asks it for a verdict per request.
USERS = {"alice": ("wonderland", "manage"), "bob": ("builder", "view")}


class BasicAuth(AuthenticationBackend):
    """HTTP Basic against USERS: sets request.user and request.auth.scopes."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        scheme, _, encoded = conn.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            name, _, password = base64.b64decode(encoded).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthenticationError("malformed Basic credentials") from None
        known = USERS.get(name)
        if known is None or not secrets.compare_digest(known[0], password):
            raise AuthenticationError("unknown user or wrong password")
        return AuthCredentials(["authenticated", known[1]]), SimpleUser(name)


def dashboard_permission(request: Request) -> Permission | None:
    """The site's verdict on a dashboard request: its users' roles, nothing for anyone else."""
    if "manage" in request.auth.scopes:
        return "manage"
    if "view" in request.auth.scopes:
        return "view"
    return None


def create_site(jobs: conveyor.App, *, worker: bool = True) -> FastAPI:
    """The site for `jobs`, with an embedded worker unless `worker=False`."""
    site = FastAPI(lifespan=conveyor_lifespan(jobs, worker=worker))
    site.add_middleware(AuthenticationMiddleware, backend=BasicAuth())
    mount_dashboard(site, jobs, path="/admin/jobs", authorize=dashboard_permission)

    @site.get("/admin/login", response_model=None)
    def login(request: Request) -> Response:
        """Ask the browser for Basic credentials, then go to the dashboard (the browser then
        sends them with every request under /admin/)."""
        if request.user.is_authenticated:
            return RedirectResponse("/admin/jobs/", status_code=303)
        return Response(status_code=401, headers={"WWW-Authenticate": 'Basic realm="example"'})

    @site.post("/reports", status_code=202)
    async def start_report(month: str, app: ConveyorApp) -> dict[str, str]:
        """Enqueue a report; answers at once with where to follow it."""
        handle = await app.enqueue_async("build_report", {"month": month})
        return {"id": handle.id, "status": f"/reports/{handle.id}"}

    @site.get("/reports/{job_id}")
    def report_status(job_id: str, app: ConveyorApp) -> dict[str, object]:
        """The report's state, progress and, once completed, its result (a plain function:
        FastAPI runs it on a thread, so the store's read does not block the event loop)."""
        job = app.jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no report {job_id}")
        return {
            "id": job.id,
            "state": job.state.value,
            "progress": job.progress,
            "result": job.result,
        }

    return site


site = create_site(jobs_app)
