"""What operators ask of the memory store: look-ups, listings, statistics, and the job and
queue actions of the dashboard and `app.jobs` (cancel, retry, delete, pause)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from conveyor.backends.memory.index import JobIndex
from conveyor.backends.records import (
    LIST_COUNT_CAP,
    Counts,
    JobFilter,
    Page,
    QueueInfo,
    Throughput,
    WorkerInfo,
)
from conveyor.model.dependencies import rearm
from conveyor.model.job import QUEUED_STATES, Job, JobState
from conveyor.model.keys import has_key_room
from conveyor.model.lifecycle import RETRYABLE_STATES
from conveyor.model.queues import QueueChange, StoredQueue, merge
from conveyor.model.rates import Bucket, Rate, held_back, key_bucket, queue_bucket, room
from conveyor.model.serialization import dumps
from conveyor.model.workers import WorkerAction, request_of


def _searched(job: Job) -> str:
    """The text a search looks in, lowercased: id, name, args and metadata as JSON (as SQLite
    stores them), the last error's message, apart (a search holds no control character, so
    it never matches across two of them)."""
    last = job.last_error
    message = "" if last is None else last.message
    return "\x1f".join((job.id, job.name, dumps(job.args), dumps(job.metadata), message)).lower()


class OperatorVerbs(JobIndex):
    """The memory store's operator verbs; `MemoryBackend` is made of this and its siblings."""

    # look-ups and statistics -----------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._lock:
            return self._jobs.get(job_id)

    def list_jobs(self, query: JobFilter) -> Page:
        """A page of jobs, newest first (by created_at, then id); text filters ignore case."""
        with self._lock:
            jobs = list(self._jobs.values())
        matching = [
            job for job in jobs if query.matches(job, _searched(job) if query.search else "")
        ]
        matching.sort(key=lambda job: (job.created_at, job.id), reverse=True)
        page = max(query.page, 1)
        per_page = max(query.per_page, 1)
        start = (page - 1) * per_page
        return Page(
            jobs=matching[start : start + per_page],
            total=min(len(matching), LIST_COUNT_CAP),  # capped like the SQL stores
            page=page,
            per_page=per_page,
            total_exact=len(matching) <= LIST_COUNT_CAP,
        )

    def counts(self) -> Counts:
        """Jobs per state and per queue and state; states with no job are left out."""
        by_state: dict[str, int] = {}
        by_queue: dict[str, dict[str, int]] = {}
        with self._lock:
            for (queue, state), n in self._counts.items():
                by_state[state.value] = by_state.get(state.value, 0) + n
                by_queue.setdefault(queue, {})[state.value] = n
        return Counts(by_state=by_state, by_queue=by_queue)

    def queues(self, now: datetime) -> list[QueueInfo]:
        """Every queue with jobs, or paused, by name."""
        with self._lock:
            waiting: dict[str, list[Job]] = {}
            for job_id in self._tokens:
                job = self._jobs[job_id]
                waiting.setdefault(job.queue, []).append(job)
            names = set(self._paused) | {q for q, _ in self._counts}
            names |= {name for name, kept in self._settings.items() if not kept.is_default}
            infos = []
            stamp = now.timestamp()

            def spent(bucket: Bucket, rate_text: str | None) -> bool:
                if rate_text is None:
                    return False
                return not room(self._windows.get(bucket, ()), Rate.parse(rate_text), stamp)

            for name in sorted(names):
                jobs = waiting.get(name, [])
                due_jobs = [j for j in jobs if j.run_at <= now]
                due = [j.run_at for j in due_jobs]
                by_key = sum(
                    1
                    for j in due_jobs
                    if j.concurrency_key is not None
                    and not has_key_room(self._held.get(j.concurrency_key, 0), j.key_concurrency)
                )
                by_rate = sum(
                    1
                    for j in due_jobs
                    if j.rate_key is not None and spent(key_bucket(j.rate_key), j.rate_limit)
                )
                index = self._queues.get(name)
                stored = self._settings.get(name) or StoredQueue(name)
                queue_spent = spent(queue_bucket(name), stored.settings.rate_limit)
                by_key, by_rate = held_back(len(due), by_key, by_rate, queue_spent)
                infos.append(
                    QueueInfo(
                        name,
                        len(jobs),
                        len(due),
                        index.running if index else 0,
                        name in self._paused,
                        min(due) if due else None,
                        stored.settings,
                        stored.operator_set,
                        by_key,
                        by_rate,
                    )
                )
            return infos

    def throughput(self, since: datetime) -> list[Throughput]:
        """Completed and failed jobs per minute since `since`."""
        minutes: dict[datetime, list[int]] = {}
        with self._lock:
            for heap in (self._finished_short, self._finished_failed):
                for finished_at, job_id in heap:
                    job = self._jobs.get(job_id)
                    if job is None or finished_at < since:
                        continue
                    if job.state not in (JobState.COMPLETED, JobState.FAILED):
                        continue
                    minute = finished_at.replace(second=0, microsecond=0)
                    counts = minutes.setdefault(minute, [0, 0])
                    counts[job.state is JobState.FAILED] += 1
        return [Throughput(m, c[0], c[1]) for m, c in sorted(minutes.items())]

    def workers(self) -> list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned, by id."""
        with self._lock:
            return sorted(self._workers.values(), key=lambda worker: worker.id)

    def request_worker(
        self, worker_id: str, action: WorkerAction, seen_after: datetime
    ) -> WorkerInfo:
        """Keep an operator's request of a live worker (`model.workers.request_of`)."""
        with self._lock:
            worker = self._workers.get(worker_id)
            asked = request_of(worker_id, worker, action, seen_after)
            assert worker is not None  # request_of raised otherwise
            self._workers[worker_id] = stored = replace(worker, requested=asked)
            return stored

    # actions ---------------------------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause or resume a queue; resuming wakes waiting workers."""
        with self._lock:
            if paused:
                self._paused.add(name)
                return
            self._paused.discard(name)
            self._announce()
        self._call_back()

    def change_queue_settings(self, name: str, change: QueueChange, now: datetime) -> StoredQueue:
        """Apply `change` to the queue's stored settings (`model.queues.merge`); a raised
        limit or bound wakes waiting workers and producers."""
        with self._lock:
            stored = merge(self._settings.get(name), name, change)
            self._settings[name] = stored
            self._space.notify_all()
            self._announce()
        self._call_back()
        return stored

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Cancel a waiting job now, ask a running one's worker to stop; finished: unchanged."""
        with self._lock:
            job = self._cancel_locked(job_id, now)
            self._space.notify_all()
            return job

    def _cancel_locked(self, job_id: str, now: datetime) -> Job | None:
        job = self._jobs.get(job_id)
        if job is None:
            return None
        if job.state in QUEUED_STATES or job.state is JobState.WAITING:
            if job.state is not JobState.WAITING:
                self._drop_waiting(job_id, self._queues[job.queue])
            done = replace(job, state=JobState.CANCELLED, finished_at=now)
            self._put(done, job)
            self._settle(done)  # its dependents are cancelled too (or run, by their policy)
            return done
        if job.state is JobState.RUNNING and not job.cancel_requested:
            asked = replace(job, cancel_requested=True)
            self._put(asked, job)
            return asked
        return job

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending with a fresh attempt budget, errors kept.

        Unchanged when another active job now holds its unique_key, or in any other state.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return None
            if job.state not in RETRYABLE_STATES:
                return job
            if job.unique_key is not None and job.unique_key in self._unique:
                return job
            again = replace(
                job,
                state=JobState.PENDING,
                attempt=0,
                run_at=now,
                finished_at=None,
                cancel_requested=False,
                result=None,
            )
            self._put(again, job)
            if again.unique_key is not None:
                self._unique[again.unique_key] = again.id
            self._add_waiting(again, now)
            # the operator runs it now, whatever its parents did; its dependents wait again
            self._edges.open.pop(job_id, None)
            self._edges.blocked_by.pop(job_id, None)
            rearm(self._graph, job_id, now)
            self._announce()
        self._call_back()
        return again

    def run_now(self, job_id: str, now: datetime) -> Job | None:
        """A scheduled job becomes pending, due now (attempt and errors kept); else unchanged."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is not JobState.SCHEDULED:
                return job
            self._drop_waiting(job_id, self._queues[job.queue])
            due = replace(job, state=JobState.PENDING, run_at=min(job.run_at, now))
            self._put(due, job)
            self._add_waiting(due, now)  # its old entry in the scheduled heap is skipped
            self._announce()
        self._call_back()
        return due

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state is JobState.RUNNING:
                return False
            if job.state in QUEUED_STATES:
                self._drop_waiting(job_id, self._queues[job.queue])
                self._release_unique(job)
                self._space.notify_all()
            self._remove(job)
            return True
