"""PostgresBackend: many worker processes on many hosts sharing one PostgreSQL database."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import psycopg

from conveyor.backends.decoding import claim_runnable, decode_claimed
from conveyor.backends.postgres.database import Conn, Database, PostgresConfig
from conveyor.backends.postgres.enqueue import EnqueueVerbs
from conveyor.backends.postgres.history import HistoryVerbs
from conveyor.backends.postgres.recurring import RecurringVerbs
from conveyor.backends.postgres.rows import (
    Row,
    error_entry,
    error_json,
    job_from_row,
    logs_json,
    opt_utc,
    parse_logs,
    utc,
    worker_from_row,
    worker_params,
)
from conveyor.backends.postgres.workflows import WorkflowVerbs, forget, rearm_after_retry
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
from conveyor.backends.subscribers import Subscribers
from conveyor.errors import StoreUnavailable
from conveyor.model.dependencies import settle
from conveyor.model.job import (
    Enqueued,
    Job,
    JobState,
    LogLine,
    NewJob,
)
from conveyor.model.keys import choose_claimable
from conveyor.model.lifecycle import LostLease, after_lost_lease
from conveyor.model.logs import append_logs
from conveyor.model.queues import QueueChange, QueueSettings, StoredQueue, merge
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

PRUNE_BATCH = 1000  # rows deleted per prune statement, so no transaction runs long
CLAIM_ATTEMPTS = 5  # tries when a concurrent claim took a job of the same concurrency key
_RUNNING_KEYS_INDEX = "jobs_running_keys"


class PostgresBackend(WorkflowVerbs, EnqueueVerbs, RecurringVerbs, HistoryVerbs):
    """Jobs in a PostgreSQL schema, shared by any number of worker processes and hosts.

    Claims lock due jobs with `FOR UPDATE SKIP LOCKED` on a partial index of runnable jobs;
    queue limits are enforced under a per-queue advisory lock; outcomes are applied in batches
    fenced on (id, worker, attempt); producers' commits NOTIFY waiting workers, which LISTEN on
    a dedicated connection. Build it from a URL: `PostgresBackend.from_url(
    "postgresql://user@host/db?schema=conveyor")`.
    """

    blocking = True

    def __init__(self, config: PostgresConfig, *, queue_full_timeout: float = 5.0) -> None:
        self.config = config
        #: seconds an enqueue into a full queue with when_full="wait" waits for room
        self.queue_full_timeout = queue_full_timeout
        self._db = Database(config)
        self._q = self._db.queries
        self._subscribers = Subscribers()
        # Queues with a fleet-wide limit, as this process's claims name them: finishing a job
        # of one frees room another worker may be waiting for.
        self._limited_queues: frozenset[str] = frozenset()
        # due jobs of keys with several slots (key_concurrency) or with a rate of their own
        # seen: claim in the locked path
        self._shared_keys = False
        # some queue is paused or limited: claims of all queues read the others one by one
        self._excluding = False

    @classmethod
    def from_url(cls, url: str, *, queue_full_timeout: float = 5.0) -> PostgresBackend:
        """The store a postgresql:// URL names (see PostgresConfig for its options)."""
        return cls(PostgresConfig.from_url(url), queue_full_timeout=queue_full_timeout)

    def __repr__(self) -> str:
        return f"PostgresBackend({self.config.target!r}, schema={self.config.schema!r})"

    # workflows, within their queues' bounds (the rest of the workflow verbs: workflows.py)
    def enqueue_workflow(
        self, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Store a workflow and its steps in one transaction; a queue's stored bound applies
        as to `enqueue` (the steps waiting on their parents do not count)."""
        return self._store_workflow((workflow_id, name), jobs, now)

    def enqueue_workflow_in(
        self, connection: Conn, workflow_id: str, name: str, jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """`enqueue_workflow` inside the caller's transaction on `connection` (its own one,
        committed at once, for an autocommit connection outside a transaction block); a full
        queue refuses at once."""
        return self._store_workflow_in(connection, (workflow_id, name), jobs, now)

    # lifecycle -------------------------------------------------------------------------------
    def open(self) -> None:
        """Connect, apply missing migrations (one process at a time) and start the pool.
        Idempotent. Raises StoreUnavailable when the server cannot be reached."""
        self._db.open()

    def close(self) -> None:
        """Close the pool and the LISTEN connection. Idempotent."""
        self._db.close()

    def migrate(self) -> list[int]:
        """Apply missing migrations now, on a connection of its own (for `conveyor migrate`,
        with or without an opened store); returns the versions applied."""
        with self._db.errors("cannot migrate"), self._db.connect() as conn:
            return self._db.migrate(conn)

    def pending_migrations(self) -> list[int]:
        """The migration versions this schema still lacks."""
        with self._db.errors("cannot read"), self._db.connect() as conn:
            return self._db.pending_migrations(conn)

    def schema_version(self) -> int | None:
        """The latest migration applied to this schema (None before the first), read on a
        connection of its own, so it works whether or not the store is open."""
        with self._db.errors("cannot read"), self._db.connect() as conn:
            applied = self._db.applied_migrations(conn)
        return applied[-1] if applied else None

    # workers ---------------------------------------------------------------------------------
    def claim(self, request: ClaimRequest) -> Claimed:
        """Atomically take due jobs for a worker, respecting queue limits across processes."""
        return claim_runnable(lambda: self._claim_rows_decoded(request), self.finish)

    def _claim_rows_decoded(self, request: ClaimRequest) -> tuple[Claimed, list[Outcome]]:
        """One claim: the runnable jobs, and a failed outcome for each malformed row.

        Queues without a limit are claimed by one statement, which leaves out the queues with
        a stored concurrency and names them; those are claimed under their locks
        (`_claim_limited`), at once in the same call and directly by the next claims, until a
        claim finds no limited queue among those asked for. Jobs of keys with several slots
        (`key_concurrency` > 1) are left out and announced the same way, and claimed there
        under per-key locks until none is due."""
        queues = None if request.queues is None else sorted(request.queues)
        asked = request.queues
        with self._db.connection() as conn:
            if queues is None and self._excluding:
                # some queue is paused or limited: leaving it out of a walk of all queues'
                # due jobs would pass over its backlog at every claim, so read the others one
                # by one (unless there are so many that the walk is the cheaper)
                cur = conn.execute(self._q["waiting_queues"], {"most": SPREAD_MAX + 1})
                waiting = [row["queue"] for row in cur]
                if len(waiting) <= SPREAD_MAX:
                    queues = waiting
            return self._claim_with(conn, request, queues, asked)

    def _claim_with(
        self,
        conn: Conn,
        request: ClaimRequest,
        queues: list[str] | None,
        asked: frozenset[str] | None,
    ) -> tuple[Claimed, list[Outcome]]:
        limited = self._limited_queues if asked is None else self._limited_queues & asked
        rows: list[Row] = []
        upcoming: datetime | None = None
        one_statement = not limited and not request.queue_limits and not self._shared_keys
        if request.limit > 0 and one_statement:
            rows = self._claim_rows(conn, request, queues, limited=False)
            # the statement also brought the next due time when the claim came back short
            upcoming = rows[0]["next_run_at"] if rows else None
            found = frozenset(rows[0]["limited"] or ()) if rows else frozenset()
            shared = bool(rows[0]["guarded"]) if rows else False
            self._excluding = bool(rows[0]["excluding"]) if rows else False
            rows = [row for row in rows if row["id"] is not None]
            if not found and not shared:
                return self._decoded(rows, upcoming, request)
            self._limited_queues = self._limited_queues | found
            self._shared_keys = shared
            if len(rows) >= request.limit:
                return self._decoded(rows, upcoming, request)
            # the limited queues' jobs, in the same call, with the room left
            request = replace(request, limit=request.limit - len(rows))
        if request.limit > 0:
            try:
                rows += self._claim_rows(conn, request, queues, limited=True)
            except (psycopg.Error, StoreUnavailable) as exc:
                if not rows:
                    raise
                # the jobs the first statement claimed are committed as running: hand them
                # to the worker (its lease would bring them back only once it expired)
                log.warning("claiming the limited queues failed (%s); the %d job(s) "
                            "claimed before run, the rest wait for the next claim", exc,
                            len(rows))  # fmt: skip
                return self._decoded(rows, None, request)
        if len(rows) < request.limit:  # a full claim comes straight back: no look-up
            upcoming = self._next_run_at(conn, request.now, queues)
        return self._decoded(rows, upcoming, request)

    @staticmethod
    def _decoded(
        rows: list[Row], upcoming: datetime | None, request: ClaimRequest
    ) -> tuple[Claimed, list[Outcome]]:
        jobs, rejected = decode_claimed(rows, job_from_row, request)
        return Claimed(jobs, opt_utc(upcoming)), rejected

    def _next_run_at(self, conn: Conn, now: datetime, queues: list[str] | None) -> datetime | None:
        if queues is None:
            found = conn.execute(self._q["next_run_at_any"], {"now": now})
        else:
            found = conn.execute(self._q["next_run_at_in"], {"now": now, "queues": queues})
        row = found.fetchone()
        return None if row is None else row["run_at"]

    def _claim_rows(
        self,
        conn: Conn,
        request: ClaimRequest,
        queues: list[str] | None,
        *,
        limited: bool,
    ) -> list[Row]:
        params: dict[str, Any] = {
            "now": request.now,
            "limit": request.limit,
            "worker_id": request.worker_id,
            "lease_expires_at": request.lease_expires_at,
            "commit": self.config.commit_mode,
        }
        for attempt in range(CLAIM_ATTEMPTS):
            try:
                if limited:
                    with conn.transaction():
                        return self._claim_limited(conn, params, queues, request)
                if queues is None:
                    cur = conn.execute(self._q["claim_any"], {**params, "excluded": []})
                else:
                    cur = conn.execute(self._q["claim_in"], {**params, "queues": queues})
                return cur.fetchall()
            except psycopg.errors.UniqueViolation as exc:
                if exc.diag.constraint_name != _RUNNING_KEYS_INDEX:
                    raise
                # Another claim committed a job of the same concurrency key first.
                log.debug("claim met a concurrency-key race (try %d); claiming again", attempt)
        return []

    def _claim_limited(
        self,
        conn: Conn,
        params: dict[str, Any],
        queues: list[str] | None,
        request: ClaimRequest,
    ) -> list[Row]:
        """Inside a transaction: read the stored limits, lock the limited queues, count what
        runs in them, lock candidates and claim the best `limit` of them (one per
        concurrency key)."""
        q, limit = self._q, params["limit"]
        if params["commit"] is not None:
            conn.execute(q["local_commit_mode"], params)
        caps = dict(request.queue_limits)  # the caller's own caps, and the stored limits
        rated: dict[str, Rate] = {}
        excluding = bool(caps)  # the caller's caps leave queues out too
        for row in conn.execute(q["queue_limits"]):
            excluding = True  # paused or limited: a claim of all queues reads them apart
            if row["paused"]:
                continue  # its jobs are not candidates (due_candidates)
            stored = row["concurrency"]
            if stored is not None:
                caps[row["name"]] = min(stored, caps.get(row["name"], stored))
            if row["rate_limit"] is not None:
                rated[row["name"]] = Rate.parse(row["rate_limit"])
        names = sorted(
            queue
            for queue in caps.keys() | rated.keys()
            if request.queues is None or queue in request.queues
        )
        self._limited_queues = frozenset(names)
        self._excluding = excluding
        if names:
            prefix = f"conveyor:{self.config.schema}:"
            conn.execute(q["lock_queues"], {"prefix": prefix, "queues": names})
        running = {
            row["queue"]: row["running"]
            for row in conn.execute(q["count_running"], {"queues": names})
        }
        # the rated queues' windows, under the queues' locks
        rates: dict[Bucket, Rate] = {queue_bucket(n): rated[n] for n in names if n in rated}
        windows = self._lock_windows(conn, rates)
        stamp = request.now.timestamp()
        candidates: list[Row] = []
        if queues is None:
            cur = conn.execute(q["candidates_any"], {**params, "excluded": names})
            candidates += cur.fetchall()
        elif unlimited := [name for name in queues if name not in self._limited_queues]:
            cur = conn.execute(q["candidates_in"], {**params, "queues": unlimited})
            candidates += cur.fetchall()
        for name in names:
            room_left = limit
            if name in caps:
                room_left = min(room_left, caps[name] - running.get(name, 0))
            if name in rated:
                bucket = queue_bucket(name)
                room_left = min(room_left, room(windows.get(bucket, ()), rated[name], stamp))
            if room_left > 0:
                cur = conn.execute(
                    q["candidates_in"], {**params, "queues": [name], "limit": room_left}
                )
                candidates += cur.fetchall()
        candidates.sort(key=lambda c: (-c["priority"], c["run_at"], c["id"]))
        # keys of several slots: locked (sorted, after the queues' locks), then their running
        # jobs counted under the locks, so two claims never both see the last slot free
        shared = sorted(
            {c["concurrency_key"] for c in candidates if c["key_concurrency"] is not None} - {None}
        )
        running_keys: dict[str, int] = {}
        if shared:
            prefix = f"conveyor:{self.config.schema}:key"
            conn.execute(q["lock_keys"], {"prefix": prefix, "keys": shared})
            cur = conn.execute(q["running_per_key"], {"keys": shared})
            running_keys = {row["concurrency_key"]: row["running"] for row in cur}
        # the candidates' own rates: their keys' windows, locked last (sorted)
        key_rates = {
            key_bucket(c["rate_key"]): Rate.parse(c["rate_limit"])
            for c in candidates
            if c["rate_key"] is not None
        }
        windows.update(self._lock_windows(conn, key_rates))
        rates.update(key_rates)
        if shared or key_rates:
            self._shared_keys = True
        elif self._shared_keys:  # claim by one statement again once no such job is due
            # (asked only then: a limited queue's claim takes this path at every claim, and
            # its transaction, which holds the queues' locks, stays as short as before)
            found = conn.execute(q["guarded_due"], params).fetchone()
            self._shared_keys = found is not None and bool(found["due"])
        buckets = {c["id"]: _buckets(c, rates) for c in candidates}
        chosen = choose_claimable(
            (
                (c["id"], c["concurrency_key"], c["key_concurrency"] or 1, buckets[c["id"]])
                for c in candidates
            ),
            limit,
            running_keys,
            rooms_of(windows, rates, stamp),
        )
        if not chosen:
            return []
        starts: dict[Bucket, int] = {}
        for job_id in chosen:
            for bucket in buckets[job_id]:
                starts[bucket] = starts.get(bucket, 0) + 1
        if starts:
            saves = []
            for bucket, n in sorted(starts.items()):
                kept = record(windows.get(bucket, ()), rates[bucket], stamp, n)
                until = full_until(kept, rates[bucket])
                saves.append(
                    {
                        "scope": bucket[0],
                        "name": bucket[1],
                        "starts": list(kept),
                        "full_until": None if until is None else _iso(until),
                    }
                )
            conn.execute(q["save_rate_windows"], {"windows": dumps(saves)})
        return conn.execute(q["claim_ids"], {**params, "ids": chosen}).fetchall()

    def _lock_windows(
        self, conn: Conn, rates: dict[Bucket, Rate]
    ) -> dict[Bucket, tuple[float, ...]]:
        """The windows of `rates`' buckets, created when missing and locked (sorted)."""
        if not rates:
            return {}
        buckets = sorted(rates)
        params = {"scopes": [b[0] for b in buckets], "names": [b[1] for b in buckets]}
        rows: list[Row] = []
        for _ in range(3):
            conn.execute(self._q["ensure_rate_windows"], params)
            rows = conn.execute(self._q["lock_rate_windows"], params).fetchall()
            if len(rows) == len(buckets):
                break
            # the sweeper forgot an old window between the two statements: create it again,
            # so that this claim holds every window's lock while it counts
        else:
            raise StoreUnavailable("rate windows kept disappearing during a claim; try again")
        return {(row["scope"], row["name"]): tuple(row["starts"]) for row in rows}

    def finish(self, outcomes: Sequence[Outcome]) -> list[str]:
        """Apply many attempt outcomes in one statement; returns the dropped ids (the worker
        no longer owned the job, or a second outcome for the same attempt)."""
        if not outcomes:
            return []
        entries: list[dict[str, Any]] = []
        seen: set[tuple[str, str, int]] = set()
        for outcome in outcomes:
            entry = _finish_entry(outcome)  # refuses an impossible state before any write
            fence = (outcome.job_id, outcome.worker_id, outcome.attempt)
            if fence not in seen:  # a second outcome for the same attempt is dropped below
                seen.add(fence)
                entries.append(entry)
        params = {
            # one JSON document, not an array per column: the driver's array dumpers
            # cost more per outcome than one C-encoded json.dumps
            "outcomes": dumps(entries),
            "channel": self.config.channel,
            "commit": self.config.commit_mode,
            "limited": sorted(self._limited_queues),
            "now": outcomes[0].now,  # when the dependents a completed job frees are released
        }
        with self._db.connection() as conn:
            rows = conn.execute(self._q["finish_jobs"], params).fetchall()
        applied = {(row["id"], row["worker_id"], row["attempt"]) for row in rows if row["id"]}
        woke = any(row["notified"] is not None for row in rows)
        if len(applied) < len(entries):
            # jobs others wait on that failed or were cancelled were left out (or the lease
            # was lost): their outcome and their dependents' fate commit together
            rest = [e for e in entries if (e["id"], e["worker_id"], e["attempt"]) not in applied]
            linked = self._finish_linked({**params, "outcomes": dumps(rest)}, outcomes[0].now)
            applied |= linked
            woke = woke or bool(linked)
        dropped: list[str] = []
        for outcome in outcomes:
            fence = (outcome.job_id, outcome.worker_id, outcome.attempt)
            if fence in applied:
                applied.discard(fence)  # only the first outcome for the attempt counts
            else:
                dropped.append(outcome.job_id)
        if woke:
            self._notify()
        return dropped

    def _finish_linked(self, params: dict[str, Any], now: datetime) -> set[tuple[str, str, int]]:
        """Apply outcomes in one transaction with the decision of the dependents of the jobs
        that reached a final state; returns the fences applied."""
        with self._db.transaction() as conn:
            rows = conn.execute(self._q["finish_jobs_linked"], params).fetchall()
            parents = [row["id"] for row in rows if row["id"] and row["ends_parent"]]
            if parents:
                settle(self._graph(conn), parents, now)
        return {(row["id"], row["worker_id"], row["attempt"]) for row in rows if row["id"]}

    def report(self, reports: Sequence[Report], max_log_lines: int) -> None:
        """Write buffered progress and logs of running jobs, keeping at most `max_log_lines`
        lines a job; reports for jobs that are not running are ignored."""
        if not reports:
            return
        with self._db.transaction() as conn:
            logged = sorted({report.job_id for report in reports if report.logs})
            current: dict[str, list[LogLine]] = {}
            attempts: dict[str, int] = {}
            if logged:
                cur = conn.execute(self._q["job_logs"], {"ids": logged})
                for row in cur.fetchall():
                    current[row["id"]] = parse_logs(row["logs"])
                    attempts[row["id"]] = row["attempt"]
            updates: list[dict[str, Any]] = []
            for report in reports:
                logs = None
                if report.logs:
                    if report.job_id not in current:
                        continue
                    kept = append_logs(
                        current[report.job_id],
                        report.logs,
                        max_log_lines,
                        attempts[report.job_id],
                    )
                    current[report.job_id] = list(kept)
                    logs = logs_json(kept)
                updates.append(
                    {
                        "id": report.job_id,
                        "progress": report.progress,
                        "progress_message": report.progress_message,
                        "logs": logs,
                    }
                )
            if updates:
                with conn.cursor() as cur:
                    cur.executemany(self._q["report"], updates)

    def heartbeat(
        self, worker: WorkerInfo, job_ids: Sequence[str], lease_expires_at: datetime
    ) -> Heartbeat:
        """Record the worker alive and extend its running jobs' leases (one statement);
        return the ids among `job_ids` whose cancellation was requested and the operator's
        request of the worker."""
        params = {
            **worker_params(worker),
            "ids": list(job_ids),
            "lease_expires_at": lease_expires_at,
            "commit": self.config.commit_mode,
        }
        with self._db.connection() as conn:
            row = conn.execute(self._q["heartbeat"], params).fetchone()
        assert row is not None  # the statement's SELECT always answers one row
        return Heartbeat(set(row["cancel_requested"]), row["requested"])

    def unregister_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped cleanly."""
        with self._db.connection() as conn:
            conn.execute(self._q["delete_worker"], {"id": worker_id})

    def wait_for_jobs(self, timeout: float) -> bool:
        """Block up to `timeout` s on LISTEN (a dedicated connection, renewed after a loss);
        True when another transaction announced new work (or the connection was restored,
        so announcements may have been missed), False at the timeout or on close."""
        return self._db.wait(timeout)

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` after enqueue, retry, finish or rescue through this object.
        Returns a function that unsubscribes."""
        return self._subscribers.subscribe(callback)

    def _notify(self) -> None:
        self._subscribers.notify()

    # maintenance -----------------------------------------------------------------------------
    def rescue_expired(self, now: datetime) -> list[str]:
        """Running jobs whose lease ended before `now` go back to pending with an error of kind
        'lost' recorded, or to failed when no attempt is left (cancelled when cancellation
        was requested); returns their ids."""
        with self._db.transaction() as conn:
            expired = conn.execute(self._q["expired_leases"], {"now": now}).fetchall()
            if not expired:
                return []
            columns = ("id", "state", "finished_at", "run_at", "error")
            arrays: dict[str, list[Any]] = {column: [] for column in columns}
            for row in expired:
                params = _rescue_params(row, now)
                for column in columns:
                    arrays[column].append(params[column])
            cur = conn.execute(self._q["rescue_jobs"], {**arrays, "channel": self.config.channel})
            rows = cur.fetchall()
            rescued = [row["id"] for row in rows if row["id"] is not None]
            parents = [row["id"] for row in rows if row["id"] is not None and row["ends_parent"]]
            if parents:
                settle(self._graph(conn), parents, now)
        if rescued:
            self._notify()
        return rescued

    def promote_scheduled(self, now: datetime) -> int:
        """Scheduled jobs that are due become pending; returns how many."""
        with self._db.connection() as conn:
            return conn.execute(self._q["promote_scheduled"], {"now": now}).rowcount

    def prune(self, completed_before: datetime, failed_before: datetime) -> int:
        """Delete completed, cancelled and skipped jobs finished before `completed_before`,
        failed ones before `failed_before`, in short batches. Returns how many."""
        params = {
            "completed_before": completed_before,
            "failed_before": failed_before,
            "batch": PRUNE_BATCH,
        }
        total = 0
        while True:
            with self._db.transaction() as conn:
                rows = conn.execute(self._q["prune_batch"], params).fetchall()
                forget(conn, self._q, rows)
                deleted = len(rows)
            total += deleted
            if deleted < PRUNE_BATCH:
                self._prune_fires(failed_before)
                return total

    def count_prunable(
        self, completed_before: datetime, failed_before: datetime
    ) -> dict[JobState, int]:
        """How many jobs `prune` with these cut-offs would delete now, by state."""
        params = {"completed_before": completed_before, "failed_before": failed_before}
        with self._db.connection() as conn:
            rows = conn.execute(self._q["count_prunable"], params).fetchall()
        return {JobState(row["state"]): int(row["n"]) for row in rows}

    def prune_rate_windows(self, started_before: datetime) -> int:
        """Forget rate windows whose latest start is older than `started_before`."""
        with self._db.connection() as conn:
            params = {"before": started_before}
            return conn.execute(self._q["prune_rate_windows"], params).rowcount

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers whose last heartbeat is older than `seen_before`."""
        with self._db.connection() as conn:
            return conn.execute(self._q["prune_workers"], {"before": seen_before}).rowcount

    # operators -------------------------------------------------------------------------------
    def get(self, job_id: str) -> Job | None:
        """One job, or None."""
        with self._db.connection() as conn:
            row = conn.execute(self._q["get_job"], {"id": job_id}).fetchone()
        return None if row is None else job_from_row(row)

    def counts(self) -> Counts:
        """Jobs per state and per queue and state; states with no job are left out."""
        by_state: dict[str, int] = {}
        by_queue: dict[str, dict[str, int]] = {}
        with self._db.connection() as conn:
            for row in conn.execute(self._q["counts"]).fetchall():
                queue, state, count = row["queue"], row["state"], row["n"]
                by_state[state] = by_state.get(state, 0) + count
                by_queue.setdefault(queue, {})[state] = count
        return Counts(by_state, by_queue)

    def workers(self) -> list[WorkerInfo]:
        """Workers that have sent a heartbeat and not been pruned, by id."""
        with self._db.connection() as conn:
            return [worker_from_row(row) for row in conn.execute(self._q["list_workers"])]

    def request_worker(
        self, worker_id: str, action: WorkerAction, seen_after: datetime
    ) -> WorkerInfo:
        """Keep an operator's request of a live worker (`model.workers.request_of`), in one
        transaction under the worker row's lock; its next heartbeat hands it back."""
        with self._db.transaction() as conn:
            row = conn.execute(self._q["lock_worker"], {"id": worker_id}).fetchone()
            worker = None if row is None else worker_from_row(row)
            asked = request_of(worker_id, worker, action, seen_after)
            params = {"id": worker_id, "requested": asked}
            stored = conn.execute(self._q["set_worker_request"], params).fetchone()
        assert stored is not None  # the row is locked: it cannot have gone
        return worker_from_row(stored)

    def cancel(self, job_id: str, now: datetime) -> Job | None:
        """Scheduled/pending: cancelled now. Running: cancel_requested set. Finished:
        unchanged. None if there is no such job."""
        params = {"id": job_id, "now": now}
        with self._db.transaction() as conn:
            row = conn.execute(self._q["cancel_waiting"], params).fetchone()
            if row is not None and row["dependents"]:
                settle(self._graph(conn), [job_id], now)
            if row is None:
                row = conn.execute(self._q["request_cancel"], params).fetchone()
            if row is None:
                row = conn.execute(self._q["get_job"], params).fetchone()
        return None if row is None else job_from_row(row)

    def retry(self, job_id: str, now: datetime) -> Job | None:
        """A failed or cancelled job becomes pending with attempt 0 (errors kept). Other
        states, or another active job holding its unique_key: unchanged."""
        params = {"id": job_id, "now": now, "channel": self.config.channel}
        retried = False
        try:
            with self._db.transaction() as conn:
                row = conn.execute(self._q["retry_job"], params).fetchone()
                if row is not None:
                    retried = True
                    conn.execute(self._q["notify"], params)
                    rearm_after_retry(conn, self._q, self.config.channel, job_id, now)
        except psycopg.errors.UniqueViolation:
            row, retried = None, False  # another active job took the unique_key meanwhile
        if row is None:
            return self.get(job_id)
        if retried:
            self._notify()
        return job_from_row(row)

    def run_now(self, job_id: str, now: datetime) -> Job | None:
        """A scheduled job becomes pending, due now (attempt and errors kept); else unchanged."""
        params = {"id": job_id, "now": now, "channel": self.config.channel}
        with self._db.transaction() as conn:
            row = conn.execute(self._q["run_now"], params).fetchone()
            if row is not None:
                conn.execute(self._q["notify"], params)
        if row is None:
            return self.get(job_id)
        self._notify()
        return job_from_row(row)

    def delete(self, job_id: str) -> bool:
        """Remove a job that is not running; False if absent or running."""
        with self._db.transaction() as conn:
            rows = conn.execute(self._q["delete_job"], {"id": job_id}).fetchall()
            forget(conn, self._q, rows)
        return bool(rows)

    # queues and statistics -------------------------------------------------------------------
    def set_queue_paused(self, name: str, paused: bool, now: datetime) -> None:
        """Pause (no claim takes its jobs; running ones finish) or resume a queue; resuming
        wakes waiting workers, here and in other processes."""
        params = {"name": name, "paused": paused, "now": now, "channel": self.config.channel}
        with self._db.transaction() as conn:
            conn.execute(self._q["set_queue_paused"], params)
            if not paused:
                conn.execute(self._q["notify"], params)
        if not paused:
            self._notify()

    def change_queue_settings(self, name: str, change: QueueChange, now: datetime) -> StoredQueue:
        """Apply `change` to the queue's stored settings (`model.queues.merge`) in one
        transaction, its row locked (concurrent changes apply one after the other); wakes
        workers here and in other processes, since a raised limit may let them claim."""
        params: dict[str, Any] = {"name": name, "now": now, "channel": self.config.channel}
        with self._db.transaction() as conn:
            conn.execute(self._q["ensure_queue"], params)
            row = conn.execute(self._q["lock_queue_settings"], params).fetchone()
            stored = merge(None if row is None else _stored_queue(row), name, change)
            settings = stored.settings
            conn.execute(
                self._q["save_queue_settings"],
                {
                    **params,
                    "concurrency": settings.concurrency,
                    "max_size": settings.max_size,
                    "when_full": settings.when_full,
                    "rate_limit": settings.rate_limit,
                    "operator_set": sorted(stored.operator_set),
                },
            )
            conn.execute(self._q["notify"], params)
        self._notify()
        return stored

    def queues(self, now: datetime) -> list[QueueInfo]:
        """Every queue that has jobs, is paused or has stored settings, by name."""
        with self._db.connection() as conn:
            rows = conn.execute(self._q["queue_stats"], {"now": now}).fetchall()
            kept = {row["name"]: row for row in conn.execute(self._q["queue_settings_all"])}
            held = {row["queue"]: row for row in conn.execute(self._q["held_back"], {"now": now})}
            spent = {row["name"] for row in conn.execute(self._q["spent_queues"], {"now": now})}
        stats = {row["queue"]: row for row in rows}
        stored = {name: _stored_queue(row) for name, row in kept.items()}
        paused = {name for name, row in kept.items() if row["paused"]}
        listed = paused | {name for name, queue in stored.items() if not queue.is_default}
        infos = []
        for name in sorted(stats.keys() | listed):
            row = stats.get(name)
            queue = stored.get(name) or StoredQueue(name)
            extra = (queue.settings, queue.operator_set)
            if row is None:
                infos.append(QueueInfo(name, 0, 0, 0, name in paused, None, *extra))
                continue
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
                    name in paused,
                    opt_utc(row["oldest_due_at"]),
                    *extra,
                    by_key,
                    by_rate,
                )
            )
        return infos

    def throughput(self, since: datetime) -> list[Throughput]:
        """Completed and failed jobs per minute since `since`, oldest first."""
        with self._db.connection() as conn:
            rows = conn.execute(self._q["throughput"], {"since": since}).fetchall()
        return [Throughput(utc(row["minute"]), row["completed"], row["failed"]) for row in rows]

    # last: inside the class body this name shadows the builtin in later annotations
    def list_jobs(self, query: JobFilter) -> Page:
        """A page of jobs, newest first (created_at, then id), with the count of matching
        jobs capped at LIST_COUNT_CAP (past it, the planner's estimate); text filters are
        ILIKE, a search through the job_texts trigram index (queries.sql, migration 0013)."""
        page, per_page = max(query.page, 1), max(query.per_page, 1)
        states = query.states
        if query.worker is not None:  # only a running job has a worker
            states = (states or frozenset(JobState)) & {JobState.RUNNING}
        wanted = JobState if states is None else states
        params: dict[str, Any] = {
            "states": None if states is None else sorted(s.value for s in states),
            "walk_states": sorted(state.value for state in wanted),  # one index walk each
            "name": query.name,
            "queue": query.queue,
            "created_after": query.created_after,
            "created_before": query.created_before,
            "worker": query.worker,
            "search": _contains(query.search),
            "name_contains": _contains(query.name_contains),
            "finished_after": query.finished_after,
            "finished_before": query.finished_before,
            "error_kind": query.error_kind,
            "count_limit": LIST_COUNT_CAP + 1,
        }
        window = {**params, "limit": per_page, "offset": (page - 1) * per_page}
        scan = _scans(query) or (states is None and bool(query.name or query.queue))
        walk_all = states is None and not _walk_filtered(query)
        with self._db.connection() as conn, conn.transaction():
            conn.execute(self._q["repeatable_read"])
            if scan:  # no index gives these in order: collect the matches, count, sort
                conn.execute(self._q["force_custom_plan"])
                rows = conn.execute(self._q["list_jobs_scan"], window).fetchall()
                total = int(rows[0]["listed_total"]) if rows else 0
                rows = [row for row in rows if row["id"] is not None]
                if total > LIST_COUNT_CAP:  # the scan stopped early: walk newest first
                    conn.execute(self._q["walk_in_order"])
                    rows = conn.execute(self._q["list_jobs_scan_newest"], window).fetchall()
            else:  # one walk of the (state, created_at) index per state, merged
                count = "count_listed" if walk_all else "count_listed_in_states"
                counted = conn.execute(self._q[count], params).fetchone()
                conn.execute(self._q["walk_in_order"])
                rows = conn.execute(self._q["list_jobs_in_states"], window).fetchall()
                total = 0 if counted is None else int(counted["total"])
            estimate = None
            if total > LIST_COUNT_CAP:
                if not scan:
                    conn.execute(self._q["force_custom_plan"])
                plan = conn.execute(self._q["estimate_listed"], params).fetchone()
                estimate = max(_plan_rows(plan), LIST_COUNT_CAP + 1)
        jobs = [job_from_row(row) for row in rows]
        exact = total <= LIST_COUNT_CAP
        return Page(
            jobs, min(total, LIST_COUNT_CAP), page, per_page, total_exact=exact, estimate=estimate
        )


