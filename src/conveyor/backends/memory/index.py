"""The memory store's jobs and their indexes, all behind one lock, and the bound on waiting jobs.

`JobIndex` holds every job, the per-queue heaps of waiting jobs, the unique-key index, the counts
and the heaps of finished jobs that pruning walks; `enqueue` lives here because it is where the
bound (`max_queue_size`, with `queue_full` "wait" or "refuse") applies. `operators.py` and
`maintenance.py` add verbs as subclasses, and `MemoryBackend` in `backend.py` combines them.

Nothing here touches I/O or reads the job clock (`now` always comes from the caller); the only
clock read is `time.monotonic()` to bound how long a full queue makes `enqueue` wait.

Waiting jobs are indexed lazily: each one owns a token, its heap entries carry the token, and an
entry whose token is no longer the job's live token is skipped (and dropped) when it reaches the
top. That keeps claim, cancel and delete O(log n) without searching the heaps.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from conveyor.backends.memory.edges import Edges, Graph, WorkflowRow
from conveyor.backends.memory.recurring import RecurringTable
from conveyor.backends.records import WorkerInfo
from conveyor.backends.subscribers import Subscribers
from conveyor.errors import ConfigurationError, DuplicateJobId, InvalidWorkflow, QueueFull
from conveyor.model.dependencies import settle, unknown_parent_message
from conveyor.model.job import FINISHED_STATES, Enqueued, Job, JobState, NewJob
from conveyor.model.queues import QueueSettings, StoredQueue, full_message
from conveyor.model.rates import Bucket

# Rebuild a queue's heaps when dead entries outnumber live ones by this much.
_COMPACT_SLACK = 1024

DueEntry = tuple[int, datetime, str, int]  # (-priority, run_at, id, token)
_FutureEntry = tuple[datetime, int, str, int]  # (run_at, -priority, id, token)
TimedEntry = tuple[datetime, str]  # (time, id)


class QueueIndex:
    """The waiting jobs of one queue, and how many of its jobs are running."""

    __slots__ = ("due", "future", "live", "name", "running")

    def __init__(self, name: str) -> None:
        self.name = name
        self.due: list[DueEntry] = []  # run_at <= some `now` seen: ordered for claiming
        self.future: list[_FutureEntry] = []  # not yet due: ordered by when they become due
        self.live = 0
        self.running = 0


class JobIndex:
    """Every job of the memory store, indexed, behind one lock; and `enqueue`, which the bound
    on waiting jobs applies to. `MemoryBackend` documents the arguments."""

    def __init__(
        self,
        max_queue_size: int = 10_000,
        queue_full: Literal["wait", "refuse"] = "wait",
        queue_full_timeout: float = 5.0,
    ) -> None:
        if max_queue_size < 0:
            raise ConfigurationError("max_queue_size must be 0 (no cap) or a positive number")
        if queue_full not in ("wait", "refuse"):
            raise ConfigurationError("queue_full must be 'wait' or 'refuse'")
        if queue_full_timeout < 0:
            raise ConfigurationError("queue_full_timeout must be zero or more seconds")
        self.max_queue_size = max_queue_size
        self.queue_full = queue_full
        self.queue_full_timeout = queue_full_timeout

        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)  # waiting jobs left: enqueue may fit
        self._arrival = threading.Condition(self._lock)  # work may have become runnable
        self._arrivals = 0
        self._subscribers = Subscribers()

        self._jobs: dict[str, Job] = {}
        self._queues: dict[str, QueueIndex] = {}
        self._tokens: dict[str, int] = {}  # waiting job id -> token of its live heap entries
        self._token_source = itertools.count()
        self._running: set[str] = set()
        self._unique: dict[str, str] = {}  # unique_key -> id of the active job holding it
        self._scheduled: list[TimedEntry] = []  # (run_at, id) of scheduled jobs
        self._finished_short: list[TimedEntry] = []  # (finished_at, id), completed-like
        self._finished_failed: list[TimedEntry] = []  # (finished_at, id), failed
        self._counts: dict[tuple[str, JobState], int] = {}
        self._workers: dict[str, WorkerInfo] = {}
        self._held: dict[str, int] = {}  # concurrency_key -> running jobs holding it
        # rate windows: the latest starts (epoch seconds, oldest first) per queue or rate_key
        self._windows: dict[Bucket, tuple[float, ...]] = {}
        self._paused: set[str] = set()
        self._settings: dict[str, StoredQueue] = {}  # queue settings kept in the store
        self._recurring = RecurringTable()
        self._edges = Edges()
        self._graph = Graph(self)
        self._workflows: dict[str, WorkflowRow] = {}
        # history (model/history.py): rolled-up rows by (queue, minute), and up to where
        self._history: dict[tuple[str, datetime], list[float]] = {}
        self._history_mark: datetime | None = None

    # producers -------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` all at once, in order; an active unique_key returns the existing job.

        The whole batch fits or none of it is stored: a full store waits for room or raises
        `QueueFull` (see `MemoryBackend`).
        """
        return self._enqueue(jobs, now, None)

    def _enqueue(
        self, jobs: Sequence[NewJob], now: datetime, workflow: WorkflowRow | None
    ) -> list[Enqueued]:
        if not jobs:
            return []
        with self._lock:
            deadline: float | None = None
            while True:
                plan, new_count = self._plan(jobs)
                full = self._full_queue(jobs, plan)
                if full is None and self._fits(new_count):
                    break
                if full is not None:
                    bound, settings, asked = full
                    waiting = self._queues[bound].live if bound in self._queues else 0
                    assert settings.max_size is not None
                    if settings.when_full == "refuse" or asked > settings.max_size:
                        raise QueueFull(
                            full_message(bound, settings.max_size, waiting, asked, waited=None)
                        )
                elif self.queue_full == "refuse" or new_count > self.max_queue_size:
                    raise QueueFull(self._full_message(new_count, waited=False))
                if deadline is None:
                    deadline = time.monotonic() + self.queue_full_timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if full is not None:
                        assert full[1].max_size is not None
                        raise QueueFull(
                            full_message(
                                full[0], full[1].max_size, waiting, full[2],
                                waited=self.queue_full_timeout,
                            )
                        )  # fmt: skip
                    raise QueueFull(self._full_message(new_count, waited=True))
                self._space.wait(remaining)

            if workflow is not None:
                self._workflows[workflow.id] = workflow
            results: list[Enqueued] = []
            made: dict[str, Job] = {}  # unique_key -> job created earlier in this batch
            ended_parents: set[str] = set()  # parents already finished when named
            for new, existing in zip(jobs, plan, strict=True):
                if existing is not None:
                    results.append(Enqueued(job=existing, created=False))
                    continue
                if new.unique_key is not None and new.unique_key in made:
                    results.append(Enqueued(job=made[new.unique_key], created=False))
                    continue
                job = self._store_new(new, now)
                if job.unique_key is not None:
                    made[job.unique_key] = job
                if workflow is not None:
                    workflow.step_ids[job.id] = None
                for parent_id in new.after:
                    if self._jobs[parent_id].state in FINISHED_STATES:
                        ended_parents.add(parent_id)
                results.append(Enqueued(job=job, created=True))
            if ended_parents:
                settle(self._graph, sorted(ended_parents), now, {job.id for job in jobs})
                results = [Enqueued(self._jobs[r.job.id], r.created) for r in results]
            if new_count:
                self._announce()
        if new_count:
            self._call_back()
        return results

    def _plan(self, jobs: Sequence[NewJob]) -> tuple[list[Job | None], int]:
        """For each request, the active job it duplicates (or None), and how many are new."""
        plan: list[Job | None] = []
        keys: set[str] = set()
        ids: set[str] = set()
        new_count = 0
        for new in jobs:
            key = new.unique_key
            if key is not None and key in self._unique:
                plan.append(self._jobs[self._unique[key]])
                continue
            plan.append(None)
            if key is not None:
                if key in keys:
                    continue
                keys.add(key)
            if new.id in self._jobs or new.id in ids:
                raise DuplicateJobId(
                    f"a job with id {new.id!r} already exists: give each job its own id"
                )
            for parent_id in new.after:
                if parent_id not in ids and parent_id not in self._jobs:
                    raise InvalidWorkflow(unknown_parent_message(new, parent_id))
            ids.add(new.id)
            new_count += 1
        return plan, new_count

    @property
    def enqueue_may_wait(self) -> bool:
        """Whether an enqueue may block waiting for room: the store-wide cap in wait mode, or
        a queue bounded with when_full="wait" (async producers then enqueue on a thread)."""
        if self.max_queue_size and self.queue_full == "wait":
            return True
        return any(
            kept.settings.max_size is not None and kept.settings.when_full == "wait"
            for kept in list(self._settings.values())
        )

    def _full_queue(
        self, jobs: Sequence[NewJob], plan: Sequence[Job | None]
    ) -> tuple[str, QueueSettings, int] | None:
        """The first queue (by name) whose stored `max_size` the new jobs of this batch would
        pass: (queue, its settings, how many new jobs it was asked to take); None if all fit."""
        bounded = {
            name for name, kept in self._settings.items() if kept.settings.max_size is not None
        }
        if not bounded:
            return None
        asked: dict[str, int] = {}
        keys: set[str] = set()
        for new, existing in zip(jobs, plan, strict=True):
            if existing is not None or new.after:  # a step waiting on its parents: not queued
                continue
            if new.unique_key is not None:
                if new.unique_key in keys:
                    continue  # it resolves to the batch's first job of that key
                keys.add(new.unique_key)
            if new.queue in bounded:
                asked[new.queue] = asked.get(new.queue, 0) + 1
        for queue in sorted(asked):
            stored = self._settings.get(queue)
            if stored is None or stored.settings.max_size is None:
                continue
            index = self._queues.get(queue)
            waiting = index.live if index is not None else 0
            if waiting + asked[queue] > stored.settings.max_size:
                return queue, stored.settings, asked[queue]
        return None

    def _fits(self, new_count: int) -> bool:
        return not self.max_queue_size or len(self._tokens) + new_count <= self.max_queue_size

    def _full_message(self, new_count: int, *, waited: bool) -> str:
        size = self.max_queue_size
        if new_count > size:
            return (
                f"a batch of {new_count} new jobs can never fit in the in-memory queue "
                f"(max_queue_size={size}): enqueue smaller batches or raise max_queue_size"
            )
        state = f"{len(self._tokens)} of max_queue_size={size} jobs are waiting"
        if waited:
            return (
                f"the in-memory queue is still full after waiting {self.queue_full_timeout}s "
                f"({state}, {new_count} more asked): add workers, raise max_queue_size, "
                "or raise queue_full_timeout"
            )
        return (
            f"the in-memory queue is full ({state}, {new_count} more asked): retry later, "
            "raise max_queue_size, or set queue_full='wait'"
        )

    # indexes (all called with the lock held) -------------------------------------------------
    def _store_new(self, new: NewJob, now: datetime) -> Job:
        """Store a new job and index it as waiting (or as finished, for a skipped run)."""
        job = new.to_job(now)
        self._put(job)
        if job.state in FINISHED_STATES:
            self._settle(job)
            return job
        if job.unique_key is not None:
            self._unique[job.unique_key] = job.id
        if new.after:
            self._edges.add(job.id, new.after, new.on_parent_failure)
            return job  # waiting: indexed for claims once released
        self._add_waiting(job, now)
        return job

    def _put(self, job: Job, old: Job | None = None) -> None:
        """Store `job`, replacing `old` (the same job's previous snapshot), and keep counts."""
        counts = self._counts
        if old is not None:
            key = (old.queue, old.state)
            left = counts[key] - 1
            if left:
                counts[key] = left
            else:
                del counts[key]
        self._jobs[job.id] = job
        key = (job.queue, job.state)
        counts[key] = counts.get(key, 0) + 1

    def _remove(self, job: Job) -> None:
        del self._jobs[job.id]
        self._edges.forget(job.id)
        if job.workflow_id is not None and (row := self._workflows.get(job.workflow_id)):
            row.step_ids.pop(job.id, None)
            if not row.step_ids:
                del self._workflows[row.id]
        key = (job.queue, job.state)
        left = self._counts[key] - 1
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]

    def _add_waiting(self, job: Job, now: datetime) -> None:
        """Index a scheduled or pending job so claim can find it."""
        token = next(self._token_source)
        self._tokens[job.id] = token
        index = self._queues.get(job.queue)
        if index is None:
            index = self._queues[job.queue] = QueueIndex(job.queue)
        index.live += 1
        if job.run_at <= now:
            heapq.heappush(index.due, (-job.priority, job.run_at, job.id, token))
        else:
            heapq.heappush(index.future, (job.run_at, -job.priority, job.id, token))
        if job.state is JobState.SCHEDULED:
            heapq.heappush(self._scheduled, (job.run_at, job.id))

    def _drop_waiting(self, job_id: str, index: QueueIndex) -> None:
        """Unindex a waiting job: its heap entries become dead and are skipped later."""
        if self._tokens.pop(job_id, None) is None:
            return
        index.live -= 1
        if len(index.due) + len(index.future) > 2 * index.live + _COMPACT_SLACK:
            index.due = [e for e in index.due if self._tokens.get(e[2]) == e[3]]
            index.future = [e for e in index.future if self._tokens.get(e[2]) == e[3]]
            heapq.heapify(index.due)
            heapq.heapify(index.future)

    def _mature(self, index: QueueIndex, now: datetime) -> None:
        """Move entries that are due at `now` from the future heap to the due heap."""
        future, tokens = index.future, self._tokens
        while future and future[0][0] <= now:
            run_at, neg_priority, job_id, token = heapq.heappop(future)
            if tokens.get(job_id) == token:
                heapq.heappush(index.due, (neg_priority, run_at, job_id, token))

    def _due_top(self, index: QueueIndex, now: datetime) -> DueEntry | None:
        """The best live due entry of a queue, dropping dead ones on the way."""
        due, tokens = index.due, self._tokens
        while due:
            entry = due[0]
            if tokens.get(entry[2]) != entry[3]:
                heapq.heappop(due)
            elif entry[1] > now:
                # A caller with an earlier clock than a previous claim: not due for this one.
                heapq.heappop(due)
                heapq.heappush(index.future, (entry[1], entry[0], entry[2], entry[3]))
            else:
                return entry
        return None

    def _future_top(self, index: QueueIndex) -> datetime | None:
        """When the soonest live not-yet-due job of a queue becomes due."""
        future, tokens = index.future, self._tokens
        while future and tokens.get(future[0][2]) != future[0][3]:
            heapq.heappop(future)
        return future[0][0] if future else None

    def _leave_running(self, job: Job) -> None:
        self._running.discard(job.id)
        self._queues[job.queue].running -= 1
        key = job.concurrency_key
        if key is not None:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def _settle(self, job: Job) -> None:
        """Bookkeeping for a job that just reached a final state, and its dependents."""
        self._record_finished(job)
        if job.id in self._edges.children:
            assert job.finished_at is not None
            settle(self._graph, [job.id], job.finished_at)

    def _record_finished(self, job: Job) -> None:
        """Bookkeeping for a job that just reached a final state (not its dependents)."""
        self._release_unique(job)
        assert job.finished_at is not None
        heap = self._finished_failed if job.state is JobState.FAILED else self._finished_short
        heapq.heappush(heap, (job.finished_at, job.id))

    def _release_unique(self, job: Job) -> None:
        if job.unique_key is not None and self._unique.get(job.unique_key) == job.id:
            del self._unique[job.unique_key]

    def _announce(self) -> None:
        self._arrivals += 1
        self._arrival.notify_all()

    def _call_back(self) -> None:
        """Tell subscribers; called without the lock (a failing callback is logged)."""
        self._subscribers.notify()
