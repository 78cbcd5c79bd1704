"""SQLiteBackend: the durable default store, shared by the worker processes of one host."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from conveyor.backends.decoding import claim_runnable, decode_claimed
from conveyor.backends.records import (
    LIST_COUNT_CAP,
    SPREAD_MAX,
    Claimed,
    ClaimRequest,
    Counts,
    Heartbeat,
    JobFilter,
    Outcome,
    Page,
    QueueInfo,
    Report,
    Throughput,
    WorkerInfo,
)
from conveyor.backends.sqlite.database import Database
from conveyor.backends.sqlite.history import HistoryVerbs
from conveyor.backends.sqlite.recurring import RecurringVerbs
from conveyor.backends.sqlite.rows import (
    dt,
    error_json,
    job_from_row,
    job_row,
    json_list,
    logs_json,
    opt_ts,
    parse_logs,
    ts,
    worker_from_row,
    worker_row,
)
from conveyor.backends.sqlite.sql import Q
from conveyor.backends.sqlite.workflows import (
    SQLiteGraph,
    WorkflowVerbs,
    forget,
    link,
    rearm_after_retry,
)
from conveyor.backends.subscribers import Subscribers
from conveyor.errors import DuplicateJobId, QueueFull, StoreUnavailable
from conveyor.model.dependencies import settle
from conveyor.model.job import (
    QUEUED_STATES,
    Enqueued,
    Job,
    JobState,
    NewJob,
)
from conveyor.model.keys import choose_claimable
from conveyor.model.lifecycle import LostLease, after_lost_lease
from conveyor.model.logs import append_logs
from conveyor.model.queues import (
    BoundExceeded,
    QueueChange,
    QueueSettings,
    StoredQueue,
    merge,
)
from conveyor.model.rates import (
    Bucket,
    Rate,
    full_until,
    held_back,
    key_bucket,
    queue_bucket,
    record,
    room,
)
from conveyor.model.rates import rooms as rooms_of
from conveyor.model.serialization import dumps
from conveyor.model.workers import WorkerAction, request_of

log = logging.getLogger(__name__)

WAIT_POLL = 0.002  # seconds between PRAGMA data_version probes in wait_for_jobs
PRUNE_BATCH = 1000  # rows deleted per prune transaction, so workers never wait long


class SQLiteBackend(WorkflowVerbs, RecurringVerbs, HistoryVerbs):
    """Jobs in one SQLite file in WAL mode: durable, and safe for several worker processes
    and threads on one host. Every write is one short BEGIN IMMEDIATE transaction."""

    blocking = True

    def __init__(self, path: str, *, queue_full_timeout: float = 5.0) -> None:
        self.path = path
        #: seconds an enqueue into a full queue with when_full="wait" waits for room
        self.queue_full_timeout = queue_full_timeout
        self._db = Database(path)
        self._subscribers = Subscribers()

    def __repr__(self) -> str:
        return f"SQLiteBackend({self.path!r})"

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, switch to WAL and apply missing migrations. Idempotent."""
        self._db.open()

    def close(self) -> None:
        """Close the connections of every thread. Idempotent."""
        self._db.close()

    def migrate(self) -> list[int]:
        """Apply missing migrations now (open or not); returns the versions applied."""
        return self._db.migrate()

    def schema_version(self) -> int | None:
        """The latest migration applied to the file (None before the first, or no file)."""
        return self._db.schema_version()

    # producers -------------------------------------------------------------------------------
    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` in one transaction, in order; an active unique_key returns the existing
        job with created=False. A queue's stored `max_size` is checked in the same (write-
        locked) transaction, so concurrent producers cannot pass it; a full queue refuses the
        whole batch, or waits up to `queue_full_timeout` for room (`when_full="wait"`)."""
        return self._enqueue(jobs, now)

    def _enqueue(
        self,
        jobs: Sequence[NewJob],
        now: datetime,
        workflow: tuple[str, str] | None = None,
    ) -> list[Enqueued]:
        if not jobs:
            return []
        stamped: list[Job] = [new.to_job(now) for new in jobs]
        deadline: float | None = None
        while True:
            try:
                results = self._store(jobs, stamped, now, workflow)
                break
            except BoundExceeded as full:
                if full.when_full == "refuse" or full.asked > full.max_size:
                    raise QueueFull(full.message(None)) from None
                if deadline is None:
                    deadline = time.monotonic() + self.queue_full_timeout
                    self._db.changed()  # from now on, a commit elsewhere may make room
                if not self._wait_for_room(deadline):
                    raise QueueFull(full.message(self.queue_full_timeout)) from None
        if any(result.created for result in results):
            self._notify()
        return results

    def _store(
        self,
        jobs: Sequence[NewJob],
        stamped: list[Job],
        now: datetime,
        workflow: tuple[str, str] | None,
    ) -> list[Enqueued]:
        """Insert the batch in one write transaction, then check the bounds of its queues
        (raising BoundExceeded, which rolls it all back)."""
        plain = [
            job_row(job, new.after, new.on_parent_failure)
            for new, job in zip(jobs, stamped, strict=True)
            if job.unique_key is None
        ]
        results = [Enqueued(job, True) for job in stamped]
        linked = workflow is not None or any(new.after for new in jobs)
        queues = json_list(sorted({job.queue for job in stamped}))
        try:
            with self._db.write() as conn:
                if workflow is not None:
                    conn.execute(Q["insert_workflow"], (*workflow, ts(now)))
                if plain:
                    conn.executemany(Q["insert_job"], plain)
                for index, job in enumerate(stamped):
                    if job.unique_key is None:
                        continue
                    if conn.execute(Q["insert_unique_job"], job_row(job)).rowcount == 0:
                        key = (job.unique_key,)
                        row = conn.execute(Q["active_by_unique_key"], key).fetchone()
                        results[index] = Enqueued(job_from_row(row), False)
                if linked and link(conn, jobs, now):
                    results = _reread(conn, results)
                for name, max_size, when_full in conn.execute(Q["queue_bounds"], (queues,)):
                    waiting = conn.execute(Q["count_waiting"], {"queue": name}).fetchone()[0]
                    if waiting > max_size:
                        asked = sum(
                            r.created and r.job.queue == name and r.job.state in QUEUED_STATES
                            for r in results
                        )
                        raise BoundExceeded(name, max_size, waiting - asked, asked, when_full)
        except sqlite3.IntegrityError as exc:
            taken = self._taken_id(stamped)
            if taken is None:
                raise
            raise DuplicateJobId(
                f"a job with id {taken!r} already exists: give each job its own id"
            ) from exc
        return results

    def _wait_for_room(self, deadline: float) -> bool:
        """Wait until another connection commits (a claim, a cancel, a delete may have made
        room: PRAGMA data_version, as `wait_for_jobs`); False once `deadline` passed."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(WAIT_POLL, remaining))
            if self._db.changed():
                return True

    def _taken_id(self, jobs: Sequence[Job]) -> str | None:
        """The first id of a refused batch that is repeated in it or already stored."""
        seen: set[str] = set()
        for job in jobs:
            if job.id in seen:
                return job.id
            seen.add(job.id)
        with self._db.read() as conn:
            row = conn.execute(Q["existing_ids"], (json_list(seen),)).fetchone()
        return None if row is None else str(row[0])

    # workers ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> Claimed:
        """Atomically take due jobs for a worker, respecting queue limits."""
        return claim_runnable(lambda: self._claim_rows_decoded(request), self.finish)

    def _claim_rows_decoded(self, request: ClaimRequest) -> tuple[Claimed, list[Outcome]]:
        """One claim: the runnable jobs, and a failed outcome for each malformed row."""
        now = ts(request.now)
        if request.limit <= 0:
            return Claimed([], self._next_run_at(request, now)), []
        # A read first: an idle worker finds nothing without taking the write lock.
        with self._db.read() as conn:
            found, _ = self._candidates(conn, request, now)
        rows: list[sqlite3.Row] = []
        if found:
            with self._db.write() as conn:
                ids, windows = self._candidates(conn, request, now)
                if windows:  # the starts of rate-limited jobs, in the claim's transaction
                    conn.executemany(Q["save_rate_window"], windows)
                if ids:
                    params = {
                        "ids": json_list(ids),
                        "worker_id": request.worker_id,
                        "lease_expires_at": ts(request.lease_expires_at),
                        "now": now,
                    }
                    rows = conn.execute(Q["claim_jobs"], params).fetchall()
        jobs, rejected = decode_claimed(rows, job_from_row, request)
        # a full batch means the worker claims again at once: it needs no wake-up time
        upcoming = self._next_run_at(request, now) if len(jobs) < request.limit else None
        return Claimed(jobs, upcoming), rejected

    def _next_run_at(self, request: ClaimRequest, now: float) -> datetime | None:
        """The next scheduled job's run_at, or when a spent rate window opens, if sooner."""
        queues = None if request.queues is None else json_list(sorted(request.queues))
        with self._db.read() as conn:
            found = conn.execute(Q["next_run_at"], {"now": now, "queues": queues}).fetchone()
            opens = conn.execute(Q["next_window"], {"now": now}).fetchone()
        times = [t for t in (found and found[0], opens and opens[0]) if t is not None]
        return dt(min(times)) if times else None

    @staticmethod
    def _candidates(
        conn: sqlite3.Connection, request: ClaimRequest, now: float
    ) -> tuple[list[str], list[dict[str, Any]]]:
        """Ids of the due jobs to claim, in claim order, within the queue limits, the keys'
        limits and the rates; and the rate windows to save if they are claimed."""
        limit, queues = request.limit, request.queues
        paused: set[str] = set()
        caps = dict(request.queue_limits)
        rated: dict[str, Rate] = {}
        for name, is_paused, concurrency, rate_limit in conn.execute(Q["claim_settings"]):
            if is_paused:
                paused.add(name)
                continue
            if concurrency is not None:  # the stored limit, or the caller's when smaller
                caps[name] = min(concurrency, caps.get(name, concurrency))
            if rate_limit is not None:
                rated[name] = Rate.parse(rate_limit)
        limited = sorted(
            queue
            for queue in caps.keys() | rated.keys()
            if (queues is None or queue in queues) and queue not in paused
        )
        rates: dict[Bucket, Rate] = {queue_bucket(q): rated[q] for q in limited if q in rated}
        windows = _rate_windows(conn, rates)
        candidates: list[tuple[Any, ...]] = []
        rooms: dict[str, int] = {}
        excluded = caps.keys() | rated.keys() | paused
        if queues is None and excluded:
            # leaving queues out of the walk of all queues' due jobs would pass over their
            # backlog (a paused queue's million jobs) at every claim: read the others one by
            # one, unless there are so many queues that walking is the cheaper of the two
            waiting = [
                row[0] for row in conn.execute(Q["waiting_queues"], {"most": SPREAD_MAX + 1})
            ]
            if len(waiting) <= SPREAD_MAX:
                queues = frozenset(waiting)
        if queues is None:
            params = {"now": now, "excluded": json_list(sorted(excluded)), "limit": limit}
            candidates += conn.execute(Q["candidates_except"], params).fetchall()
        else:
            # A worker of named queues reads each queue's own index: walking the claim-ordered
            # index of all queues would pass over every due job of the others first.
            rooms = dict.fromkeys(sorted(queues - caps.keys() - rated.keys() - paused), limit)
        if limited:
            params = {"queues": json_list(limited)}
            running = dict(conn.execute(Q["count_running"], params).fetchall())
            for queue in limited:
                room_left = limit
                if queue in caps:
                    room_left = min(room_left, caps[queue] - running.get(queue, 0))
                if queue in rated:
                    bucket = queue_bucket(queue)
                    room_left = min(room_left, room(windows.get(bucket, ()), rated[queue], now))
                rooms[queue] = room_left
        for queue, room_left in sorted(rooms.items()):
            if room_left > 0:
                params = {"queue": queue, "now": now, "limit": room_left}
                candidates += conn.execute(Q["candidates_of_queue"], params).fetchall()
        if len(rooms) + (queues is None) > 1:  # several queries' rows, each in claim order
            # a priority that is not an integer (a malformed row) sorts as 0 here, and the
            # claim then fails that job alone (backends/decoding.py)
            candidates.sort(key=lambda c: (-c[1] if type(c[1]) is int else 0, c[2], c[0]))
        # keys with more than one slot: how many of their jobs run (the write transaction
        # holds the count); a key of one slot has none running, or it was not a candidate
        shared = sorted({c[3] for c in candidates if c[4] is not None and c[3] is not None})
        running_keys: dict[str, int] = {}
        if shared:
            params = {"keys": json_list(shared)}
            running_keys = dict(conn.execute(Q["running_per_key"], params).fetchall())
        # the windows of the candidates' own rates (their keys' windows not spent: the query
        # passed over those), read in the same transaction
        keyed = {key_bucket(c[7]): c[6] for c in candidates if c[7] is not None}
        key_rates = {bucket: Rate.parse(text) for bucket, text in keyed.items()}
        windows.update(_rate_windows(conn, key_rates))
        rates.update(key_rates)
        chosen = choose_claimable(
            ((c[0], c[3], c[4] or 1, _buckets(c, rates)) for c in candidates),
            limit,
            running_keys,
            rooms_of(windows, rates, now),
        )
        if not rates or not chosen:
            return chosen, []
        picked = set(chosen)
        starts: dict[Bucket, int] = {}
        for c in candidates:
            if c[0] in picked:
                for bucket in _buckets(c, rates):
                    starts[bucket] = starts.get(bucket, 0) + 1
        saves = []
        for bucket, n in starts.items():
            kept = record(windows.get(bucket, ()), rates[bucket], now, n)
            saves.append(
                {
                    "scope": bucket[0],
                    "name": bucket[1],
                    "starts": dumps(kept),
                    "full_until": full_until(kept, rates[bucket]),
                }
            )
        return chosen, saves

    def finish(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Apply many attempt outcomes in one transaction; returns the dropped ids."""
        if not outcomes:
            return []
        params = [_finish_params(outcome) for outcome in outcomes]
        ids = json_list(outcome.job_id for outcome in outcomes)
        dropped: list[str] = []
        applied: list[dict[str, Any]] = []
        with self._db.write() as conn:
            owners = {
                row[0]: (row[1], row[2], row[3])
                for row in conn.execute(Q["running_owners"], (ids,))
            }
            parents: list[str] = []  # jobs others wait on that reached a final state
            for outcome, param in zip(outcomes, params, strict=True):
                owner = owners.get(outcome.job_id)
                if owner is not None and owner[:2] == (outcome.worker_id, outcome.attempt):
                    del owners[outcome.job_id]  # a second outcome for the attempt is dropped
                    applied.append(param)
                    if owner[2] and param["finished_at"] is not None:
                        parents.append(outcome.job_id)
                else:
                    dropped.append(outcome.job_id)
            if applied:
                conn.executemany(Q["finish_job"], applied)
            if parents:
                settle(SQLiteGraph(conn), parents, outcomes[0].now)
        if applied:
            self._notify()
        return dropped

    def report(self, reports: Sequence[Report], max_log_lines: int) -> None:
        """Write buffered progress and logs, keeping at most `max_log_lines` lines a job."""
        if not reports:
            return
        with self._db.write() as conn:
            for report in reports:
                logs = None
                if report.logs:
                    row = conn.execute(Q["job_logs"], (report.job_id,)).fetchone()
                    if row is None:
                        continue
                    kept = append_logs(parse_logs(row[0]), report.logs, max_log_lines, row[1])
                    logs = logs_json(kept)
                params = {
                    "id": report.job_id,
                    "progress": report.progress,
                    "progress_message": report.progress_message,
                    "logs": logs,
                }
                conn.execute(Q["report"], params)

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> Heartbeat:
        """Record the worker alive, extend its running jobs' leases; return the ids among
        `job_ids` whose cancellation was requested and the operator's request of it."""
        ids = json_list(job_ids)
        with self._db.write() as conn:
            requested = conn.execute(Q["upsert_worker"], worker_row(worker)).fetchone()[0]
            if not job_ids:
                return Heartbeat(set(), requested)
            params = {"ids": ids, "worker_id": worker.id, "lease_expires_at": ts(lease_expires_at)}
            conn.execute(Q["extend_leases"], params)
            asked = conn.execute(Q["cancel_requested_among"], {"ids": ids, "worker_id": worker.id})
            return Heartbeat({row[0] for row in asked}, requested)

    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""
        with self._db.write() as conn:
            conn.execute(Q["delete_worker"], (worker_id,))

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block up to `timeout` s; True as soon as another connection (another process, or
        another thread of this one) commits, False at the timeout or when the store closes."""
        deadline = time.monotonic() + timeout
        changed = self._db.changed()  # raises StoreUnavailable unless open
        while not changed:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(min(WAIT_POLL, remaining))
            try:
                changed = self._db.changed()
            except StoreUnavailable:
                if self._db.is_open:
                    raise
                return False  # closed while this thread waited
        return True

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after enqueue, retry, finish or rescue commits through this object.
        Returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def _notify(self) -> None:
        self._subscribers.notify()

    # queues and statistics ---------------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause or resume a queue; resuming wakes waiting workers."""
        with self._db.write() as conn:
            conn.execute(Q["set_queue_paused"], (name, int(paused), ts(now)))
        if not paused:
            self._notify()

    def change_queue_settings(self, name: str, change: QueueChange, now: datetime) -> StoredQueue:
        """Apply `change` to the queue's stored settings (`model.queues.merge`) in one write
        transaction; a raised limit or bound wakes waiting workers."""
        with self._db.write() as conn:
            row = conn.execute(Q["queue_settings_one"], {"name": name}).fetchone()
            stored = merge(None if row is None else _stored_queue(row), name, change)
            settings = stored.settings
            params = {
                "name": name,
                "now": ts(now),
                "concurrency": settings.concurrency,
                "max_size": settings.max_size,
                "when_full": settings.when_full,
                "rate_limit": settings.rate_limit,
                "operator_set": json_list(sorted(stored.operator_set)),
            }
            conn.execute(Q["save_queue_settings"], params)
        self._notify()
        return stored

    def queues(self, now: datetime) -> list[QueueInfo]:
        """Every queue with jobs, paused, or with stored settings, by name."""
        with self._db.read(consistent=True) as conn:
            stats = {row["queue"]: row for row in conn.execute(Q["queue_stats"], {"now": ts(now)})}
            rows = {row["name"]: row for row in conn.execute(Q["queue_settings_all"])}
            held = {row[0]: row for row in conn.execute(Q["held_back"], {"now": ts(now)})}
            spent = {row[0] for row in conn.execute(Q["spent_queues"], {"now": ts(now)})}
        listed = {
            name for name, row in rows.items() if row["paused"] or not _stored_queue(row).is_default
        }
        infos = []
        for name in sorted(stats.keys() | listed):
            row = stats.get(name)
            kept = rows.get(name)
            stored = StoredQueue(name) if kept is None else _stored_queue(kept)
            paused = kept is not None and bool(kept["paused"])
            if row is None:
                infos.append(
                    QueueInfo(name, 0, 0, 0, paused, None, stored.settings, stored.operator_set)
                )
                continue
            oldest = row["oldest_due_at"]
            counts = held.get(name)
            by_key, by_rate = held_back(
                row["due"],
                counts["by_key"] if counts else 0,
                counts["by_rate"] if counts else 0,
                name in spent,
            )
            infos.append(
                QueueInfo(
                    name,
                    row["waiting"],
                    row["due"],
                    row["running"],
                    paused,
                    None if oldest is None else dt(oldest),
                    stored.settings,
                    stored.operator_set,
                    by_key,
                    by_rate,
                )
            )
        return infos

    def throughput(self, since: datetime) -> list[Throughput]:
        """Completed and failed jobs per minute since `since`."""
        with self._db.read() as conn:
            rows = conn.execute(Q["throughput"], (ts(since),)).fetchall()
        return [Throughput(dt(minute), completed, failed) for minute, completed, failed in rows]

    # maintenance -----------------------------------------------------------------------------
    def rescue_expired(self, now: datetime) -> list[str]:
        """Running jobs whose lease ended before `now` go back to pending with an error of kind
        'lost' recorded, or to failed when no attempt is left (cancelled when cancellation
        was requested); returns their ids."""
        with self._db.write() as conn:
            expired = conn.execute(Q["expired_leases"], (ts(now),)).fetchall()
            params = [_rescue_params(row, now) for row in expired]
            conn.executemany(Q["rescue_job"], params)
            parents = [
                row["id"]
                for row, param in zip(expired, params, strict=True)
                if row["dependents"] and param["finished_at"] is not None
            ]
            if parents:
                settle(SQLiteGraph(conn), parents, now)
        rescued = [row["id"] for row in expired]
        if rescued:
            self._notify()
        return rescued

    def promote_scheduled(self, now: datetime) -> int:
        """Scheduled jobs that are due become pending; returns how many."""
        with self._db.write() as conn:
            return conn.execute(Q["promote_scheduled"], (ts(now),)).rowcount

    def prune(self, completed_before: datetime, failed_before: datetime) -> int:
        """Delete completed, cancelled and skipped jobs finished before `completed_before`,
        failed ones before `failed_before`, in short batches. Returns how many."""
        params = {
            "completed_before": ts(completed_before),
            "failed_before": ts(failed_before),
            "batch": PRUNE_BATCH,
        }
        total = 0
        while True:
            with self._db.write() as conn:
                rows = conn.execute(Q["prune_batch"], params).fetchall()
                forget(conn, rows)
                deleted = len(rows)
            total += deleted
            if deleted < PRUNE_BATCH:
                self._prune_fires(failed_before)
                return total

    def count_prunable(
        self, completed_before: datetime, failed_before: datetime
    ) -> dict[JobState, int]:
        """How many jobs `prune` with these cut-offs would delete now, by state."""
        params = {"completed_before": ts(completed_before), "failed_before": ts(failed_before)}
        with self._db.read() as conn:
            rows = conn.execute(Q["count_prunable"], params).fetchall()
        return {JobState(row["state"]): int(row["n"]) for row in rows}

    def prune_rate_windows(self, started_before: datetime) -> int:
        """Forget rate windows whose latest start is older than `started_before`."""
        with self._db.write() as conn:
            params = {"before": ts(started_before)}
            return conn.execute(Q["prune_rate_windows"], params).rowcount

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`."""
        with self._db.write() as conn:
            return conn.execute(Q["prune_workers"], (ts(seen_before),)).rowcount

    # operators -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._db.read() as conn:
            row = conn.execute(Q["get_job"], (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    def counts(self) -> Counts:
        """Jobs per state and per queue and state; states with no job are left out."""
        by_state: dict[str, int] = {}
        by_queue: dict[str, dict[str, int]] = {}
        with self._db.read() as conn:
            for queue, state, count in conn.execute(Q["counts"]):
                by_state[state] = by_state.get(state, 0) + count
                by_queue.setdefault(queue, {})[state] = count
        return Counts(by_state, by_queue)

    def workers(self) -> list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned, by id."""
        with self._db.read() as conn:
            return [worker_from_row(row) for row in conn.execute(Q["list_workers"])]

    def request_worker(
        self, worker_id: str, action: WorkerAction, seen_after: datetime
    ) -> WorkerInfo:
        """Keep an operator's request of a live worker (`model.workers.request_of`), in one
        write transaction; its next heartbeat reads it back."""
        with self._db.write() as conn:
            row = conn.execute(Q["get_worker"], (worker_id,)).fetchone()
            worker = None if row is None else worker_from_row(row)
            asked = request_of(worker_id, worker, action, seen_after)
            params = {"id": worker_id, "requested": asked}
            return worker_from_row(conn.execute(Q["set_worker_request"], params).fetchone())

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Scheduled/pending: cancelled now. Running: cancel_requested set. Finished:
        unchanged. None if there is no such job."""
        params = {"id": job_id, "now": ts(now)}
        with self._db.write() as conn:
            row = conn.execute(Q["cancel_waiting"], params).fetchone()
            if row is not None and row["dependents"]:
                settle(SQLiteGraph(conn), [job_id], now)
            if row is None:
                row = conn.execute(Q["request_cancel"], {"id": job_id}).fetchone()
            if row is None:
                row = conn.execute(Q["get_job"], (job_id,)).fetchone()
        return None if row is None else job_from_row(row)

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending with attempt 0 (errors kept). Other
        states, or another active job holding its unique_key: unchanged."""
        retried = False
        with self._db.write() as conn:
            try:
                row = conn.execute(Q["retry_job"], {"id": job_id, "now": ts(now)}).fetchone()
                retried = row is not None
                if retried:
                    rearm_after_retry(conn, job_id, now)
            except sqlite3.IntegrityError:
                row = None  # an active job already holds this unique_key
            if row is None:
                row = conn.execute(Q["get_job"], (job_id,)).fetchone()
        if retried:
            self._notify()
        return None if row is None else job_from_row(row)

    def run_now(self, job_id: str, now: datetime) -> Job | None:
        """A scheduled job becomes pending, due now (attempt and errors kept); else unchanged."""
        with self._db.write() as conn:
            row = conn.execute(Q["run_now"], {"id": job_id, "now": ts(now)}).fetchone()
            made_due = row is not None
            if row is None:
                row = conn.execute(Q["get_job"], (job_id,)).fetchone()
        if made_due:
            self._notify()
        return None if row is None else job_from_row(row)

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running."""
        with self._db.write() as conn:
            rows = conn.execute(Q["delete_job"], (job_id,)).fetchall()
            forget(conn, rows)
            return bool(rows)

    # last: inside the class body this name shadows the builtin in later annotations
    def list_jobs(self, query: JobFilter) -> Page:
        """A page of jobs, newest first (created_at, then id), with the count of matching
        jobs capped at LIST_COUNT_CAP; text filters are LIKE, case-insensitive for ASCII."""
        page, per_page = max(query.page, 1), max(query.per_page, 1)
        params: dict[str, Any] = {
            "name": query.name,
            "queue": query.queue,
            "states": None if query.states is None else json_list(sorted(query.states)),
            "created_after": _opt_ts(query.created_after),
            "created_before": _opt_ts(query.created_before),
            "count_limit": LIST_COUNT_CAP + 1,
        }
        window = {**params, "limit": per_page, "offset": (page - 1) * per_page}
        with self._db.read(consistent=True) as conn:
            if _scans(query):
                window.update(
                    search=_contains(query.search),
                    name_contains=_contains(query.name_contains),
                    finished_after=_opt_ts(query.finished_after),
                    finished_before=_opt_ts(query.finished_before),
                    worker=query.worker,
                    error_kind=query.error_kind,
                )
                # one scan counts the matches and picks the page (queries.sql)
                rows = conn.execute(Q["list_jobs_search"], window).fetchall()
                total = rows[0]["listed_total"] if rows else 0
                rows = [row for row in rows if row["id"] is not None]
                if total > LIST_COUNT_CAP:  # the scan stopped early: walk newest first
                    rows = conn.execute(Q["list_jobs_search_newest"], window).fetchall()
            else:
                suffix = "" if query.states is None else "_in_states"
                total = conn.execute(Q["count_listed" + suffix], params).fetchone()[0]
                rows = conn.execute(Q["list_jobs" + suffix], window).fetchall()
        exact = total <= LIST_COUNT_CAP
        jobs = [job_from_row(row) for row in rows]
        return Page(jobs, min(total, LIST_COUNT_CAP), page, per_page, total_exact=exact)


def _scans(query: JobFilter) -> bool:
    """Whether no index walk serves `query` (a text, finished, worker or error filter)."""
    return any(
        value is not None
        for value in (
            query.search or None,
            query.name_contains or None,
            query.finished_after,
            query.finished_before,
            query.worker,
            query.error_kind,
        )
    )


def _contains(text: str | None) -> str | None:
    """A LIKE pattern matching `text` anywhere, its wildcards taken literally."""
    return None if not text else f"%{_like_literal(text)}%"


def _opt_ts(moment: datetime | None) -> float | None:
    return None if moment is None else ts(moment)


def _rate_windows(
    conn: sqlite3.Connection, rates: dict[Bucket, Rate]
) -> dict[Bucket, tuple[float, ...]]:
    """The stored windows of `rates`' buckets (a bucket with no row has no start yet)."""
    if not rates:
        return {}
    buckets = sorted(rates)
    params = {
        "scopes": json_list(b[0] for b in buckets),
        "names": json_list(b[1] for b in buckets),
    }
    return {
        (scope, name): tuple(json.loads(starts))
        for scope, name, starts in conn.execute(Q["rate_windows"], params)
    }