def _scans(query: JobFilter) -> bool:
    """Whether `query` has a filter no index walk in creation order serves."""
    return any(
        value is not None
        for value in (
            query.search or None,
            query.name_contains or None,
            query.finished_after,
            query.finished_before,
            query.error_kind,
        )
    )


def _plan_rows(plan: Row | None) -> int:
    """The rows an EXPLAIN (FORMAT JSON) expects (its text, or as decoded)."""
    if plan is None:
        return 0
    document = plan["QUERY PLAN"]
    if isinstance(document, str):
        document = json.loads(document)
    return int(document[0]["Plan"]["Plan Rows"])


def _walk_filtered(query: JobFilter) -> bool:
    """Whether a walk of every job has a filter to apply (else one cheap capped count)."""
    return any(
        value is not None for value in (query.created_after, query.created_before, query.worker)
    )


def _contains(text: str | None) -> str | None:
    """An ILIKE pattern matching `text` anywhere, its wildcards taken literally."""
    if not text:
        return None
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _finish_entry(outcome: Outcome) -> dict[str, Any]:
    """One outcome as an entry of finish_jobs' JSON document (absent keys are NULL)."""
    landing = outcome.landing()
    entry: dict[str, Any] = {
        "id": outcome.job_id,
        "worker_id": outcome.worker_id,
        "attempt": outcome.attempt,
        "state": landing.state.value,
        "give_back": 0 if outcome.count_attempt else 1,
    }
    if landing.state == JobState.COMPLETED:
        entry["result"] = outcome.result
    if landing.finished_at is not None:
        entry["finished_at"] = landing.finished_at.isoformat()
    if landing.run_at is not None:
        entry["run_at"] = landing.run_at.isoformat()
    if outcome.error is not None:
        entry["error"] = error_entry(outcome.error)
    return entry


