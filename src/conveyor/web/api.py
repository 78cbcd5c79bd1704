"""The REST API under /api: jobs, recurring jobs, queues, workers and stats."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Response

from conveyor.web.auth import MANAGE, VIEW
from conveyor.web.dashboard import Dashboard, states_or_422
from conveyor.web.errors import Refused
from conveyor.web.schemas import (
    JOB_ID_PATTERN,
    NAME_PATTERN,
    STATES_PATTERN,
    ActionOut,
    BulkIn,
    BulkOut,
    EnqueueIn,
    EnqueueOut,
    ErrorOut,
    JobDetail,
    JobPage,
    JobSummary,
    QueueOut,
    RecurringOut,
    RunNowOut,
    StatsOut,
    WorkerOut,
)

MAX_PAGE = 1_000_000
MAX_PER_PAGE = 200

JobId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a job id (UUID)")]
Name = Annotated[str, Path(pattern=NAME_PATTERN, description="a name, 1-200 characters")]
Filter = Annotated[str | None, Query(max_length=200)]

_REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "no credential granted a permission"},
    403: {"model": ErrorOut, "description": "lacking the permission, or a wrong CSRF token"},
    422: {"model": ErrorOut, "description": "malformed input"},
}
_MISSING: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "unknown"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "not allowed in the current state"}
}


def api_router(dash: Dashboard) -> APIRouter:
    """The /api routes, bound to one dashboard."""
    jobs = dash.app.jobs
    recurring = dash.app.recurring_jobs
    viewer = [Depends(dash.requires(VIEW))]
    manager = [Depends(dash.requires(MANAGE))]
    router = APIRouter(prefix="/api", responses=_REFUSALS)

    def detail(job_id: str) -> JobDetail:
        return JobDetail.of(jobs.require(job_id), dash.app.clock())

    # jobs ----------------------------------------------------------------------------------
    @router.get("/jobs", response_model=JobPage, tags=["jobs"], dependencies=viewer)
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
        q: Annotated[str | None, Query(max_length=200, description="text in id or name")] = None,
        page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
        per_page: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 50,
    ) -> JobPage:
        """Jobs, newest first, filtered by state, name, queue and text; large values cut."""
        found = jobs.list(
            state=states_or_422(state),
            name=name or None,
            queue=queue or None,
            search=q or None,
            page=page,
            per_page=per_page,
        )
        return JobPage(
            jobs=[JobSummary.of(job) for job in found.jobs],
            total=found.total,
            total_exact=found.total_exact,
            page=found.page,
            per_page=found.per_page,
            pages=max(1, math.ceil(found.total / found.per_page)),
        )

    @router.post(
        "/jobs",
        response_model=EnqueueOut,
        status_code=201,
        tags=["jobs"],
        responses=_CONFLICT,
        dependencies=manager,
    )
    def enqueue(body: EnqueueIn) -> EnqueueOut:
        """Enqueue a job by its registered or declared name."""
        options: dict[str, Any] = {}
        for key in ("queue", "priority", "delay", "unique_key"):
            value = getattr(body, key)
            if value is not None:
                options[key] = value
        handle = dash.app.enqueue(body.name, body.args, metadata=body.metadata, **options)
        return EnqueueOut(created=handle.created, job=JobDetail.of(handle.job, dash.app.clock()))

    @router.post("/jobs/bulk/retry", response_model=BulkOut, tags=["jobs"], dependencies=manager)
    def bulk_retry(body: Annotated[BulkIn, Body()]) -> BulkOut:
        """Retry every failed or cancelled job the filter selects (up to 10,000)."""
        return _bulk(dash, "retry", body)

    @router.post("/jobs/bulk/cancel", response_model=BulkOut, tags=["jobs"], dependencies=manager)
    def bulk_cancel(body: Annotated[BulkIn, Body()]) -> BulkOut:
        """Cancel every scheduled, pending or running job the filter selects (up to 10,000)."""
        return _bulk(dash, "cancel", body)

    @router.get(
        "/jobs/{job_id}",
        response_model=JobDetail,
        tags=["jobs"],
        responses=_MISSING,
        dependencies=viewer,
    )
    def get_job(job_id: JobId) -> JobDetail:
        """Everything about one job: args, metadata, result, progress, logs, attempts."""
        return detail(job_id)

    @router.post(
        "/jobs/{job_id}/cancel",
        response_model=ActionOut,
        tags=["jobs"],
        responses=_MISSING | _CONFLICT,
        dependencies=manager,
    )
    def cancel_job(job_id: JobId) -> ActionOut:
        """Cancel a job: a waiting one never runs, a running one is asked to stop."""
        return ActionOut(job=JobDetail.of(dash.app.jobs.cancel(job_id), dash.app.clock()))

    @router.post(
        "/jobs/{job_id}/retry",
        response_model=ActionOut,
        tags=["jobs"],
        responses=_MISSING | _CONFLICT,
        dependencies=manager,
    )
    def retry_job(job_id: JobId) -> ActionOut:
        """Run a failed or cancelled job again."""
        return ActionOut(job=JobDetail.of(jobs.retry(job_id), dash.app.clock()))

    @router.delete(
        "/jobs/{job_id}",
        status_code=204,
        tags=["jobs"],
        responses=_MISSING | _CONFLICT,
        dependencies=manager,
    )
    def delete_job(job_id: JobId) -> Response:
        """Delete a job that is not running."""
        jobs.delete(job_id)
        return Response(status_code=204)

    # recurring jobs ------------------------------------------------------------------------
    @router.get(
        "/recurring", response_model=list[RecurringOut], tags=["recurring"], dependencies=viewer
    )
    def list_recurring() -> list[RecurringOut]:
        """Every recurring job with its schedule, next and last run."""
        return [RecurringOut.of(r, recurring.describe(r)) for r in recurring.list()]

    @router.post(
        "/recurring/{name}/toggle",
        response_model=RecurringOut,
        tags=["recurring"],
        responses=_MISSING,
        dependencies=manager,
    )
    def toggle_recurring(name: Name) -> RecurringOut:
        """Enable a disabled recurring job, or disable an enabled one."""
        changed = recurring.toggle(name)
        return RecurringOut.of(changed, recurring.describe(changed))

    @router.post(
        "/recurring/{name}/run",
        response_model=RunNowOut,
        status_code=201,
        tags=["recurring"],
        responses=_MISSING,
        dependencies=manager,
    )
    def run_recurring(name: Name) -> RunNowOut:
        """Enqueue one run now, outside the schedule."""
        result = recurring.run_now(name)
        return RunNowOut(created=result.created, job=JobDetail.of(result.job, dash.app.clock()))

    @router.delete(
        "/recurring/{name}",
        status_code=204,
        tags=["recurring"],
        responses=_MISSING,
        dependencies=manager,
    )
    def delete_recurring(name: Name) -> Response:
        """Delete a recurring job's definition (its past runs stay)."""
        recurring.remove(name)
        return Response(status_code=204)

    # queues, workers, stats ----------------------------------------------------------------
    @router.get("/queues", response_model=list[QueueOut], tags=["queues"], dependencies=viewer)
    def list_queues() -> list[QueueOut]:
        """Every queue: depth, running jobs, limit, paused."""
        return [QueueOut.of(q) for q in jobs.queues()]

    def queue_out(name: str) -> QueueOut:
        for queue in jobs.queues():
            if queue.name == name:
                return QueueOut.of(queue)
        # a resumed queue with no jobs and no limit is no longer listed: it is simply empty
        limit = dash.app.queue_limits.get(name)
        return QueueOut(
            name=name, waiting=0, due=0, running=0, paused=False, concurrency=limit,
            oldest_due_at=None,
        )  # fmt: skip

    @router.post(
        "/queues/{name}/pause", response_model=QueueOut, tags=["queues"], dependencies=manager
    )
    def pause_queue(name: Name) -> QueueOut:
        """Stop workers claiming this queue's jobs (running ones finish)."""
        jobs.pause_queue(name)
        return queue_out(name)

    @router.post(
        "/queues/{name}/resume",
        response_model=QueueOut,
        tags=["queues"],
        responses=_MISSING,
        dependencies=manager,
    )
    def resume_queue(name: Name) -> QueueOut:
        """Let workers claim this queue's jobs again."""
        if not any(q.name == name for q in jobs.queues()):
            raise Refused(404, f"no queue is named {name!r}")
        jobs.resume_queue(name)
        return queue_out(name)

    @router.get("/workers", response_model=list[WorkerOut], tags=["workers"], dependencies=viewer)
    def list_workers() -> list[WorkerOut]:
        """Live workers: host, pid, queues, heartbeat, and the jobs they run."""
        running = dash.running_by_worker()
        return [WorkerOut.of(w, running.get(w.id, [])) for w in jobs.workers()]

    @router.get("/stats", response_model=StatsOut, tags=["stats"], dependencies=viewer)
    def stats() -> StatsOut:
        """Counts by state and queue; completed and failed per minute, last hour."""
        return StatsOut.of(jobs.counts(), jobs.throughput(60), dash.app.clock())

    return router


def _bulk(dash: Dashboard, action: str, body: BulkIn) -> BulkOut:
    result = dash.bulk(action, state=body.state, name=body.name, queue=body.queue, search=body.q)
    return BulkOut(
        matched=result.matched,
        changed=len(result.changed),
        job_ids=result.changed,
        truncated=result.truncated,
    )
