"""The REST API under /api: jobs, recurring jobs, queues, workers and stats, one function per
route group."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query, Response, params

from conveyor.backends.records import WorkerInfo
from conveyor.model.history import RANGES, parse_range
from conveyor.model.job import Job
from conveyor.model.validation import QUEUE_NAME_PATTERN
from conveyor.web.auth import MANAGE, VIEW
from conveyor.web.bulk import MORE_FILTERS, action_named, on_filter, on_ids, states_or_422
from conveyor.web.dashboard import Dashboard
from conveyor.web.schemas import (
    ENQUEUE_OPTIONS,
    ERROR_KIND_HELP,
    JOB_ID_PATTERN,
    NAME_PATTERN,
    NO_NUL,
    STATES_PATTERN,
    TIME_HELP,
    WORKER_ID_PATTERN,
    ActionOut,
    BulkIdsIn,
    BulkIn,
    BulkOut,
    EnqueueIn,
    EnqueueOut,
    ErrorOut,
    HistoryOut,
    JobDetail,
    JobPage,
    JobSummary,
    QueueOut,
    QueueSettingsIn,
    RecurringOut,
    RunNowOut,
    RuntimesOut,
    StatsOut,
    WorkerOut,
)
from conveyor.web.workflow_views import workflow_api

F = TypeVar("F", bound=Callable[..., Any])
MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a job id (UUID)")]
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="a name, 1-200 characters")]
WorkerId = Annotated[
    str, Path(pattern=WORKER_ID_PATTERN, description="a worker's id, as /api/workers lists it")
]
Filter = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no credential granted a permission"},
    403: {"model": ErrorOut, "description": "lacking the permission, or a wrong CSRF token"},
    422: {"model": ErrorOut, "description": "malformed input"},
}
_MISSING: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "not allowed in the current state"}
}


@dataclass(frozen=True)
class _Routes:
    """Registers one route group's API routes: tagged, and behind the permission they need."""

    router: APIRouter
    dash: Dashboard
    viewer: list[params.Depends]
    manager: list[params.Depends]
    tag: str = ""

    def tagged(self, tag: str) -> _Routes:
        """The same registrar for the group listed under `tag`."""
        return replace(self, tag=tag)

    def view(self, path: str, **options: Any) -> Callable[[F], F]:
        """A GET route for holders of the view permission."""
        return self.router.get(path, tags=[self.tag], dependencies=self.viewer, **options)

    def manage(self, method: str, path: str, **options: Any) -> Callable[[F], F]:
        """A route that changes something, for holders of the manage permission."""
        return self.router.api_route(
            path, methods=[method], tags=[self.tag], dependencies=self.manager, **options
        )

    def detail(self, job: Job) -> JobDetail:
        """`job` as the API shows it, at the app's time."""
        return JobDetail.of(job, self.dash.app.clock())


def api_router(dash: Dashboard) -> APIRouter:
    """The /api routes, bound to one dashboard."""
    router = APIRouter(prefix="/api", responses=_REFUSALS)
    viewer = [Depends(dash.requires(VIEW))]
    manager = [Depends(dash.requires(MANAGE))]
    routes = _Routes(router, dash, viewer, manager)
    _job_list_routes(routes.tagged("jobs"))
    _one_job_routes(routes.tagged("jobs"))
    _recurring_routes(routes.tagged("recurring"))
    _queue_routes(routes.tagged("queues"))
    _worker_routes(routes.tagged("workers"))
    _stats_routes(routes.tagged("stats"))
    workflow_api(routes.tagged("workflows"))
    return router