def _rescue_params(row: Row, now: datetime) -> dict[str, Any]:
    """The rescue_jobs entries of a running job whose lease expired."""
    lost = LostLease.of(row, utc(row["lease_expires_at"]))
    landing, error = after_lost_lease(lost, now)
    return {
        "id": row["id"],
        "state": landing.state.value,
        "finished_at": landing.finished_at,
        "run_at": landing.run_at,
        "error": error_json(error),
    }


def _buckets(candidate: Row, rates: dict[Bucket, Rate]) -> tuple[Bucket, ...]:
    """The rate windows a candidate's start counts in: its queue's, its key's."""
    buckets = tuple(b for b in (queue_bucket(candidate["queue"]),) if b in rates)
    if candidate["rate_key"] is not None:
        buckets += (key_bucket(candidate["rate_key"]),)
    return buckets


def _iso(stamp: float) -> str:
    """Epoch seconds as an ISO 8601 UTC time (a timestamptz in JSON)."""
    return datetime.fromtimestamp(stamp, UTC).isoformat()


def _stored_queue(row: Row) -> StoredQueue:
    """A queues row's settings."""
    settings = QueueSettings(
        row["concurrency"], row["max_size"], row["when_full"], row["rate_limit"]
    )
    return StoredQueue(row["name"], settings, frozenset(row["operator_set"]))
