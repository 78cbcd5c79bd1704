"""Query and manage jobs: the operations behind `app.jobs`, the web API and the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from conveyor.backends.protocol import Backend
from conveyor.backends.records import Counts, JobFilter, Page, QueueInfo, Throughput, WorkerInfo
from conveyor.errors import (
    InvalidFilter,
    InvalidQueueSettings,
    JobNotFound,
    JobStateConflict,
    QueueNotFound,
    WorkerNotFound,
)
from conveyor.model.filters import check_filter
from conveyor.model.history import (
    ROLL_UP_DELAY,
    HistoryPoint,
    check_history_queue,
    floor_to,
    parse_range,
    series,
)
from conveyor.model.job import Job, JobState
from conveyor.model.lifecycle import RETRYABLE_STATES
from conveyor.model.queues import QueueChange, QueueSettings, WhenFull
from conveyor.model.validation import check_queue, check_queue_changes, text_problem
from conveyor.model.workers import WorkerAction, check_worker_action


@dataclass(frozen=True, slots=True)
class QueueStatus:
    """A queue: its jobs in the store, whether it is paused, and its settings as stored (what
    every worker and producer honours), with which of them an operator set."""

    name: str
    waiting: int
    due: int
    running: int
    paused: bool
    oldest_due_at: datetime | None
    concurrency: int | None  # None: limited only by the workers' slots
    max_size: int | None = None  # None: unbounded
    when_full: WhenFull = "wait"
    operator_set: tuple[str, ...] = ()  # the settings an operator set, by name
    rate_limit: str | None = None  # None: no rate ("100/m": at most 100 starts a minute)
    held_by_key: int = 0  # due jobs whose concurrency key runs as many as its limit allows
    held_by_rate: int = 0  # due jobs whose queue's or own rate window is spent now

    @property
    def settings(self) -> QueueSettings:
        """The queue's stored settings."""
        return QueueSettings(self.concurrency, self.max_size, self.when_full, self.rate_limit)

    @classmethod
    def of(cls, q: QueueInfo) -> QueueStatus:
        """A store's QueueInfo as a status."""
        s = q.settings
        return cls(
            q.name, q.waiting, q.due, q.running, q.paused, q.oldest_due_at,
            s.concurrency, s.max_size, s.when_full, tuple(sorted(q.operator_set)), s.rate_limit,
            q.held_by_key, q.held_by_rate,
        )  # fmt: skip