def _job_list_routes(routes: _Routes) -> None:
    """Jobs as a collection: list, enqueue, and act on many (named, or a filter's)."""
    dash = routes.dash

    @routes.view("/jobs", response_model=JobPage)
    def list_jobs(
        state: Annotated[
            str | None,
            Query(
                max_length=200,
                pattern=STATES_PATTERN,
                description="a state, or several: failed,cancelled",
            ),
        ] = None,
        name: Filter = None,
        queue: Filter = None,
        q: Annotated[
            str | None,
            Query(
                max_length=200,
                pattern=NO_NUL,
                description="text in the id, name, arguments, metadata or last error message",
            ),
        ] = None,
        name_contains: Annotated[
            str | None, Query(max_length=200, description="part of the name")
        ] = None,
        created_after: Annotated[str | None, Query(max_length=64, description=TIME_HELP)] = None,
        created_before: Annotated[str | None, Query(max_length=64, description=TIME_HELP)] = None,
        finished_after: Annotated[str | None, Query(max_length=64, description=TIME_HELP)] = None,
        finished_before: Annotated[str | None, Query(max_length=64, description=TIME_HELP)] = None,
        worker: Annotated[
            str | None, Query(max_length=200, description="the running worker")
        ] = None,
        error_kind: Annotated[str | None, Query(max_length=40, description=ERROR_KIND_HELP)] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
    ) -> JobPage:
        """Jobs, newest first, filtered by state, name (exact or a part), queue, text, created
        and finished times, running worker and last error kind; a bad value is a 422."""
        now = dash.app.clock()
        found = dash.app.jobs.list(
            state=states_or_422(state),
            name=name or None,
            queue=queue or None,
            search=q or None,
            page=page,
            per_page=per_page,
            name_contains=name_contains or None,
            created_after=created_after or None,
            created_before=created_before or None,
            finished_after=finished_after or None,
            finished_before=finished_before or None,
            worker=worker or None,
            error_kind=error_kind or None,
        )
        return JobPage(
            jobs=[JobSummary.of(job, now) for job in found.jobs],
            total=found.total,
            total_exact=found.total_exact,
            estimate=found.estimate,
            page=found.page,
            per_page=found.per_page,
            pages=max(1, math.ceil(found.total / found.per_page)),
        )

    @routes.manage("POST", "/jobs", response_model=EnqueueOut, status_code=201, responses=_CONFLICT)
    def enqueue(body: EnqueueIn) -> EnqueueOut:
        """Enqueue a job by its registered or declared name."""
        options: dict[str, Any] = {}
        for key in ENQUEUE_OPTIONS:
            value = getattr(body, key)
            if value is not None:
                options[key] = value
        handle = dash.app.enqueue(body.name, body.args, metadata=body.metadata, **options)
        return EnqueueOut(created=handle.created, job=routes.detail(handle.job))

    @routes.manage(
        "POST", "/jobs/bulk/{action}", response_model=BulkOut, responses=_MISSING | _CONFLICT
    )
    def bulk_action(
        action: Annotated[
            Literal["retry", "cancel", "delete", "run-now"],
            Path(description="what to do to each job it applies to"),
        ],
        body: Annotated[BulkIdsIn | BulkIn, Body()],
    ) -> BulkOut:
        """Retry (failed, cancelled), cancel (scheduled, pending, running), delete (any but
        running) or run now (scheduled) the jobs named by `ids` (up to 200), or every job
        the filter selects (up to 10,000); jobs the action does not apply to are left alone."""
        verb = action_named(action)
        if isinstance(body, BulkIdsIn):
            result = on_ids(dash.app.jobs, verb, body.ids)
        else:
            result = on_filter(
                dash.app.jobs, verb, state=body.state, name=body.name, queue=body.queue,
                search=body.q, more={key: getattr(body, key) for key in MORE_FILTERS},
            )  # fmt: skip
        return BulkOut(
            matched=result.matched,
            changed=len(result.changed),
            job_ids=result.changed,
            truncated=result.truncated,
        )