def _buckets(candidate: tuple[Any, ...], rates: dict[Bucket, Rate]) -> tuple[Bucket, ...]:
    """The rate windows a candidate row's start counts in: its queue's, its key's."""
    buckets = tuple(b for b in (queue_bucket(candidate[5]),) if b in rates)
    if candidate[7] is not None:
        buckets += (key_bucket(candidate[7]),)
    return buckets


def _stored_queue(row: sqlite3.Row) -> StoredQueue:
    """A conveyor_queues row's settings."""
    settings = QueueSettings(
        row["concurrency"], row["max_size"], row["when_full"], row["rate_limit"]
    )
    return StoredQueue(row["name"], settings, frozenset(json.loads(row["operator_set"])))


def _reread(conn: sqlite3.Connection, results: list[Enqueued]) -> list[Enqueued]:
    """The batch as stored once its edges were decided (a step whose parents had all
    finished is already released or cancelled)."""
    rows = {
        row["id"]: row
        for row in conn.execute(
            Q["jobs_by_ids"], (json_list(r.job.id for r in results if r.created),)
        )
    }
    return [Enqueued(job_from_row(rows[r.job.id]), True) if r.created else r for r in results]


def _like_literal(text: str) -> str:
    """`text` with LIKE's wildcards escaped (the queries use ESCAPE '\\')."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _finish_params(outcome: Outcome) -> dict[str, Any]:
    """The finish_job parameters of one outcome, encoded before the transaction starts."""
    landing = outcome.landing()
    return {
        "id": outcome.job_id,
        "worker_id": outcome.worker_id,
        "attempt": outcome.attempt,
        "state": landing.state.value,
        "result": dumps(outcome.result) if landing.state == JobState.COMPLETED else None,
        "finished_at": opt_ts(landing.finished_at),
        "run_at": opt_ts(landing.run_at),
        "give_back": 0 if outcome.count_attempt else 1,
        "error": None if outcome.error is None else error_json(outcome.error),
    }


def _rescue_params(row: sqlite3.Row, now: datetime) -> dict[str, Any]:
    """The rescue_job parameters of a running job whose lease expired."""
    lost = LostLease.of(row, dt(row["lease_expires_at"]))
    landing, error = after_lost_lease(lost, now)
    return {
        "id": row["id"],
        "state": landing.state.value,
        "finished_at": opt_ts(landing.finished_at),
        "run_at": opt_ts(landing.run_at),
        "error": error_json(error),
    }
