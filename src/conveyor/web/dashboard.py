"""What the API and the pages share: the Conveyor app, auth, the URL prefix and job actions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from conveyor.app import App
from conveyor.backends.records import LIST_COUNT_CAP
from conveyor.errors import ConveyorError
from conveyor.model.job import ACTIVE_STATES, JobState
from conveyor.services import parse_states
from conveyor.web.auth import CSRF_HEADER, MANAGE, OPEN_REMOTE_REFUSED, VIEW, Auth, Identity
from conveyor.web.errors import Refused

BULK_LIMIT = LIST_COUNT_CAP  # jobs one bulk call acts on: as many as a listing counts
_BULK_PAGE = 1000


@dataclass(frozen=True, slots=True)
class BulkResult:
    """What a bulk action did."""

    matched: int
    changed: list[str]
    truncated: bool


def states_or_422(state: str | None) -> frozenset[JobState] | None:
    """Parse a state filter; an unknown state is a 422, not a conflict."""
    if state is None or not state.strip():
        return None
    try:
        return parse_states(state)
    except ConveyorError as exc:
        raise Refused(422, str(exc)) from None


class Dashboard:
    """The Conveyor app being shown, who may do what, and where the dashboard is mounted."""

    def __init__(self, app: App, auth: Auth, prefix: str) -> None:
        self.app = app
        self.auth = auth
        self.prefix = prefix

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

    # actions shared by the API and the page forms ----------------------------------------
    def bulk(
        self,
        action: str,
        *,
        state: str | None,
        name: str | None,
        queue: str | None,
        search: str | None,
    ) -> BulkResult:
        """Retry (failed, cancelled) or cancel (scheduled, pending, running) a filter's jobs."""
        eligible = (
            frozenset({JobState.FAILED, JobState.CANCELLED}) if action == "retry" else ACTIVE_STATES
        )
        wanted = states_or_422(state)
        states = eligible if wanted is None else eligible & wanted
        if not states:
            return BulkResult(0, [], False)
        ids: list[str] = []
        page = 1
        truncated = False
        while True:
            found = self.app.jobs.list(
                state=states,
                name=name or None,
                queue=queue or None,
                search=search or None,
                page=page,
                per_page=_BULK_PAGE,
            )
            ids.extend(job.id for job in found.jobs)
            if len(ids) >= BULK_LIMIT:
                # the listing counts up to LIST_COUNT_CAP (= BULK_LIMIT): not exact means more
                truncated = len(ids) > BULK_LIMIT or not found.total_exact
                ids = ids[:BULK_LIMIT]
                break
            if len(found.jobs) < _BULK_PAGE:
                break
            page += 1
        changed = []
        act = self.app.jobs.retry if action == "retry" else self.app.jobs.cancel
        for job_id in ids:
            try:
                act(job_id)
            except ConveyorError:
                continue  # it moved on (finished, retried, deleted) since it was listed
            changed.append(job_id)
        return BulkResult(len(ids), changed, truncated)

    def running_by_worker(self) -> dict[str, list[str]]:
        """Ids of running jobs, by the worker running them."""
        running = self.app.jobs.list(state=JobState.RUNNING, per_page=1000)
        by_worker: dict[str, list[str]] = {}
        for job in running.jobs:
            if job.worker_id:
                by_worker.setdefault(job.worker_id, []).append(job.id)
        return by_worker


__all__ = ["MANAGE", "VIEW", "BulkResult", "Dashboard", "states_or_422"]