def _one_job_routes(routes: _Routes) -> None:
    """One job: everything about it; cancel, retry, run now or delete it."""
    jobs = routes.dash.app.jobs

    @routes.view("/jobs/{job_id}", response_model=JobDetail, responses=_MISSING)
    def get_job(job_id: JobId) -> JobDetail:
        """Everything about one job: args, metadata, result, progress, logs, attempts."""
        return routes.detail(jobs.require(job_id))

    @routes.manage(
        "POST", "/jobs/{job_id}/cancel", response_model=ActionOut, responses=_MISSING | _CONFLICT
    )
    def cancel_job(job_id: JobId) -> ActionOut:
        """Cancel a job: a waiting one never runs, a running one is asked to stop."""
        return ActionOut(job=routes.detail(jobs.cancel(job_id)))

    @routes.manage(
        "POST", "/jobs/{job_id}/retry", response_model=ActionOut, responses=_MISSING | _CONFLICT
    )
    def retry_job(job_id: JobId) -> ActionOut:
        """Run a failed or cancelled job again."""
        return ActionOut(job=routes.detail(jobs.retry(job_id)))

    @routes.manage(
        "POST", "/jobs/{job_id}/run-now", response_model=ActionOut, responses=_MISSING | _CONFLICT
    )
    def run_job_now(job_id: JobId) -> ActionOut:
        """Make a scheduled job (delayed, or waiting for its next attempt) due now."""
        return ActionOut(job=routes.detail(jobs.run_now(job_id)))

    @routes.manage("DELETE", "/jobs/{job_id}", status_code=204, responses=_MISSING | _CONFLICT)
    def delete_job(job_id: JobId) -> Response:
        """Delete a job that is not running."""
        jobs.delete(job_id)
        return Response(status_code=204)


def _recurring_routes(routes: _Routes) -> None:
    """Recurring jobs: list; toggle, run now or delete one."""
    recurring = routes.dash.app.recurring_jobs

    @routes.view("/recurring", response_model=list[RecurringOut])
    def list_recurring() -> list[RecurringOut]:
        """Every recurring job with its schedule, next and last run."""
        return [RecurringOut.of(r, recurring.describe(r)) for r in recurring.list()]

    @routes.manage(
        "POST", "/recurring/{name}/toggle", response_model=RecurringOut, responses=_MISSING
    )
    def toggle_recurring(name: Name) -> RecurringOut:
        """Enable a disabled recurring job, or disable an enabled one."""
        changed = recurring.toggle(name)
        return RecurringOut.of(changed, recurring.describe(changed))

    @routes.manage(
        "POST",
        "/recurring/{name}/run",
        response_model=RunNowOut,
        status_code=201,
        responses=_MISSING,
    )
    def run_recurring(name: Name) -> RunNowOut:
        """Enqueue one run now, outside the schedule."""
        result = recurring.run_now(name)
        return RunNowOut(created=result.created, job=routes.detail(result.job))

    @routes.manage("DELETE", "/recurring/{name}", status_code=204, responses=_MISSING)
    def delete_recurring(name: Name) -> Response:
        """Delete a recurring job's definition (its past runs stay)."""
        recurring.remove(name)
        return Response(status_code=204)


def _queue_routes(routes: _Routes) -> None:
    """Queues: list, show one; change its settings; pause or resume it."""
    jobs = routes.dash.app.jobs

    @routes.view("/queues", response_model=list[QueueOut])
    def list_queues() -> list[QueueOut]:
        """Every queue: depth, running jobs, settings, paused."""
        return [QueueOut.of(q) for q in jobs.queues()]

    @routes.view("/queues/{name}", response_model=QueueOut, responses=_MISSING)
    def show_queue(name: Name) -> QueueOut:
        """One queue: depth, running jobs, its settings as stored, paused."""
        return QueueOut.of(jobs.queue(name))

    @routes.manage("PATCH", "/queues/{name}/settings", response_model=QueueOut, responses=_MISSING)
    def set_queue_settings(
        name: Name,
        body: Annotated[QueueSettingsIn, Body()],
        create: Annotated[bool, Query(description="set a queue that has no jobs yet")] = False,
    ) -> QueueOut:
        """Change the settings given, for the whole fleet: workers apply them at their next
        claim, producers at their next enqueue; kept over the code's declaration until
        reset. An unknown queue is 404 unless `create`."""
        return QueueOut.of(jobs.set_queue_settings(name, body.changes(), create=create))

    @routes.manage(
        "POST", "/queues/{name}/settings/reset", response_model=QueueOut, responses=_MISSING
    )
    def reset_queue_settings(name: Name) -> QueueOut:
        """Hand the settings back to code: the dashboard's app's declaration of the queue (the
        defaults when it declares none), until a process declaring it otherwise opens its
        store."""
        return QueueOut.of(jobs.reset_queue_settings(name))

    @routes.manage("POST", "/queues/{name}/pause", response_model=QueueOut, responses=_MISSING)
    def pause_queue(
        name: Name,
        create: Annotated[bool, Query(description="pause a queue that has no jobs yet")] = False,
    ) -> QueueOut:
        """Stop workers claiming this queue's jobs (running ones finish); an unknown queue is
        404 unless `create`."""
        jobs.pause_queue(name, create=create)
        return QueueOut.of(jobs.queue(name, known=False))

    @routes.manage("POST", "/queues/{name}/resume", response_model=QueueOut, responses=_MISSING)
    def resume_queue(name: Name) -> QueueOut:
        """Let workers claim this queue's jobs again."""
        jobs.resume_queue(name)
        return QueueOut.of(jobs.queue(name, known=False))


