"""The PostgreSQL store's enqueue verbs (a mixin of PostgresBackend): one statement for a
small batch, a COPY for a large one, unique keys resolved against active jobs, and enqueue
inside the caller's own transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.rows import dict_row

from conveyor.backends.postgres.database import Database, PostgresConfig, first_line
from conveyor.backends.postgres.rows import copy_text, job_arrays, job_from_row, json_as_text
from conveyor.backends.postgres.workflows import in_callers_transaction, insert_linked
from conveyor.errors import DuplicateJobId, QueueFull, StoreUnavailable, UsageError
from conveyor.model.job import QUEUED_STATES, Enqueued, Job, NewJob
from conveyor.model.queues import BoundExceeded

COPY_THRESHOLD = 200  # jobs in one enqueue from which a COPY beats one INSERT
COPY_CHUNK = 500  # jobs per COPY write, so the server stores one while the next is built
_PRIMARY_KEY = "jobs_pkey"
_ROLLBACK_RETRIES = 5  # attempts of an enqueue the server rolled back (deadlock, race)
_ROOM_POLL_MIN, _ROOM_POLL_MAX = 0.005, 0.1  # seconds between tries into a full queue


class EnqueueVerbs:
    """enqueue, enqueue_in and enqueue_in_async, on `self._db`."""

    _db: Database
    _q: Mapping[str, str]
    config: PostgresConfig
    queue_full_timeout: float
    #: queues a batch found bounded: their next enqueues go straight to the locked path
    _bounded_queues: frozenset[str] = frozenset()

    def _notify(self) -> None:  # provided by PostgresBackend
        raise NotImplementedError

    def enqueue(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        """Store `jobs` in one transaction, in order; an active unique_key returns the existing
        job with created=False. Waiting workers are notified when the transaction commits.
        Small batches take one statement; large ones are written with a COPY. A batch for a
        queue with a stored `max_size` is written under that queue's advisory lock and its
        waiting jobs counted before the commit: past the bound it is rolled back whole, and
        refused or (`when_full="wait"`) tried again until `queue_full_timeout`."""
        if not jobs:
            return []
        results = self._with_room(lambda: self._enqueue_once(jobs, now))
        if any(result.created for result in results):
            self._notify()
        return results

    def _with_room(self, store: Callable[[], list[Enqueued]]) -> list[Enqueued]:
        """`store()`, tried again while a full queue with when_full="wait" has no room, up to
        `queue_full_timeout`; QueueFull when it is refused."""
        deadline: float | None = None
        pause = _ROOM_POLL_MIN
        while True:
            try:
                return store()
            except BoundExceeded as full:
                if full.when_full == "refuse" or full.asked > full.max_size:
                    raise QueueFull(full.message(None)) from None
                if deadline is None:
                    deadline = time.monotonic() + self.queue_full_timeout
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise QueueFull(full.message(self.queue_full_timeout)) from None
                # Room appears when a claim takes a waiting job, which sends no NOTIFY (it
                # would cost every claim a server-wide lock): poll, backing off.
                time.sleep(min(pause, remaining))
                pause = min(pause * 2, _ROOM_POLL_MAX)

    def _enqueue_once(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        attempt = 1
        while True:
            try:
                return self._store(jobs, now)
            except psycopg.errors.UniqueViolation as exc:
                raise self._taken_id_error(jobs, exc) from exc
            except psycopg.errors.TransactionRollback as exc:
                # Only a transaction of the store's own gets here, rolled back whole.
                if attempt == _ROLLBACK_RETRIES:
                    raise _rolled_back(exc) from exc
                attempt += 1

    def _store(self, jobs: Sequence[NewJob], now: datetime) -> list[Enqueued]:
        queues = {job.queue for job in jobs}
        if any(job.after for job in jobs):
            with self._db.transaction() as conn:
                return self._insert_bounded(
                    conn, sorted(queues), lambda: self._insert_linked(conn, jobs, now)
                )
        with self._db.connection() as conn:
            if not _uses_copy(jobs) and not queues & self._bounded_queues:
                # One INSERT statement is atomic on its own (autocommit): no BEGIN/COMMIT
                # round trips; the unique_key look-up after it only reads. It inserts nothing
                # when a queue of the batch is bounded, and says so.
                try:
                    return self._insert(conn, jobs, now, checked=False)
                except _Bounded as bounded:
                    self._bounded_queues = self._bounded_queues | bounded.queues
            with conn.transaction():
                return self._insert_bounded(
                    conn, sorted(queues), lambda: self._insert(conn, jobs, now, checked=True)
                )

    def _insert_linked(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[NewJob],
        now: datetime,
        workflow: tuple[str, str] | None = None,
    ) -> list[Enqueued]:
        return insert_linked(conn, self._q, self.config, jobs, now, workflow)

    def _store_workflow(
        self, workflow: tuple[str, str], jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """A workflow and its steps in one transaction, within its queues' bounds (waiting
        for room as `enqueue` does)."""
        queues = sorted({job.queue for job in jobs})

        def store() -> list[Enqueued]:
            with self._db.transaction() as conn:

                def insert() -> list[Enqueued]:
                    return self._insert_linked(conn, jobs, now, workflow)

                return self._insert_bounded(conn, queues, insert)

        results = self._with_room(store)
        self._notify()
        return results

    def _store_workflow_in(
        self,
        connection: psycopg.Connection[Any],
        workflow: tuple[str, str],
        jobs: Sequence[NewJob],
        now: datetime,
    ) -> list[Enqueued]:
        """`_store_workflow` in a savepoint of the caller's transaction; a full queue
        refuses at once (QueueFull), as `enqueue_in` does."""
        queues = sorted({job.queue for job in jobs})

        def insert() -> list[Enqueued]:
            return self._insert_linked(connection, jobs, now, workflow)

        try:
            with self._db.errors("cannot enqueue on the given connection to"):
                results = in_callers_transaction(
                    connection, self._q, lambda: self._insert_bounded(connection, queues, insert)
                )
        except BoundExceeded as full:
            raise QueueFull(full.message(None)) from None
        self._notify()
        return results

    def _insert_bounded(
        self,
        conn: psycopg.Connection[Any],
        queues: list[str],
        insert: Callable[[], list[Enqueued]],
    ) -> list[Enqueued]:
        """Inside a transaction: lock the batch's bounded queues (sorted, so producers never
        deadlock), `insert`, count their waiting jobs; BoundExceeded (rolling the transaction back)
        when one is past its bound. Counting after the insert, under the lock, counts exactly
        the new jobs (a unique_key already held adds none; a workflow step waiting on its
        parents is not waiting to run yet) and every job committed before."""
        with conn.cursor(row_factory=dict_row) as cur:  # `conn` may be the caller's
            bounds = cur.execute(self._q["queue_bounds"], {"queues": queues}).fetchall()
            names = [row["name"] for row in bounds]
            self._bounded_queues = (self._bounded_queues - set(queues)) | set(names)
            if names:
                prefix = f"conveyor:{self.config.schema}:bound:"
                cur.execute(self._q["lock_queues"], {"prefix": prefix, "queues": names})
            results = insert()
            if names:
                counted = cur.execute(self._q["count_waiting"], {"queues": names}).fetchall()
                waiting = {row["queue"]: row["waiting"] for row in counted}
                for row in bounds:
                    _check_bound(row, waiting.get(row["name"], 0), results)
        return results

    def enqueue_in(
        self, connection: psycopg.Connection[Any], jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Enqueue `jobs` inside the caller's own transaction on `connection` (a psycopg
        connection to the same database): they exist, and workers are woken, only once that
        transaction commits; a rollback leaves no job. The connection is not committed here,
        unless it is in autocommit mode outside a transaction block (then the jobs commit
        at once, together)."""
        if not jobs:
            return []
        idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
        queues = sorted({job.queue for job in jobs})
        linked = any(job.after for job in jobs)

        def plain() -> list[Enqueued]:
            return self._insert(connection, jobs, now, checked=True)

        try:
            with self._db.errors("cannot enqueue on the given connection to"):
                if linked:
                    results = in_callers_transaction(
                        connection,
                        self._q,
                        lambda: self._insert_bounded(
                            connection, queues, lambda: self._insert_linked(connection, jobs, now)
                        ),
                    )
                # autocommit: a transaction of its own; a large batch: a savepoint for its COPY
                elif (connection.autocommit and idle) or _uses_copy(jobs):
                    with connection.transaction():
                        results = self._insert_bounded(connection, queues, plain)
                else:
                    try:
                        results = self._insert(connection, jobs, now, checked=False)
                    except _Bounded:
                        # a savepoint: a full queue rolls back this batch, not the caller's
                        # work; the queue's lock is held until the caller's transaction ends
                        with connection.transaction():
                            results = self._insert_bounded(connection, queues, plain)
        except psycopg.errors.UniqueViolation as exc:
            raise self._taken_id_error(jobs, exc, look_up=False) from exc
        except BoundExceeded as full:
            raise QueueFull(full.message(None)) from None
        if any(result.created for result in results):
            self._notify()  # in-process workers then find the jobs once the caller commits
        return results

    async def enqueue_in_async(
        self, connection: psycopg.AsyncConnection[Any], jobs: Sequence[NewJob], now: datetime
    ) -> list[Enqueued]:
        """Like enqueue_in, on the caller's psycopg.AsyncConnection: the jobs exist, and
        workers are woken, only once the caller's transaction commits."""
        if not jobs:
            return []
        if any(job.after for job in jobs):
            raise UsageError(
                "jobs that wait on other jobs (after=) cannot be enqueued on an async "
                "connection yet: use enqueue_in on a sync psycopg connection, or enqueue "
                "without a connection"
            )
        batch = _Batch.of([new.to_job(now) for new in jobs])
        idle = connection.info.transaction_status == pq.TransactionStatus.IDLE
        params = {**job_arrays(batch.to_insert), "channel": self.config.channel}
        queues = sorted({job.queue for job in jobs})

        async def insert(checked: bool) -> list[Enqueued]:
            async with connection.cursor(row_factory=dict_row) as cur:
                json_as_text(cur.adapters)
                bounds: list[Any] = []
                if checked:  # as _insert_bounded, on the caller's async connection
                    await cur.execute(self._q["queue_bounds"], {"queues": queues})
                    bounds = await cur.fetchall()
                    if names := [row["name"] for row in bounds]:
                        prefix = f"conveyor:{self.config.schema}:bound:"
                        lock = {"prefix": prefix, "queues": names}
                        await cur.execute(self._q["lock_queues"], lock)
                await cur.execute(self._q["insert_jobs"], {**params, "checked": checked})
                rows = await cur.fetchall()
                _refuse_bounded(rows)
                created = {row["id"] for row in rows if row["id"] is not None}
                existing: dict[str, Job] = {}
                if held := batch.held(created):
                    await cur.execute(self._q["active_by_unique_keys"], {"keys": held})
                    rows = await cur.fetchall()
                    existing = {row["unique_key"]: job_from_row(row) for row in rows}
                results = batch.resolve(created, existing)
                if bounds:
                    names = [row["name"] for row in bounds]
                    await cur.execute(self._q["count_waiting"], {"queues": names})
                    waiting = {row["queue"]: row["waiting"] for row in await cur.fetchall()}
                    for row in bounds:
                        _check_bound(row, waiting.get(row["name"], 0), results)
            return results

        try:
            with self._db.errors("cannot enqueue on the given connection to"):
                if connection.autocommit and idle:
                    async with connection.transaction():
                        results = await insert(checked=True)
                else:
                    try:
                        results = await insert(checked=False)
                    except _Bounded:
                        async with connection.transaction():  # a savepoint, as enqueue_in
                            results = await insert(checked=True)
        except psycopg.errors.UniqueViolation as exc:
            raise self._taken_id_error(batch.stamped, exc, look_up=False) from exc
        except BoundExceeded as full:
            raise QueueFull(full.message(None)) from None
        if any(result.created for result in results):
            self._notify()
        return results

    def _insert(
        self,
        conn: psycopg.Connection[Any],
        jobs: Sequence[NewJob],
        now: datetime,
        *,
        checked: bool,
    ) -> list[Enqueued]:
        """Insert within the connection's transaction: one statement for the new jobs (a
        COPY for the plain jobs of a large batch, only when `checked`), then one look-up for
        the unique keys an active job already held. Unless `checked` (the caller holds the
        bounded queues' locks), a batch for a bounded queue inserts nothing and raises
        _Bounded."""
        channel = self.config.channel
        with conn.cursor(row_factory=dict_row) as cur:
            json_as_text(cur.adapters)  # `conn` may be the caller's, with its own loaders
            copied = checked and _uses_copy(jobs)
            if copied:
                batch = self._copy_plain(cur, jobs, now)
            else:
                batch = _Batch.of([new.to_job(now) for new in jobs])
            to_insert = batch.to_insert
            if copied:
                to_insert = [job for job in to_insert if job.unique_key is not None]
            alone = conn.info.transaction_status == pq.TransactionStatus.IDLE
            created: set[str] = set()
            existing: dict[str, Job] = {}
            guarded = not checked
            for _ in range(_ROLLBACK_RETRIES):
                if to_insert:
                    params = {
                        **job_arrays(to_insert), "channel": channel, "checked": not guarded,
                    }  # fmt: skip
                    rows = _execute(cur, self._q["insert_jobs"], params, retry=alone)
                    _refuse_bounded(rows)
                    guarded = False  # a key's job inserted again follows its batch's first
                    created |= {row["id"] for row in rows if row["id"] is not None}
                held = [key for key in batch.held(created) if key not in existing]
                if not held:
                    break
                rows = _execute(cur, self._q["active_by_unique_keys"], {"keys": held})
                existing |= {row["unique_key"]: job_from_row(row) for row in rows}
                # A key's holder may have finished between the two statements: insert
                # that key's job again (an active job may hold it again by then).
                to_insert = batch.first_jobs([key for key in held if key not in existing])
                if not to_insert:
                    break
        return batch.resolve(created, existing)

    def _copy_plain(
        self, cur: psycopg.Cursor[Any], jobs: Sequence[NewJob], now: datetime
    ) -> _Batch:
        """Stamp `jobs` and COPY those without a unique_key, one chunk at a time, so that
        the server stores a chunk while the next one is stamped and formatted. Returns the
        batch of every stamped job, in order."""
        stamped: list[Job] = []
        waiting = False
        with cur.copy(self._q["copy_jobs"]) as copy:
            for start in range(0, len(jobs), COPY_CHUNK):
                chunk = [new.to_job(now) for new in jobs[start : start + COPY_CHUNK]]
                stamped += chunk
                plain = [job for job in chunk if job.unique_key is None]
                waiting = waiting or any(job.state in QUEUED_STATES for job in plain)
                copy.write(copy_text(plain))
            # the server is still storing the last chunks: group the batch meanwhile
            batch = _Batch.of(stamped)
        if waiting:
            cur.execute(self._q["notify"], {"channel": self.config.channel})
        return batch

    def _taken_id_error(
        self,
        jobs: Sequence[NewJob | Job],
        exc: psycopg.errors.UniqueViolation,
        look_up: bool = True,
    ) -> Exception:
        """A DuplicateJobId naming the repeated id of a refused batch (or `exc` itself when the
        conflict was not on the job id)."""
        if exc.diag.constraint_name != _PRIMARY_KEY:
            return exc
        seen: set[str] = set()
        for job in jobs:
            if job.id in seen:
                return DuplicateJobId(
                    f"a job with id {job.id!r} already exists: give each its own id"
                )
            seen.add(job.id)
        if look_up:
            with self._db.connection() as conn:
                row = conn.execute(self._q["existing_ids"], {"ids": sorted(seen)}).fetchone()
            if row is not None:
                return DuplicateJobId(
                    f"a job with id {row['id']!r} already exists: give each job its own id"
                )
        return DuplicateJobId(
            "a job with one of these ids already exists: give each job its own id"
        )


