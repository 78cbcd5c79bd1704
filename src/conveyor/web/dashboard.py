"""What the API and the pages share: the Conveyor app, auth and the URL prefix."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from conveyor.app import App
from conveyor.model.job import Job, JobState
from conveyor.web.auth import CSRF_HEADER, MANAGE, OPEN_REMOTE_REFUSED, VIEW, Auth, Identity
from conveyor.web.errors import Refused
from conveyor.web.runtimes import RuntimeCache


class Dashboard:
    """The Conveyor app being shown, who may do what, and where the dashboard is mounted."""

    def __init__(self, app: App, auth: Auth, prefix: str) -> None:
        self.app = app
        self.auth = auth
        self.prefix = prefix
        self.runtimes = RuntimeCache(app.jobs)

    def base(self, request: Request) -> str:
        """The URL path the dashboard is served under (mount point plus prefix, no slash)."""
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return root + self.prefix

    def requires(self, permission: str) -> Callable[[Request], object]:
        """A dependency for API routes: the request's Identity if it holds `permission`.

        Refuses with 401 (no credential granted anything) or 403 (authenticated, lacking it).
        A state-changing call authenticated by cookie or the hook must carry the session's
        CSRF token in the X-CSRF-Token header; calls with an Authorization header are exempt.
        """

        async def dependency(request: Request) -> Identity:
            identity = await self.auth.identify(request)
            if not identity.authenticated:
                if self.auth.open:
                    raise Refused(401, OPEN_REMOTE_REFUSED)
                raise Refused(401, "authentication required: send Authorization: Bearer <token>")
            if not identity.can(permission):
                raise Refused(403, f"this token lacks the {permission!r} permission")
            if permission == MANAGE and not self.csrf_exempt(request, identity):
                token = request.headers.get(CSRF_HEADER)
                if not self.auth.signer.check_csrf(identity.session, token):
                    raise Refused(403, "missing or wrong CSRF token (header X-CSRF-Token)")
            return identity

        return dependency

    def csrf_exempt(self, request: Request, identity: Identity) -> bool:
        """Calls authenticated by an Authorization header cannot be forged by another site."""
        if identity.bearer:
            return True
        return self.auth.open and "authorization" in request.headers

    def running_by_worker(self) -> dict[str, list[Job]]:
        """Running jobs (the newest 1,000), by the worker running them."""
        running = self.app.jobs.list(state=JobState.RUNNING, per_page=1000)
        by_worker: dict[str, list[Job]] = {}
        for job in running.jobs:
            if job.worker_id:
                by_worker.setdefault(job.worker_id, []).append(job)
        return by_worker


__all__ = ["MANAGE", "VIEW", "Dashboard"]