def _worker_routes(routes: _Routes) -> None:
    """Live workers: list; quiet, stop or resume one (it follows at its next heartbeat)."""
    dash = routes.dash

    @routes.view("/workers", response_model=list[WorkerOut])
    def list_workers() -> list[WorkerOut]:
        """Live workers: host, pid, queues, heartbeat, mode, and the jobs they run."""
        running = dash.running_by_worker()
        return [WorkerOut.of(w, running.get(w.id, [])) for w in dash.app.jobs.workers()]

    def shown(worker: WorkerInfo) -> WorkerOut:
        return WorkerOut.of(worker, dash.running_by_worker().get(worker.id, []))

    @routes.manage(
        "POST", "/workers/{worker_id}/quiet", response_model=WorkerOut,
        responses=_MISSING | _CONFLICT,
    )  # fmt: skip
    def quiet_worker(worker_id: WorkerId) -> WorkerOut:
        """Ask a worker to claim no new jobs: it finishes those running and stays up (mode
        quiet) until resumed or stopped. 409 for a stopping worker."""
        return shown(dash.app.jobs.quiet_worker(worker_id))

    @routes.manage("POST", "/workers/{worker_id}/stop", response_model=WorkerOut,
                   responses=_MISSING)  # fmt: skip
    def stop_worker(worker_id: WorkerId) -> WorkerOut:
        """Ask a worker to shut down as on SIGTERM: it claims nothing new, lets running jobs
        finish within its shutdown timeout, then exits."""
        return shown(dash.app.jobs.stop_worker(worker_id))

    @routes.manage(
        "POST", "/workers/{worker_id}/resume", response_model=WorkerOut,
        responses=_MISSING | _CONFLICT,
    )  # fmt: skip
    def resume_worker(worker_id: WorkerId) -> WorkerOut:
        """Let a quieted worker claim jobs again. 409 for a stopping worker."""
        return shown(dash.app.jobs.resume_worker(worker_id))


def _stats_routes(routes: _Routes) -> None:
    """Counts, throughput and run times."""
    app = routes.dash.app

    @routes.view("/stats", response_model=StatsOut)
    def stats() -> StatsOut:
        """Counts by state and queue; completed and failed per minute, last hour."""
        return StatsOut.of(app.jobs.counts(), app.jobs.throughput(60), app.clock())

    @routes.view("/stats/history", response_model=HistoryOut)
    def history(
        range: Annotated[
            str,
            Query(
                max_length=20,
                description="1h (by minute), 24h (by 15 min), 7d (by hour)",
                json_schema_extra={"enum": list(RANGES)},  # checked by parse_range
            ),
        ] = "1h",
        queue: Annotated[
            str | None,
            Query(
                max_length=200,
                description="one queue's history (none: every queue)",
                json_schema_extra={"pattern": QUEUE_NAME_PATTERN},  # checked by the service
            ),
        ] = None,
    ) -> HistoryOut:
        """Completed, failed and cancelled jobs, wait and run times, step by step over the
        range, of every queue or one; kept in the store for `history_retention` (7 days)."""
        span = parse_range(range)
        return HistoryOut.of(span, queue, app.jobs.history(span.name, queue))

    @routes.view("/stats/runtimes", response_model=RuntimesOut)
    def runtimes() -> RuntimesOut:
        """p50 and p95 run time per job name and per queue, of the latest 1,000 completed jobs
        (read at most every 10 s)."""
        return RuntimesOut.of(routes.dash.runtimes.get())