class JobService:
    """Get, list, count, cancel, retry, run now, delete and purge jobs; see queues, workers,
    throughput and history."""

    def __init__(
        self,
        backend: Callable[[], Backend],
        clock: Callable[[], datetime],
        on_cancel_requested: Callable[[str], None],
        declared_queues: Callable[[], Mapping[str, QueueSettings]] = dict,
        job_queues: Callable[[], set[str]] = set,
        *,
        worker_stale_after: Callable[[], float] = lambda: 60.0,
        on_worker_request: Callable[[str], None] = lambda worker_id: None,
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._on_cancel_requested = on_cancel_requested
        self._declared_queues = declared_queues  # the app's app.queue declarations
        self._job_queues = job_queues  # the queues the app's jobs are declared on
        self._worker_stale_after = worker_stale_after  # no heartbeat for this long: gone
        self._on_worker_request = on_worker_request  # a worker of this process beats at once

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None."""
        return self._backend().get(job_id)

    def require(self, job_id: str) -> Job:
        """The job with this id; raises JobNotFound."""
        job = self.get(job_id)
        if job is None:
            raise JobNotFound(f"no job has id {job_id!r}: it may have been deleted or pruned")
        return job

    def counts(self) -> Counts:
        """How many jobs are in each state, overall and per queue."""
        return self._backend().counts()

    def workers(self) -> list[WorkerInfo]:
        """The workers that are alive (recent heartbeat)."""
        return self._backend().workers()

    def quiet_worker(self, worker_id: str) -> WorkerInfo:
        """Ask a live worker to claim no new jobs: it finishes those running, hands back the
        ones it held ready, and stays up (heartbeating, shown as quiet) until resumed or
        stopped. It follows at its next heartbeat. WorkerNotFound for an unknown or gone
        worker, WorkerStateConflict for a stopping one."""
        return self._request_worker(worker_id, "quiet")

    def stop_worker(self, worker_id: str) -> WorkerInfo:
        """Ask a live worker to shut down as on SIGTERM: it claims nothing new, lets running
        jobs finish within its shutdown_timeout (returning the rest to the queue), then
        exits. It follows at its next heartbeat. WorkerNotFound for an unknown or gone
        worker."""
        return self._request_worker(worker_id, "stop")

    def resume_worker(self, worker_id: str) -> WorkerInfo:
        """Let a quieted worker claim jobs again (nothing changes for a running one).
        WorkerNotFound for an unknown or gone worker, WorkerStateConflict for a stopping
        one."""
        return self._request_worker(worker_id, "resume")

    def request_worker(self, worker_id: str, action: str) -> WorkerInfo:
        """`quiet_worker`, `stop_worker` or `resume_worker` by the action's name."""
        return self._request_worker(worker_id, check_worker_action(action))

    def _request_worker(self, worker_id: str, action: WorkerAction) -> WorkerInfo:
        problem = text_problem(worker_id) if worker_id else "it is empty"
        if problem:
            raise WorkerNotFound(f"no worker has id {worker_id[:80]!r}: {problem}")
        seen_after = self._clock() - timedelta(seconds=self._worker_stale_after())
        worker = self._backend().request_worker(worker_id, action, seen_after)
        self._on_worker_request(worker_id)
        return worker

    def queues(self) -> list[QueueStatus]:
        """Every queue that is declared (here, or with settings in the store), has jobs, or
        is paused, by name, with its settings as stored."""
        found = {q.name: q for q in self._backend().queues(self._clock())}
        names = found.keys() | self._declared_queues().keys()
        return [
            QueueStatus.of(found.get(name) or QueueInfo(name, 0, 0, 0, False, None))
            for name in sorted(names)
        ]

    def queue(self, name: str, *, known: bool = True) -> QueueStatus:
        """One queue's status (a queue the store has nothing of runs with the defaults);
        QueueNotFound for a queue nobody knows, unless `known` is False."""
        check_queue(name)
        for queue in self.queues():
            if queue.name == name:
                return queue
        if known:
            self._require_queue(name)
        return QueueStatus.of(QueueInfo(name, 0, 0, 0, False, None))

    def set_queue_settings(
        self, name: str, changes: Mapping[str, object], *, create: bool = False
    ) -> QueueStatus:
        """Change a queue's settings for the whole fleet (workers apply them at their next
        claim, producers at their next enqueue), marking them operator-set: code declarations
        no longer override them (docs/flow-control.md). `changes` maps setting names
        (concurrency, max_size, when_full) to values, None meaning no limit; each is checked
        by `model.validation.check_queue_changes` (InvalidQueueSettings). An unknown queue is
        refused with QueueNotFound unless `create`."""
        check_queue(name)
        values = check_queue_changes(changes)
        if not values:
            raise InvalidQueueSettings(
                f"no setting to change for queue {name!r}: give concurrency, max_size or when_full"
            )
        if not create:
            self._require_queue(name)
        change = QueueChange.by_operator(**values)
        self._backend().change_queue_settings(name, change, self._clock())
        return self.queue(name, known=False)

    def reset_queue_settings(self, name: str) -> QueueStatus:
        """Hand a queue's settings back to code: its operator marks are cleared and its
        settings become this app's declaration of it (the defaults when it declares none),
        until a process declaring it otherwise opens its store. QueueNotFound for an unknown
        queue."""
        check_queue(name)
        self._require_queue(name)
        declared = self._declared_queues().get(name, QueueSettings())
        self._backend().change_queue_settings(name, QueueChange.reset(declared), self._clock())
        return self.queue(name, known=False)

    def pause_queue(self, name: str, *, create: bool = False) -> None:
        """Stop every worker claiming this queue's jobs (running ones finish). A queue nobody
        knows (no jobs, not declared, no job of the app on it) is refused with QueueNotFound,
        so a typo does not pause a phantom queue, unless `create` (pause it before its first
        job arrives)."""
        check_queue(name)
        if not create:
            self._require_queue(name)
        self._backend().set_queue_paused(name, True, self._clock())

    def resume_queue(self, name: str) -> None:
        """Let workers claim this queue's jobs again (QueueNotFound for an unknown queue)."""
        self._require_queue(name)
        self._backend().set_queue_paused(name, False, self._clock())

    def _require_queue(self, name: str) -> None:
        known = {q.name for q in self.queues()} | self._job_queues()
        if name not in known:
            shown = ", ".join(sorted(known)) or "none yet"
            raise QueueNotFound(
                f"no queue is named {name!r} (known queues: {shown}); to pause a queue or set "
                "its settings before its first job, ask for it to be created "
                "(conveyor queues pause NAME --create, conveyor queues set NAME ... --create)"
            )

    def throughput(self, minutes: int = 60) -> list[Throughput]:
        """Completed and failed jobs per minute over the last `minutes` (empty ones left out)."""
        since = self._clock() - timedelta(minutes=minutes)
        return self._backend().throughput(since.replace(second=0, microsecond=0))

    def history(self, span: str = "1h", queue: str | None = None) -> list[HistoryPoint]:
        """Finished jobs over the last hour (`"1h"`, by minute), day (`"24h"`, by 15 minutes)
        or week (`"7d"`, by hour), of every queue or of `queue`: every point of the range,
        oldest first, empty ones included, the last one still open. Kept in the store per
        minute for `history_retention` (7 days), after the jobs themselves are pruned."""
        found, name = parse_range(span), check_history_queue(queue)
        now = self._clock()
        until = floor_to(now, found.step) + found.step
        since = until - found.span
        points = self._backend().history(since, until, found.step, name)
        return series(points, now, found)

    def cancel(self, job_id: str) -> Job:
        """Cancel a job: a waiting one never runs; a running one is asked to stop. A finished
        job raises JobStateConflict."""
        current = self.require(job_id)
        if current.is_finished:
            raise JobStateConflict(f"job {job_id} is already {current.state}: nothing to cancel")
        job = self._backend().cancel(job_id, self._clock())
        if job is None:
            return self.require(job_id)
        if job.state is JobState.RUNNING and job.cancel_requested:
            self._on_cancel_requested(job_id)
        return job

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, with a fresh attempt budget."""
        current = self.require(job_id)
        if current.state not in RETRYABLE_STATES:
            raise JobStateConflict(
                f"job {job_id} is {current.state}: only failed or cancelled jobs can be retried"
            )
        job = self._backend().retry(job_id, self._clock())
        return job if job is not None else self.require(job_id)

    def run_now(self, job_id: str) -> Job:
        """Make a scheduled job (delayed, or waiting for its next attempt) due now; its attempt
        count and errors are kept. Another state raises JobStateConflict."""
        current = self.require(job_id)
        if current.state is not JobState.SCHEDULED:
            raise JobStateConflict(
                f"job {job_id} is {current.state}: only scheduled jobs can be run now"
            )
        job = self._backend().run_now(job_id, self._clock())
        return job if job is not None else self.require(job_id)

    def delete(self, job_id: str) -> None:
        """Delete a job that is not running (cancel a running job first)."""
        current = self.require(job_id)
        if current.state is JobState.RUNNING:
            raise JobStateConflict(f"job {job_id} is running: cancel it first, then delete it")
        if not current.is_finished:  # cancelled first, so the jobs waiting on it are decided
            self._backend().cancel(job_id, self._clock())
        self._backend().delete(job_id)

    def purge(self, finished_before: datetime, *, failed: bool = True) -> int:
        """Delete jobs that finished before `finished_before`: completed, cancelled, skipped
        and (unless `failed` is False) failed ones. Returns how many were deleted."""
        failed_before = finished_before if failed else datetime(1970, 1, 1, tzinfo=UTC)
        backend = self._backend()
        # count the closed minutes into the history first, as the sweeper does before a prune
        backend.roll_up_history(floor_to(self._clock() - ROLL_UP_DELAY, timedelta(minutes=1)))
        return backend.prune(finished_before, failed_before)

    def count_purgeable(
        self, finished_before: datetime, *, failed: bool = True
    ) -> dict[JobState, int]:
        """How many jobs `purge` with the same arguments would delete now, by state (states
        with none left out)."""
        failed_before = finished_before if failed else datetime(1970, 1, 1, tzinfo=UTC)
        return self._backend().count_prunable(finished_before, failed_before)

    def list(
        self,
        *,
        state: str | JobState | Iterable[str | JobState] | None = None,
        name: str | None = None,
        queue: str | None = None,
        search: str | None = None,
        page: int = 1,
        per_page: int = 50,
        name_contains: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        finished_after: datetime | str | None = None,
        finished_before: datetime | str | None = None,
        worker: str | None = None,
        error_kind: str | None = None,
    ) -> Page:
        """A page of jobs, newest first. Filters: state(s), exact name, queue, `search` (text
        in the id, name, arguments, metadata or last error message), `name_contains`, created
        and finished time ranges (datetimes, ISO 8601 text or durations before now: "2h"),
        the running job's `worker` and the last error's `error_kind` (model/filters.py)."""
        if page < 1 or not 1 <= per_page <= 1000:
            raise InvalidFilter("page must be ≥ 1 and per_page between 1 and 1000")
        for label, text in (("name", name), ("queue", queue)):
            problem = None if text is None else text_problem(text)
            if problem:
                raise InvalidFilter(f"the {label} filter {text!r} matches no job: {problem}")
        checked = check_filter(
            self._clock(),
            search=search,
            name_contains=name_contains,
            created_after=created_after,
            created_before=created_before,
            finished_after=finished_after,
            finished_before=finished_before,
            worker=worker,
            error_kind=error_kind,
        )
        query = JobFilter(
            parse_states(state), name, queue, checked.search, page, per_page,
            checked.name_contains, checked.created_after, checked.created_before,
            checked.finished_after, checked.finished_before, checked.worker, checked.error_kind,
        )  # fmt: skip
        return self._backend().list_jobs(query)


def parse_states(
    state: str | JobState | Iterable[str | JobState] | None,
) -> frozenset[JobState] | None:
    """States from a name, a comma-separated list or an iterable; unknown names are refused."""
    if state is None:
        return None
    items: Iterable[str | JobState]
    items = state.split(",") if isinstance(state, str) else state
    states = set()
    for item in items:
        try:
            states.add(JobState(str(item).strip()))
        except ValueError:
            known = ", ".join(s.value for s in JobState)
            raise InvalidFilter(f"unknown job state {item!r}; states are: {known}") from None
    return frozenset(states)