class _Bounded(Exception):
    """The one-statement insert found bounded queues in its batch and inserted nothing."""

    def __init__(self, queues: set[str]) -> None:
        super().__init__(", ".join(sorted(queues)))
        self.queues = frozenset(queues)


def _refuse_bounded(rows: list[Any]) -> None:
    """Raise _Bounded when insert_jobs answered that its batch names bounded queues."""
    for row in rows:
        if row["bounded"] is not None:
            raise _Bounded(set(row["bounded"]))


def _check_bound(bound: Any, waiting: int, results: list[Enqueued]) -> None:
    """BoundExceeded when the queue of `bound` (a queue_bounds row) has more than its
    max_size waiting jobs, counted after this batch's insert."""
    name, max_size = bound["name"], bound["max_size"]
    if waiting <= max_size:
        return
    asked = sum(r.created and r.job.queue == name and r.job.state in QUEUED_STATES for r in results)
    raise BoundExceeded(name, max_size, waiting - asked, asked, bound["when_full"])


def _uses_copy(jobs: Sequence[NewJob]) -> bool:
    return len(jobs) >= COPY_THRESHOLD


def _execute(
    cur: psycopg.Cursor[Any], query: str, params: Mapping[str, Any], retry: bool = False
) -> list[Any]:
    """Run one statement and fetch its rows; with `retry` (the statement is its own
    transaction), run it again when the server rolled it back."""
    attempt = 1
    while True:
        try:
            cur.execute(query, params)
            return cur.fetchall()
        except psycopg.errors.TransactionRollback as exc:
            if not retry:
                raise  # the transaction is aborted: whoever began it decides
            if attempt == _ROLLBACK_RETRIES:
                raise _rolled_back(exc) from exc
            attempt += 1


def _rolled_back(exc: psycopg.Error) -> StoreUnavailable:
    return StoreUnavailable(
        f"the PostgreSQL server rolled this enqueue back {_ROLLBACK_RETRIES} times "
        f"({first_line(exc)}); the call can be retried"
    )


def _key_order(job: Job) -> str:
    return job.unique_key or ""


@dataclass(frozen=True, slots=True)
class _Batch:
    """Jobs to enqueue: the first of each unique_key is inserted, later ones in the batch
    resolve to it; a key an active stored job holds resolves to that job."""

    stamped: list[Job]
    first_of_key: dict[str, int]
    to_insert: list[Job]
    answers: list[Enqueued]  # every job created; resolve() corrects those with a unique_key

    @classmethod
    def of(cls, stamped: list[Job]) -> _Batch:
        first_of_key: dict[str, int] = {}
        to_insert: list[Job] = []
        for index, job in enumerate(stamped):
            key = job.unique_key
            if key is not None:
                if key in first_of_key:
                    continue
                first_of_key[key] = index
            to_insert.append(job)
        if len(first_of_key) > 1:
            # Every batch takes its unique keys' index entries in one order (rows are
            # inserted in list order), so concurrent batches sharing keys cannot deadlock.
            to_insert.sort(key=_key_order)
        return cls(stamped, first_of_key, to_insert, [Enqueued(job, True) for job in stamped])

    def held(self, created: set[str]) -> list[str]:
        """The unique keys whose first job was not inserted: an active job holds them."""
        return [
            self.stamped[index].unique_key or ""
            for index in self.first_of_key.values()
            if self.stamped[index].id not in created
        ]

    def first_jobs(self, keys: list[str]) -> list[Job]:
        """The batch's first job of each of `keys`, in the batch's key order."""
        return sorted((self.stamped[self.first_of_key[key]] for key in keys), key=_key_order)

    def resolve(self, created: set[str], existing: dict[str, Job]) -> list[Enqueued]:
        """The answer to the enqueue, in order (call once: it completes `answers`)."""
        results = self.answers
        if not self.first_of_key:
            return results
        for index, job in enumerate(self.stamped):
            key = job.unique_key
            if key is None:
                continue
            first_index = self.first_of_key[key]
            if self.stamped[first_index].id in created:
                if index != first_index:
                    results[index] = Enqueued(self.stamped[first_index], False)
            elif key in existing:
                results[index] = Enqueued(existing[key], False)
            else:
                raise StoreUnavailable(
                    f"the unique_key {key!r} was taken and released {_ROLLBACK_RETRIES} "
                    "times during this enqueue: jobs holding it finish as fast as they are "
                    "stored; the call can be retried"
                )
        return results
