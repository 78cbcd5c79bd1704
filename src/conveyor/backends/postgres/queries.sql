-- Every statement the PostgreSQL store runs, by name. __schema__ stands for the store's
-- quoted schema name. Parameters are psycopg's %(name)s; lists are passed as arrays and read
-- with = ANY() or unnest(). Times are timestamptz and always come from the caller.

-- migrations ------------------------------------------------------------------------------

-- Held until the migrating transaction ends: concurrent starts apply migrations one at a time.
-- name: migration_lock
SELECT pg_advisory_xact_lock(hashtext('conveyor-migrate:' || %(schema)s));

-- name: create_schema
CREATE SCHEMA IF NOT EXISTS __schema__;

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS __schema__.schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT statement_timestamp()
);

-- name: schema_version_exists
SELECT to_regclass(quote_ident(%(schema)s) || '.schema_version') IS NOT NULL AS exists;

-- name: applied_versions
SELECT version FROM __schema__.schema_version ORDER BY version;

-- name: record_version
INSERT INTO __schema__.schema_version (version) VALUES (%(version)s);

-- producers -------------------------------------------------------------------------------

-- Many jobs in one statement; the NOTIFY is delivered when the transaction commits.
-- A batch that names a queue with a stored bound inserts nothing unless :checked (the caller
-- holds the bounded queues' locks and counts after the insert): it gets back their names in
-- `bounded` instead, so an enqueue into unbounded queues stays one statement.
-- name: insert_jobs
WITH bounded AS (
    SELECT array_agg(q.name ORDER BY q.name) AS names FROM __schema__.queues AS q
    WHERE q.max_size IS NOT NULL AND q.name = ANY(%(queue)s::text[])
), inserted AS (
    INSERT INTO __schema__.jobs (
        id, name, queue, args, metadata, priority, state, max_attempts, timeout,
        run_at, created_at, unique_key, recurring_name, concurrency_key, logs, finished_at,
        key_concurrency, rate_limit, rate_key
    )
    SELECT id, name, queue, args::jsonb, metadata::jsonb, priority, state, max_attempts,
           timeout, run_at, created_at, unique_key, recurring_name, concurrency_key,
           logs::jsonb, finished_at, key_concurrency, rate_limit, rate_key
    FROM unnest(
        %(id)s::text[], %(name)s::text[], %(queue)s::text[], %(args)s::text[],
        %(metadata)s::text[], %(priority)s::integer[], %(state)s::text[],
        %(max_attempts)s::integer[], %(timeout)s::double precision[],
        %(run_at)s::timestamptz[], %(created_at)s::timestamptz[], %(unique_key)s::text[],
        %(recurring_name)s::text[], %(concurrency_key)s::text[], %(logs)s::text[],
        %(finished_at)s::timestamptz[], %(key_concurrency)s::integer[],
        %(rate_limit)s::text[], %(rate_key)s::text[]
    ) WITH ORDINALITY AS new (
        id, name, queue, args, metadata, priority, state, max_attempts, timeout,
        run_at, created_at, unique_key, recurring_name, concurrency_key, logs, finished_at,
        key_concurrency, rate_limit, rate_key, ord
    )
    WHERE %(checked)s OR (SELECT names FROM bounded) IS NULL
    ORDER BY ord
    ON CONFLICT (unique_key)
        WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'running')
    DO NOTHING
    RETURNING id, state
)
SELECT id, NULL AS notified, NULL::text[] AS bounded FROM inserted
UNION ALL
SELECT NULL, pg_notify(%(channel)s, '')::text, NULL
WHERE EXISTS (SELECT 1 FROM inserted WHERE state IN ('scheduled', 'pending'))
UNION ALL
SELECT NULL, NULL, names FROM bounded WHERE names IS NOT NULL AND NOT %(checked)s;

-- Large batches of jobs without a unique_key: COPY, in the text format that rows.copy_text
-- builds (columns in rows.JOB_COLUMNS order); several times faster than unnest for thousands.
-- name: copy_jobs
COPY __schema__.jobs (
    id, name, queue, args, metadata, priority, state, max_attempts, timeout,
    run_at, created_at, unique_key, recurring_name, concurrency_key, logs, finished_at,
    key_concurrency, rate_limit, rate_key
) FROM STDIN (FORMAT TEXT);

-- name: active_by_unique_keys
SELECT * FROM __schema__.jobs
WHERE unique_key = ANY(%(keys)s::text[]) AND state IN ('scheduled', 'pending', 'running');

-- name: existing_ids
SELECT id FROM __schema__.jobs WHERE id = ANY(%(ids)s::text[]) LIMIT 1;

-- claiming --------------------------------------------------------------------------------

-- The unlimited claim is one statement: lock up to :limit due jobs (skipping rows other claims
-- hold), keep the first of each concurrency key, and mark them running. claim_any takes every
-- queue but the :excluded ones (those with a limit, left to claim_ids); claim_in only the
-- :queues. Two statements from one template rather than one statement with
-- "(%(queues)s IS NULL OR …)": each keeps a plan made for its own predicate, also as a
-- generic prepared plan (psycopg prepares a statement from its sixth run).
-- name: claim_any, claim_in
WITH commit_mode AS (
    -- fast_acks: this transaction alone commits without waiting for the WAL flush
    SELECT set_config('synchronous_commit',
                      coalesce(%(commit)s, current_setting('synchronous_commit')), true)
), candidates AS (
    {due_candidates}
), chosen AS (
    SELECT id FROM (
        SELECT id, row_number() OVER (
            PARTITION BY coalesce(concurrency_key, id) ORDER BY priority DESC, run_at, id
        ) AS rank
        FROM candidates
    ) AS ranked
    WHERE rank = 1
), claimed AS (
    UPDATE __schema__.jobs AS j
    SET state = 'running',
        attempt = j.attempt + 1,
        worker_id = %(worker_id)s,
        lease_expires_at = %(lease_expires_at)s,
        started_at = %(now)s
    FROM chosen, commit_mode
    WHERE j.id = chosen.id
    RETURNING j.*
)
-- The claimed jobs, each with the next not-yet-due run_at (the worker's sleep deadline) when
-- the claim came back short (a full one is followed by another claim at once); no job
-- claimed gives one row of NULLs and that time. Saves the worker a second round trip.
-- `limited`: the queues with a stored concurrency this claim left out, which the store then
-- claims from under their locks (claim_ids); `guarded`: whether due jobs of keys with
-- several slots (key_concurrency) or with a rate of their own, which it also leaves out,
-- wait in the queues asked for. The wake-up time is also a spent rate window's opening.
-- `excluding`: whether any queue is paused or limited, which a claim of all queues then leaves
-- out by reading the others one by one (waiting_queues), not by walking past its backlog.
SELECT claimed.*, upcoming.next_run_at, upcoming.limited, upcoming.guarded, upcoming.excluding
FROM (
    SELECT least(min(run_at), ({next_window})) AS next_run_at, EXISTS (
        SELECT 1 FROM __schema__.queues AS x
        WHERE x.paused OR x.concurrency IS NOT NULL OR x.rate_limit IS NOT NULL
    ) AS excluding, (
        SELECT array_agg(q.name) FROM __schema__.queues AS q
        WHERE (q.concurrency IS NOT NULL OR q.rate_limit IS NOT NULL) AND NOT q.paused
          AND q.name = ANY(%(queues)s::text[])  -- only: claim_in
    ) AS limited, EXISTS (
        SELECT 1 FROM __schema__.jobs AS s
        WHERE s.state IN ('scheduled', 'pending')
          AND (s.key_concurrency IS NOT NULL OR s.rate_key IS NOT NULL)
          AND s.run_at <= %(now)s
          AND s.queue = ANY(%(queues)s::text[])  -- only: claim_in
    ) AS guarded
    FROM __schema__.jobs
    WHERE (SELECT count(*) FROM claimed) < %(limit)s
      AND state = 'scheduled' AND run_at > %(now)s
      AND queue = ANY(%(queues)s::text[])  -- only: claim_in
) AS upcoming
LEFT JOIN claimed ON true;

-- The due jobs a claim may take, locked, best first; the queue predicate is claim_any's or
-- claim_in's (candidates_any, candidates_in: the same for the limited queues' claim).
-- The queues asked for are walked one by one, each in its own index order (an equality on
-- jobs_due_by_queue's first column): with `queue = ANY(…)` the cached plan could walk every
-- queue's backlog in jobs_due and filter, so a worker of a small queue paid for a big one.
-- fragment: due_candidates
SELECT c.* FROM unnest(%(queues)s::text[]) AS asked (queue) CROSS JOIN LATERAL (  -- only: claim_in, candidates_in
SELECT j.id, j.priority, j.run_at, j.concurrency_key, j.key_concurrency, j.queue,
       j.rate_limit, j.rate_key
FROM __schema__.jobs AS j
WHERE j.state IN ('scheduled', 'pending') AND j.run_at <= %(now)s
  AND j.queue <> ALL(%(excluded)s::text[])  -- only: claim_any, candidates_any
  AND j.queue = asked.queue  -- only: claim_in, candidates_in
  -- the one-statement claims leave the limited queues (a stored concurrency) to claim_ids
  -- (the names read once, as an array: a per-row anti join over the queues was planned as a
  -- nested loop on a fresh table, with no statistics yet, and cost 40 % more per claim)
  AND j.queue <> ALL(ARRAY(SELECT p.name FROM __schema__.queues AS p WHERE p.paused OR p.concurrency IS NOT NULL OR p.rate_limit IS NOT NULL))  -- only: claim_any, claim_in
  AND j.queue <> ALL(ARRAY(SELECT p.name FROM __schema__.queues AS p WHERE p.paused))  -- only: candidates_any, candidates_in
  -- keys of several slots and jobs with a rate are claimed under their locks, never by one
  -- statement
  AND j.key_concurrency IS NULL AND j.rate_key IS NULL  -- only: claim_any, claim_in
  -- a job's own rate: its key's window is not spent
  AND (j.rate_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM __schema__.rate_windows AS w
      WHERE w.scope = 'key' AND w.name = j.rate_key AND w.full_until > %(now)s))
  -- a key has room: one slot (NULL) and no running job of it, or fewer running than its
  -- limit; each look-up names its own index's predicate (jobs_running_keys, one-slot keys;
  -- jobs_running_shared_keys, the others)
  AND (j.concurrency_key IS NULL
       OR (j.key_concurrency IS NULL
           AND NOT EXISTS (
               SELECT 1 FROM __schema__.jobs AS r
               WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
                 AND r.key_concurrency IS NULL)
           AND NOT EXISTS (
               SELECT 1 FROM __schema__.jobs AS r
               WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
                 AND r.key_concurrency IS NOT NULL))
       OR j.key_concurrency > {running_of_key})
ORDER BY j.priority DESC, j.run_at, j.id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
) AS c ORDER BY c.priority DESC, c.run_at, c.id LIMIT %(limit)s  -- only: claim_in, candidates_in

-- Limited queues: one transaction takes a lock per limited queue (sorted, so concurrent
-- claims never deadlock), counts the queue's running jobs, locks candidates and claims the
-- chosen ones. The lock is what keeps a serial queue serial across processes and hosts:
-- SKIP LOCKED alone would let two claims each see zero running jobs.
-- name: lock_queues
SELECT count(pg_advisory_xact_lock(lock_key))
FROM (
    SELECT DISTINCT hashtext(%(prefix)s || queue) AS lock_key
    FROM unnest(%(queues)s::text[]) AS queue
    ORDER BY lock_key
    OFFSET 0
) AS sorted_keys;

-- The stored limits a claim honours (read under no lock: the queue's own lock, taken next,
-- guards the count of its running jobs).
-- name: queue_limits
SELECT name, concurrency, rate_limit, paused FROM __schema__.queues
WHERE concurrency IS NOT NULL OR rate_limit IS NOT NULL OR paused;

-- The queues holding waiting jobs, one index probe each (loose scans of jobs_due_by_queue and
-- jobs_due_guarded_by_queue), but the paused ones, at most %(most)s of them. The limited ones
-- stay in: a claim of them learns of their limits (and then claims them under their locks).
-- name: waiting_queues
WITH RECURSIVE plain (queue) AS (
    SELECT (SELECT min(queue) FROM __schema__.jobs
            WHERE state IN ('scheduled', 'pending') AND key_concurrency IS NULL
              AND rate_key IS NULL)
    UNION ALL
    SELECT (SELECT min(j.queue) FROM __schema__.jobs AS j
            WHERE j.state IN ('scheduled', 'pending') AND j.key_concurrency IS NULL
              AND j.rate_key IS NULL AND j.queue > plain.queue)
    FROM plain WHERE plain.queue IS NOT NULL
), guarded (queue) AS (
    SELECT (SELECT min(queue) FROM __schema__.jobs
            WHERE state IN ('scheduled', 'pending')
              AND (key_concurrency IS NOT NULL OR rate_key IS NOT NULL))
    UNION ALL
    SELECT (SELECT min(j.queue) FROM __schema__.jobs AS j
            WHERE j.state IN ('scheduled', 'pending')
              AND (j.key_concurrency IS NOT NULL OR j.rate_key IS NOT NULL)
              AND j.queue > guarded.queue)
    FROM guarded WHERE guarded.queue IS NOT NULL
)
SELECT queue FROM (
    SELECT queue FROM plain WHERE queue IS NOT NULL
    UNION
    SELECT queue FROM guarded WHERE queue IS NOT NULL
) AS waiting
WHERE queue <> ALL(ARRAY(SELECT p.name FROM __schema__.queues AS p WHERE p.paused))
LIMIT %(most)s;

-- Keys of several slots: one lock per key (the two-integer form, apart from the queues'
-- locks), sorted, taken after the queues' locks, so concurrent claims never deadlock; under
-- it the key's running jobs are counted and the claim takes only the room left.
-- name: lock_keys
SELECT count(pg_advisory_xact_lock(hashtext(%(prefix)s), lock_key))
FROM (
    SELECT DISTINCT hashtext(key) AS lock_key
    FROM unnest(%(keys)s::text[]) AS key
    ORDER BY lock_key
    OFFSET 0
) AS sorted_keys;

-- The running jobs of a candidate's key (j), on both indexes of running keys.
-- fragment: running_of_key
(SELECT count(*) FROM __schema__.jobs AS r
 WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
   AND r.key_concurrency IS NULL)
+ (SELECT count(*) FROM __schema__.jobs AS r
   WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key
     AND r.key_concurrency IS NOT NULL)

-- name: running_per_key
SELECT concurrency_key, count(*) AS running FROM (
    SELECT concurrency_key FROM __schema__.jobs
    WHERE state = 'running' AND concurrency_key = ANY(%(keys)s::text[])
      AND key_concurrency IS NULL
    UNION ALL
    SELECT concurrency_key FROM __schema__.jobs
    WHERE state = 'running' AND concurrency_key = ANY(%(keys)s::text[])
      AND key_concurrency IS NOT NULL
) AS running
GROUP BY concurrency_key;

-- name: guarded_due
SELECT EXISTS (
    SELECT 1 FROM __schema__.jobs
    WHERE state IN ('scheduled', 'pending')
      AND (key_concurrency IS NOT NULL OR rate_key IS NOT NULL)
      AND run_at <= %(now)s
) AS due;

-- When the soonest spent rate window allows a start again (a worker's wake-up time, as a
-- scheduled job's run_at; an opened window is no longer counted, so it wakes workers once).
-- fragment: next_window
SELECT min(w.full_until) FROM __schema__.rate_windows AS w WHERE w.full_until > %(now)s

-- The windows a claim starts jobs in: created when missing, then locked in one order
-- (sorted), after the queues' and keys' locks, so concurrent claims never deadlock.
-- name: ensure_rate_windows
INSERT INTO __schema__.rate_windows (scope, name)
SELECT scope, name FROM unnest(%(scopes)s::text[], %(names)s::text[]) AS b (scope, name)
ORDER BY scope, name
ON CONFLICT (scope, name) DO NOTHING;

-- name: lock_rate_windows
SELECT w.scope, w.name, w.starts FROM __schema__.rate_windows AS w
JOIN unnest(%(scopes)s::text[], %(names)s::text[]) AS b (scope, name)
  ON w.scope = b.scope AND w.name = b.name
ORDER BY w.scope, w.name
FOR UPDATE OF w;

-- name: save_rate_windows
UPDATE __schema__.rate_windows AS w
SET starts = ARRAY(SELECT jsonb_array_elements_text(r.starts)::double precision),
    full_until = r.full_until
FROM jsonb_to_recordset(%(windows)s::jsonb)
    AS r (scope text, name text, starts jsonb, full_until timestamptz)
WHERE w.scope = r.scope AND w.name = r.name;

-- name: count_running
SELECT queue, count(*) AS running FROM __schema__.jobs
WHERE state = 'running' AND queue = ANY(%(queues)s::text[])
GROUP BY queue;

-- name: candidates_any, candidates_in
{due_candidates};

-- name: claim_ids
UPDATE __schema__.jobs AS j
SET state = 'running',
    attempt = j.attempt + 1,
    worker_id = %(worker_id)s,
    lease_expires_at = %(lease_expires_at)s,
    started_at = %(now)s
WHERE j.id = ANY(%(ids)s::text[]) AND j.state IN ('scheduled', 'pending')
RETURNING j.*;

-- Only scheduled jobs wait for their run_at: pending ones are due already.
-- name: next_run_at_any, next_run_at_in
SELECT least(min(run_at), ({next_window})) AS run_at FROM __schema__.jobs
WHERE state = 'scheduled' AND run_at > %(now)s
  AND queue = ANY(%(queues)s::text[])  -- only: next_run_at_in
;

-- finishing and reporting -----------------------------------------------------------------

-- Many outcomes in one statement, each fenced on (id, worker_id, attempt, running): an
-- outcome from a worker that lost its lease matches no row and is dropped. One NOTIFY wakes
-- other workers, only when one may now claim something it could not before: a job went back
-- to pending, or room opened in a limited queue (:limited) or for a concurrency key.
-- Decrement the children of the edges a statement's `resolved` CTE just resolved; a child
-- whose last open edge that was, and that still waits, is released (SET reads the row as
-- locked, so each CASE sees the counter before this decrement; a concurrent decrement is
-- waited for and then seen). Its `released` CTE returns the children's new states.
-- fragment: release_resolved
per_child AS (
    SELECT child_id, count(*)::integer AS n FROM resolved GROUP BY child_id
), released AS (
    UPDATE __schema__.jobs AS j
    SET parents_left = j.parents_left - c.n,
        state = CASE WHEN j.parents_left - c.n > 0 OR j.state <> 'waiting' THEN j.state
                     WHEN j.run_at > %(now)s THEN 'scheduled' ELSE 'pending' END,
        run_at = CASE WHEN j.parents_left - c.n > 0 OR j.state <> 'waiting' THEN j.run_at
                      ELSE greatest(j.run_at, %(now)s) END
    FROM per_child AS c
    WHERE j.id = c.child_id
    RETURNING j.state
)

-- A completed job that others wait on releases them in this same statement (resolved …
-- released: model/dependencies.py's first rule, that a completed parent satisfies every
-- edge, applied here so a chain of steps costs one statement a step; the child's row lock
-- serialises two parents finishing at once, and the UPDATE re-reads the locked row, so
-- exactly one of them sees the counter reach zero). A job with dependents that *failed* or
-- was cancelled is left out by finish_jobs, one autocommitted statement, and applied by
-- finish_jobs_linked in a transaction with the decision of its dependents
-- (backends/postgres/workflows.py).
-- name: finish_jobs, finish_jobs_linked
WITH commit_mode AS (
    -- fast_acks: this transaction alone commits without waiting for the WAL flush
    SELECT set_config('synchronous_commit',
                      coalesce(%(commit)s, current_setting('synchronous_commit')), true)
), outcome AS (
    SELECT * FROM jsonb_to_recordset(%(outcomes)s::jsonb) AS o (
        id text, worker_id text, attempt integer, state text, result jsonb,
        finished_at timestamptz, run_at timestamptz, give_back integer, error jsonb
    )
), finished AS (
    UPDATE __schema__.jobs AS j
    SET state = o.state,
        result = o.result,
        finished_at = o.finished_at,
        run_at = coalesce(o.run_at, j.run_at),
        attempt = j.attempt - o.give_back,
        errors = CASE WHEN o.error IS NULL THEN j.errors
                      ELSE j.errors || jsonb_build_array(o.error) END,
        worker_id = NULL,
        lease_expires_at = NULL
    FROM outcome AS o, commit_mode
    WHERE j.id = o.id AND j.worker_id = o.worker_id AND j.attempt = o.attempt
      AND j.state = 'running'
      AND (j.dependents = 0 OR o.state NOT IN ('failed', 'cancelled'))  -- only: finish_jobs
    RETURNING j.id, o.worker_id, o.attempt,
              j.dependents > 0 AND j.state IN ('failed', 'cancelled') AS ends_parent,
              j.dependents > 0 AND j.state = 'completed' AS releases,
              j.state = 'pending' OR j.concurrency_key IS NOT NULL
              OR j.queue = ANY(%(limited)s::text[]) AS frees_room
), resolved AS (
    -- read, not marked: nothing reads a completed parent's edges again (a batch naming it
    -- later decides only its own new edges), and not writing them keeps a fan-in cheap
    SELECT e.child_id FROM __schema__.edges AS e
    JOIN finished AS f ON e.parent_id = f.id
    WHERE f.releases AND NOT e.resolved
), {release_resolved}
SELECT id, worker_id, attempt, ends_parent, NULL AS notified FROM finished
UNION ALL
SELECT NULL, NULL, NULL, NULL, pg_notify(%(channel)s, '')::text
WHERE EXISTS (SELECT 1 FROM finished WHERE frees_room)
   OR EXISTS (SELECT 1 FROM released WHERE state = 'pending');

-- name: job_logs
SELECT id, logs, attempt FROM __schema__.jobs
WHERE id = ANY(%(ids)s::text[]) AND state = 'running'
FOR UPDATE;

-- name: report
UPDATE __schema__.jobs
SET progress = coalesce(%(progress)s, progress),
    progress_message = coalesce(%(progress_message)s, progress_message),
    logs = coalesce(%(logs)s::jsonb, logs)
WHERE id = %(id)s AND state = 'running';

-- workers ---------------------------------------------------------------------------------

-- One statement: the worker is recorded alive (its own fields, never `requested`, an
-- operator's ask) and its running jobs' leases extended; one row back: the operator's request
-- and the leased jobs whose cancellation was requested.
-- name: heartbeat
WITH commit_mode AS (
    -- fast_acks: this transaction alone commits without waiting for the WAL flush
    SELECT set_config('synchronous_commit',
                      coalesce(%(commit)s, current_setting('synchronous_commit')), true)
), seen AS (
    INSERT INTO __schema__.workers
        (id, host, pid, queues, concurrency, started_at, last_seen_at, mode)
    VALUES (%(id)s, %(host)s, %(pid)s, %(queues)s::jsonb, %(concurrency)s, %(started_at)s,
            %(last_seen_at)s, %(mode)s)
    ON CONFLICT (id) DO UPDATE SET
        host = excluded.host,
        pid = excluded.pid,
        queues = excluded.queues,
        concurrency = excluded.concurrency,
        started_at = excluded.started_at,
        last_seen_at = excluded.last_seen_at,
        mode = excluded.mode
    RETURNING requested
), leased AS (
    UPDATE __schema__.jobs SET lease_expires_at = %(lease_expires_at)s
    FROM commit_mode
    WHERE id = ANY(%(ids)s::text[]) AND worker_id = %(id)s AND state = 'running'
    RETURNING id, cancel_requested
)
SELECT (SELECT requested FROM seen) AS requested,
       ARRAY(SELECT id FROM leased WHERE cancel_requested) AS cancel_requested;

-- name: delete_worker
DELETE FROM __schema__.workers WHERE id = %(id)s;

-- name: list_workers
SELECT * FROM __schema__.workers ORDER BY id;

-- name: lock_worker
SELECT * FROM __schema__.workers WHERE id = %(id)s FOR UPDATE;

-- name: set_worker_request
UPDATE __schema__.workers SET requested = %(requested)s WHERE id = %(id)s RETURNING *;

-- A window whose latest start (its array's last, oldest first) left every window behind.
-- name: prune_rate_windows
DELETE FROM __schema__.rate_windows
WHERE coalesce(starts[cardinality(starts)], 0) < extract(epoch FROM %(before)s::timestamptz);

-- name: prune_workers
DELETE FROM __schema__.workers WHERE last_seen_at < %(before)s;

-- maintenance -----------------------------------------------------------------------------

-- name: expired_leases
SELECT id, attempt, max_attempts, worker_id, lease_expires_at, cancel_requested, dependents
FROM __schema__.jobs
WHERE state = 'running' AND lease_expires_at < %(now)s
FOR UPDATE SKIP LOCKED;

-- name: rescue_jobs
WITH rescued AS (
    UPDATE __schema__.jobs AS j
    SET state = r.state,
        finished_at = r.finished_at,
        run_at = coalesce(r.run_at, j.run_at),
        errors = j.errors || jsonb_build_array(r.error::jsonb),
        worker_id = NULL,
        lease_expires_at = NULL
    FROM unnest(
        %(id)s::text[], %(state)s::text[], %(finished_at)s::timestamptz[],
        %(run_at)s::timestamptz[], %(error)s::text[]
    ) AS r (id, state, finished_at, run_at, error)
    WHERE j.id = r.id AND j.state = 'running'
    RETURNING j.id, j.dependents > 0 AND j.finished_at IS NOT NULL AS ends_parent
)
SELECT id, ends_parent, NULL AS notified FROM rescued
UNION ALL
SELECT NULL, NULL, pg_notify(%(channel)s, '') WHERE EXISTS (SELECT 1 FROM rescued);

-- name: promote_scheduled
UPDATE __schema__.jobs SET state = 'pending'
WHERE state = 'scheduled' AND run_at <= %(now)s;

-- Deleting in bounded batches keeps each transaction short.
-- name: prune_batch
DELETE FROM __schema__.jobs
WHERE id IN (
    SELECT id FROM __schema__.jobs
    WHERE finished_at < greatest(%(completed_before)s::timestamptz, %(failed_before)s::timestamptz)
      AND ((state IN ('completed', 'cancelled', 'skipped')
            AND finished_at < %(completed_before)s::timestamptz)
           OR (state = 'failed' AND finished_at < %(failed_before)s::timestamptz))
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
)
RETURNING id, workflow_id;

-- name: count_prunable
SELECT state, count(*) AS n
FROM __schema__.jobs
WHERE finished_at < greatest(%(completed_before)s::timestamptz, %(failed_before)s::timestamptz)
  AND ((state IN ('completed', 'cancelled', 'skipped')
        AND finished_at < %(completed_before)s::timestamptz)
       OR (state = 'failed' AND finished_at < %(failed_before)s::timestamptz))
GROUP BY state;

-- name: prune_fires
DELETE FROM __schema__.recurring_fires WHERE recorded_at < %(before)s;

-- recurring jobs ---------------------------------------------------------------------------

-- name: recurring_all
SELECT r.*, j.state AS last_job_state
FROM __schema__.recurring AS r LEFT JOIN __schema__.jobs AS j ON j.id = r.last_job_id
ORDER BY r.name;

-- name: recurring_one
SELECT r.*, j.state AS last_job_state
FROM __schema__.recurring AS r LEFT JOIN __schema__.jobs AS j ON j.id = r.last_job_id
WHERE r.name = %(name)s;

-- name: recurring_lock
SELECT name FROM __schema__.recurring WHERE name = ANY(%(names)s::text[]) FOR UPDATE;

-- name: recurring_upsert
INSERT INTO __schema__.recurring (
    name, cron, timezone, job_name, args, overlap, catch_up, enabled, toggled,
    next_fire_at, last_fire_at, last_job_id, created_at, updated_at
) VALUES (
    %(name)s, %(cron)s, %(timezone)s, %(job_name)s, %(args)s::jsonb, %(overlap)s,
    %(catch_up)s, %(enabled)s, %(toggled)s, %(next_fire_at)s, %(last_fire_at)s,
    %(last_job_id)s, %(created_at)s, %(updated_at)s
)
ON CONFLICT (name) DO UPDATE SET
    cron = excluded.cron, timezone = excluded.timezone, job_name = excluded.job_name,
    args = excluded.args, overlap = excluded.overlap, catch_up = excluded.catch_up,
    enabled = excluded.enabled, toggled = excluded.toggled,
    next_fire_at = excluded.next_fire_at, last_fire_at = excluded.last_fire_at,
    last_job_id = excluded.last_job_id, updated_at = excluded.updated_at;

-- name: recurring_delete
DELETE FROM __schema__.recurring WHERE name = %(name)s;

-- name: recurring_due
SELECT r.*, NULL AS last_job_state FROM __schema__.recurring AS r
WHERE enabled AND next_fire_at <= %(now)s
ORDER BY next_fire_at, name;

-- name: recurring_next
SELECT min(next_fire_at) AS next_fire_at FROM __schema__.recurring
WHERE enabled AND next_fire_at > %(now)s;

-- name: recurring_active
SELECT DISTINCT recurring_name FROM __schema__.jobs
WHERE recurring_name = ANY(%(names)s::text[])
  AND state IN ('scheduled', 'pending', 'running');

-- name: record_fire
INSERT INTO __schema__.recurring_fires (name, fire_at, job_id, recorded_at)
VALUES (%(name)s, %(fire_at)s, %(job_id)s, %(recorded_at)s)
ON CONFLICT (name, fire_at) DO NOTHING
RETURNING name;

-- queues and statistics ------------------------------------------------------------------

-- name: set_queue_paused
INSERT INTO __schema__.queues (name, paused, changed_at)
VALUES (%(name)s, %(paused)s, %(now)s)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;

-- name: paused_queues
SELECT name FROM __schema__.queues WHERE paused;

-- name: queue_settings_all
SELECT name, paused, concurrency, max_size, when_full, rate_limit, operator_set
FROM __schema__.queues;

-- The row is created first (a no-op when it exists), so FOR UPDATE always has a row to lock:
-- two concurrent changes of one queue apply one after the other.
-- name: ensure_queue
INSERT INTO __schema__.queues (name, paused, changed_at) VALUES (%(name)s, false, %(now)s)
ON CONFLICT (name) DO NOTHING;

-- name: lock_queue_settings
SELECT name, paused, concurrency, max_size, when_full, rate_limit, operator_set
FROM __schema__.queues
WHERE name = %(name)s FOR UPDATE;

-- name: save_queue_settings
UPDATE __schema__.queues
SET concurrency = %(concurrency)s, max_size = %(max_size)s, when_full = %(when_full)s,
    rate_limit = %(rate_limit)s, operator_set = %(operator_set)s::text[], changed_at = %(now)s
WHERE name = %(name)s;

-- The bounds of the queues a batch enqueues to.
-- name: queue_bounds
SELECT name, max_size, when_full FROM __schema__.queues
WHERE max_size IS NOT NULL AND name = ANY(%(queues)s::text[])
ORDER BY name;

-- Waiting jobs of bounded queues, counted under the queues' advisory locks (lock_queues).
-- name: count_waiting
SELECT queue, count(*) AS waiting FROM __schema__.jobs
WHERE state IN ('scheduled', 'pending') AND queue = ANY(%(queues)s::text[])
GROUP BY queue;

-- name: queue_stats
SELECT queue,
       count(*) FILTER (WHERE state IN ('scheduled', 'pending')) AS waiting,
       count(*) FILTER (WHERE state IN ('scheduled', 'pending') AND run_at <= %(now)s) AS due,
       count(*) FILTER (WHERE state = 'running') AS running,
       min(run_at) FILTER (WHERE state IN ('scheduled', 'pending') AND run_at <= %(now)s)
           AS oldest_due_at
FROM __schema__.jobs
GROUP BY queue;

-- Due jobs a key's limit or their own rate holds back now, per queue (for the queue page and
-- the metrics; each due keyed job costs one look-up of its key's running jobs).
-- name: held_back
SELECT queue,
       count(*) FILTER (
           WHERE concurrency_key IS NOT NULL AND coalesce(key_concurrency, 1) <= {running_of_key}
       ) AS by_key,
       count(*) FILTER (WHERE rate_key IS NOT NULL AND EXISTS (
           SELECT 1 FROM __schema__.rate_windows AS w
           WHERE w.scope = 'key' AND w.name = j.rate_key AND w.full_until > %(now)s)) AS by_rate
FROM __schema__.jobs AS j
WHERE state IN ('scheduled', 'pending') AND run_at <= %(now)s
  AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
GROUP BY queue;

-- name: spent_queues
SELECT name FROM __schema__.rate_windows WHERE scope = 'queue' AND full_until > %(now)s;

-- Minutes as epoch multiples of 60, whatever the session's time zone.
-- name: throughput
SELECT to_timestamp(floor(extract(epoch FROM finished_at) / 60) * 60) AS minute,
       count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed
FROM __schema__.jobs
WHERE finished_at IS NOT NULL AND finished_at >= %(since)s AND state IN ('completed', 'failed')
GROUP BY 1
ORDER BY 1;

-- history (model/history.py) -------------------------------------------------------------

-- Finished jobs counted per queue and stretch of %(step)s seconds (epoch multiples), the
-- columns of history after the stretch's start; jobs in [since, until) past the watermark.
-- run_at is when the last attempt was due, so wait is that attempt's time in line.
-- fragment: finished_jobs
SELECT to_timestamp(floor(extract(epoch FROM finished_at) / %(step)s) * %(step)s) AS start,
       queue,
       count(*) FILTER (WHERE state = 'completed') AS completed,
       count(*) FILTER (WHERE state = 'failed') AS failed,
       count(*) FILTER (WHERE state = 'cancelled') AS cancelled,
       count(started_at) AS wait_count,
       coalesce(sum(greatest(0, extract(epoch FROM started_at - run_at))), 0) AS wait_sum,
       count(run) AS run_count,
       coalesce(sum(run), 0) AS run_sum,
       count(*) FILTER (WHERE b = 0) AS h0, count(*) FILTER (WHERE b = 1) AS h1,
       count(*) FILTER (WHERE b = 2) AS h2, count(*) FILTER (WHERE b = 3) AS h3,
       count(*) FILTER (WHERE b = 4) AS h4, count(*) FILTER (WHERE b = 5) AS h5,
       count(*) FILTER (WHERE b = 6) AS h6, count(*) FILTER (WHERE b = 7) AS h7,
       count(*) FILTER (WHERE b = 8) AS h8, count(*) FILTER (WHERE b = 9) AS h9,
       count(*) FILTER (WHERE b = 10) AS h10
FROM (
    SELECT *, CASE WHEN run IS NULL THEN -1 WHEN run < 0.01 THEN 0 WHEN run < 0.05 THEN 1
                   WHEN run < 0.1 THEN 2 WHEN run < 0.25 THEN 3 WHEN run < 0.5 THEN 4
                   WHEN run < 1 THEN 5 WHEN run < 2.5 THEN 6 WHEN run < 10 THEN 7
                   WHEN run < 60 THEN 8 WHEN run < 300 THEN 9 ELSE 10 END AS b
    FROM (
        SELECT finished_at, queue, state, started_at, run_at,
               CASE WHEN state IN ('completed', 'failed') AND started_at IS NOT NULL
                    THEN greatest(0, extract(epoch FROM finished_at - started_at))::float8
               END AS run
        FROM __schema__.jobs
        WHERE finished_at IS NOT NULL
          AND finished_at >= greatest(%(since)s::timestamptz,
                                      (SELECT until FROM __schema__.history_mark))
          AND finished_at < %(until)s
    ) AS timed
) AS bucketed
GROUP BY 1, 2

-- Taken first by a roll-up: a second caller waits here, then sees the moved watermark.
-- name: history_lock_mark
SELECT until FROM __schema__.history_mark WHERE id = 1 FOR UPDATE;

-- name: history_roll_up
INSERT INTO __schema__.history (minute, queue, completed, failed, cancelled, wait_count,
    wait_sum, run_count, run_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10)
{finished_jobs}
ON CONFLICT (minute, queue) DO UPDATE SET
    completed = history.completed + excluded.completed,
    failed = history.failed + excluded.failed,
    cancelled = history.cancelled + excluded.cancelled,
    wait_count = history.wait_count + excluded.wait_count,
    wait_sum = history.wait_sum + excluded.wait_sum,
    run_count = history.run_count + excluded.run_count,
    run_sum = history.run_sum + excluded.run_sum,
    h0 = history.h0 + excluded.h0, h1 = history.h1 + excluded.h1,
    h2 = history.h2 + excluded.h2, h3 = history.h3 + excluded.h3,
    h4 = history.h4 + excluded.h4, h5 = history.h5 + excluded.h5,
    h6 = history.h6 + excluded.h6, h7 = history.h7 + excluded.h7,
    h8 = history.h8 + excluded.h8, h9 = history.h9 + excluded.h9,
    h10 = history.h10 + excluded.h10;

-- name: history_set_mark
UPDATE __schema__.history_mark SET until = %(until)s WHERE id = 1;

-- Rolled-up minutes before the watermark, then job rows after it, in one statement (one
-- snapshot), per stretch and queue; the store adds up a stretch's two parts.
-- name: history
WITH mark AS (
    SELECT coalesce(until, %(since)s::timestamptz) AS until FROM __schema__.history_mark
)
SELECT to_timestamp(floor(extract(epoch FROM minute) / %(step)s) * %(step)s) AS start, queue,
       sum(completed) AS completed, sum(failed) AS failed, sum(cancelled) AS cancelled,
       sum(wait_count) AS wait_count, sum(wait_sum) AS wait_sum, sum(run_count) AS run_count,
       sum(run_sum) AS run_sum, sum(h0) AS h0, sum(h1) AS h1, sum(h2) AS h2, sum(h3) AS h3,
       sum(h4) AS h4, sum(h5) AS h5, sum(h6) AS h6, sum(h7) AS h7, sum(h8) AS h8,
       sum(h9) AS h9, sum(h10) AS h10
FROM __schema__.history
WHERE minute >= %(since)s AND minute < least(%(until)s::timestamptz, (SELECT until FROM mark))
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
GROUP BY 1, 2
UNION ALL
SELECT * FROM (
    {finished_jobs}
) AS live
WHERE %(queue)s::text IS NULL OR queue = %(queue)s::text;

-- name: prune_history
DELETE FROM __schema__.history WHERE minute < %(before)s;

-- operators -------------------------------------------------------------------------------

-- name: get_job
SELECT * FROM __schema__.jobs WHERE id = %(id)s;

-- The listing's count and page see one snapshot.
-- name: repeatable_read
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ;

-- Pages walk jobs_state_created in order. Before a table's first ANALYZE (right after a bulk
-- load) the planner guesses few jobs per state and would rather bitmap-scan every pending job
-- and sort them for page 100 (190 ms against 15): not in this transaction (SET LOCAL leaves
-- no session state behind for a pooler).
-- name: walk_in_order
SET LOCAL enable_bitmapscan = off;

-- Listing newest first in two shapes, each with its own plan (a generic prepared plan of one
-- catch-all query would filter every row): with no filter or a state filter (and maybe name,
-- queue, a created range and a worker), walk jobs_state_created once per state and merge
-- (list_jobs_in_states, given every state when none is asked for: an index over all jobs by
-- creation alone would cost every write an entry); a scan filter (a search, a part of the
-- name, a finished range, an error kind), or name or queue alone, reads the matches once
-- (list_jobs_scan). Each count stops at %(count_limit)s rows (LIST_COUNT_CAP + 1): past the
-- cap the store reports a capped total, and the planner's estimate (estimate_listed),
-- instead of counting 100,000 rows every page.

-- A created range bounds each walk ("created_at >= coalesce(…)" is a range on the index).
-- fragment: walk_filters
AND created_at >= coalesce(%(created_after)s::timestamptz, '-infinity')
AND created_at < coalesce(%(created_before)s::timestamptz, 'infinity')
AND (%(name)s::text IS NULL OR name = %(name)s::text)
AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
AND (%(worker)s::text IS NULL OR worker_id = %(worker)s::text)

-- A search reads job_texts (migration 0013, kept by triggers): ILIKE with a pattern of three
-- characters or more reads its trigram index's candidates; the backend escapes %, _ and \ in
-- the text. These run with custom plans (force_custom_plan), so a filter left off (NULL)
-- folds away and the planner sees the pattern.
-- fragment: scan_filters
AND (%(search)s::text IS NULL
     OR id IN (SELECT t.job_id FROM __schema__.job_texts AS t WHERE t.body ILIKE %(search)s::text))
AND (%(states)s::text[] IS NULL OR state = ANY(%(states)s::text[]))
AND (%(name_contains)s::text IS NULL OR name ILIKE %(name_contains)s::text)
AND (%(finished_after)s::timestamptz IS NULL OR finished_at >= %(finished_after)s::timestamptz)
AND (%(finished_before)s::timestamptz IS NULL OR finished_at < %(finished_before)s::timestamptz)
AND (%(error_kind)s::text IS NULL OR (errors -> -1 ->> 'kind') = %(error_kind)s::text)
{walk_filters}

-- name: count_listed
SELECT count(*) AS total FROM (SELECT FROM __schema__.jobs LIMIT %(count_limit)s) AS capped;

-- One ordered walk of jobs_state_created per state, merged: state = ANY() gives the index no
-- order, and before the table's first ANALYZE (a bulk load) the planner then sorted all 99,000
-- pending jobs for one page (110 ms; this shape: 2 ms).
-- name: list_jobs_in_states
SELECT listed.* FROM unnest(%(walk_states)s::text[]) AS wanted(state)
CROSS JOIN LATERAL (
    SELECT * FROM __schema__.jobs
    WHERE state = wanted.state
      {walk_filters}
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s + %(offset)s
) AS listed
ORDER BY listed.created_at DESC, listed.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: count_listed_in_states
SELECT count(*) AS total FROM (
    SELECT FROM __schema__.jobs
    WHERE state = ANY(%(walk_states)s::text[])
      {walk_filters}
    LIMIT %(count_limit)s
) AS capped;

-- The planner's guess of how many jobs match, for a total past the cap ("about 13,000"):
-- the backend reads "Plan Rows" of this statement's EXPLAIN.
-- name: estimate_listed
EXPLAIN (FORMAT JSON) SELECT 1 FROM __schema__.jobs
WHERE true
  {scan_filters};

-- name: force_custom_plan
SET LOCAL plan_cache_mode = force_custom_plan;

-- A scan filter, or a name or queue filter without a state: no index gives these in order,
-- and walking the jobs newest first for a filter that matches few jobs reads the whole table
-- row by row (a search, 170 ms), or the planner sorts the table (name and queue before the
-- first ANALYZE), and the count scanned it again. So list_jobs_scan collects up to
-- %(count_limit)s matches (id, created_at) once (through job_texts_search or jobs_error_kind where
-- they apply, else by a scan), counts them, sorts them and joins the page back by primary
-- key. Every row carries the count (listed_total); when the page is empty, one row of NULL
-- job columns carries it. When it finds %(count_limit)s matches, newer ones may lie past
-- where it stopped: the backend then lists the page with list_jobs_scan_newest, which walks
-- jobs_state_created per state and stops after a page (quick: that many matches are seldom
-- sparse).

-- name: list_jobs_scan
WITH matches AS MATERIALIZED (
    SELECT id, created_at FROM __schema__.jobs
    WHERE true
      {scan_filters}
    LIMIT %(count_limit)s
), listed AS (
    SELECT id AS listed_id, created_at AS listed_at FROM matches
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT counted.listed_total, jobs.*
FROM (SELECT count(*) AS listed_total FROM matches) AS counted
LEFT JOIN (listed JOIN __schema__.jobs AS jobs ON jobs.id = listed.listed_id) ON true
ORDER BY listed.listed_at DESC, listed.listed_id DESC;

-- name: list_jobs_scan_newest
SELECT listed.* FROM unnest(%(walk_states)s::text[]) AS wanted(state)
CROSS JOIN LATERAL (
    SELECT * FROM __schema__.jobs
    WHERE state = wanted.state
      {scan_filters}
    ORDER BY created_at DESC, id DESC
    LIMIT %(limit)s + %(offset)s
) AS listed
ORDER BY listed.created_at DESC, listed.id DESC
LIMIT %(limit)s OFFSET %(offset)s;

-- name: counts
SELECT queue, state, count(*) AS n FROM __schema__.jobs GROUP BY queue, state;

-- name: cancel_waiting
UPDATE __schema__.jobs SET state = 'cancelled', finished_at = %(now)s
WHERE id = %(id)s AND state IN ('waiting', 'scheduled', 'pending')
RETURNING *;

-- name: request_cancel
UPDATE __schema__.jobs SET cancel_requested = true
WHERE id = %(id)s AND state = 'running'
RETURNING *;

-- A retried job takes its unique_key back only if no other active job holds it.
-- name: retry_job
UPDATE __schema__.jobs AS j
SET state = 'pending',
    attempt = 0,
    run_at = %(now)s,
    finished_at = NULL,
    result = NULL,
    cancel_requested = false,
    lease_expires_at = NULL
WHERE j.id = %(id)s AND j.state IN ('failed', 'cancelled')
  AND (j.unique_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM __schema__.jobs AS o
      WHERE o.unique_key = j.unique_key AND o.state IN ('scheduled', 'pending', 'running')))
RETURNING j.*;

-- The limited-queue claim's transaction, under fast_acks.
-- name: local_commit_mode
SELECT set_config('synchronous_commit',
                  coalesce(%(commit)s, current_setting('synchronous_commit')), true);

-- name: notify
SELECT pg_notify(%(channel)s, '');

-- LISTEN is session state: it runs on the store's own direct connection, never a pooled one.
-- name: listen
LISTEN __channel__;

-- A scheduled job made due now ("run now"); an earlier run_at is kept.
-- name: run_now
UPDATE __schema__.jobs
SET state = 'pending', run_at = least(run_at, %(now)s)
WHERE id = %(id)s AND state = 'scheduled'
RETURNING *;

-- name: delete_job
DELETE FROM __schema__.jobs WHERE id = %(id)s AND state <> 'running'
RETURNING id, workflow_id;

-- workflows and dependencies (backends/postgres/workflows.py; rules in model/dependencies.py)

-- The parents named by a new batch: counted as having dependents, which locks their rows
-- until the batch commits, so a parent finishing meanwhile waits and then sees the edges
-- (and a parent that finished first is seen finished here). Missing ids come back absent.
-- name: add_dependents
UPDATE __schema__.jobs AS j SET dependents = j.dependents + d.n
FROM unnest(%(ids)s::text[], %(counts)s::integer[]) AS d (id, n)
WHERE j.id = d.id
RETURNING j.id, j.state;

-- The first statement of a caller's transaction (psycopg sends BEGIN before it).
-- name: open_transaction
SELECT 1;

-- name: insert_workflow
INSERT INTO __schema__.workflows (id, name, created_at)
VALUES (%(id)s, %(name)s, %(created_at)s);

-- Jobs of a workflow or with parents: every column, in one statement (no unique keys).
-- name: insert_linked_jobs
INSERT INTO __schema__.jobs (
    id, name, queue, args, metadata, priority, state, max_attempts, timeout,
    run_at, created_at, concurrency_key, logs, workflow_id, step, parents_left, dependents,
    on_parent_failure, key_concurrency, rate_limit, rate_key
)
SELECT id, name, queue, args::jsonb, metadata::jsonb, priority, state, max_attempts,
       timeout, run_at, created_at, concurrency_key, logs::jsonb, workflow_id, step,
       parents_left, dependents, on_parent_failure, key_concurrency, rate_limit, rate_key
FROM unnest(
    %(id)s::text[], %(name)s::text[], %(queue)s::text[], %(args)s::text[],
    %(metadata)s::text[], %(priority)s::integer[], %(state)s::text[],
    %(max_attempts)s::integer[], %(timeout)s::double precision[],
    %(run_at)s::timestamptz[], %(created_at)s::timestamptz[], %(concurrency_key)s::text[],
    %(logs)s::text[], %(workflow_id)s::text[], %(step)s::text[],
    %(parents_left)s::integer[], %(dependents)s::integer[], %(on_parent_failure)s::text[],
    %(key_concurrency)s::integer[], %(rate_limit)s::text[], %(rate_key)s::text[]
) WITH ORDINALITY AS new (
    id, name, queue, args, metadata, priority, state, max_attempts, timeout,
    run_at, created_at, concurrency_key, logs, workflow_id, step, parents_left, dependents,
    on_parent_failure, key_concurrency, rate_limit, rate_key, ord
)
ORDER BY ord;

-- name: insert_edges
INSERT INTO __schema__.edges (parent_id, child_id, position)
SELECT * FROM unnest(%(parents)s::text[], %(children)s::text[], %(positions)s::integer[]);

-- name: jobs_by_ids
SELECT * FROM __schema__.jobs WHERE id = ANY(%(ids)s::text[]);

-- name: open_edges
SELECT e.parent_id, e.child_id, p.state AS parent_state,
       coalesce(p.step, p.name) AS parent_label,
       coalesce(c.on_parent_failure, 'cancel') AS policy
FROM __schema__.edges AS e
JOIN __schema__.jobs AS p ON p.id = e.parent_id
JOIN __schema__.jobs AS c ON c.id = e.child_id
WHERE e.parent_id = ANY(%(ids)s::text[]) AND NOT e.resolved;

-- Resolve edges and release the children left with none open (release_resolved).
-- name: release_children
WITH resolved AS (
    UPDATE __schema__.edges AS e SET resolved = true
    FROM unnest(%(parents)s::text[], %(children)s::text[]) AS r (parent_id, child_id)
    WHERE e.parent_id = r.parent_id AND e.child_id = r.child_id AND NOT e.resolved
    RETURNING e.child_id
), {release_resolved}
SELECT pg_notify(%(channel)s, '') FROM (SELECT 1) AS one
WHERE EXISTS (SELECT 1 FROM released WHERE state = 'pending');

-- name: cancel_children
UPDATE __schema__.jobs AS j
SET state = 'cancelled', finished_at = %(now)s, blocked_by = c.parent_id,
    errors = j.errors || jsonb_build_array(c.error::jsonb)
FROM unnest(%(children)s::text[], %(parents)s::text[], %(errors)s::text[])
    AS c (child_id, parent_id, error)
WHERE j.id = c.child_id AND j.state = 'waiting'
RETURNING j.id, j.dependents;

-- name: blocked_children
SELECT e.child_id FROM __schema__.edges AS e
JOIN __schema__.jobs AS c ON c.id = e.child_id
WHERE e.parent_id = ANY(%(ids)s::text[])
  AND c.blocked_by = e.parent_id AND c.state = 'cancelled';

-- name: rearm_children
UPDATE __schema__.jobs AS j
SET state = 'waiting', finished_at = NULL, cancel_requested = false, blocked_by = NULL
WHERE j.id = ANY(%(ids)s::text[]) AND j.state = 'cancelled'
  AND NOT EXISTS (
      SELECT 1 FROM __schema__.edges AS e JOIN __schema__.jobs AS p ON p.id = e.parent_id
      WHERE e.child_id = j.id AND NOT e.resolved AND p.state IN ('failed', 'cancelled'))
RETURNING j.id;

-- name: reblock_children
UPDATE __schema__.jobs AS j
SET blocked_by = (
    SELECT e.parent_id FROM __schema__.edges AS e JOIN __schema__.jobs AS p ON p.id = e.parent_id
    WHERE e.child_id = j.id AND NOT e.resolved AND p.state IN ('failed', 'cancelled')
    ORDER BY e.position LIMIT 1)
WHERE j.id = ANY(%(ids)s::text[]) AND j.state = 'cancelled';

-- A retried job runs whatever its parents did: its own open edges are resolved.
-- name: resolve_parents_of
WITH resolved AS (
    UPDATE __schema__.edges SET resolved = true WHERE child_id = %(id)s AND NOT resolved
)
UPDATE __schema__.jobs SET parents_left = 0, blocked_by = NULL WHERE id = %(id)s;

-- name: forget_edges
DELETE FROM __schema__.edges
WHERE child_id = ANY(%(ids)s::text[]) OR parent_id = ANY(%(ids)s::text[]);

-- name: forget_empty_workflows
DELETE FROM __schema__.workflows AS w
WHERE w.id = ANY(%(ids)s::text[])
  AND NOT EXISTS (SELECT 1 FROM __schema__.jobs WHERE workflow_id = w.id);

-- name: workflow_row
SELECT id, name, created_at FROM __schema__.workflows WHERE id = %(id)s;

-- name: workflow_steps
SELECT * FROM __schema__.jobs WHERE workflow_id = %(id)s ORDER BY id;

-- name: workflow_edges
SELECT e.parent_id, e.child_id FROM __schema__.jobs AS c
JOIN __schema__.edges AS e ON e.child_id = c.id
WHERE c.workflow_id = %(id)s
ORDER BY c.id, e.position;

-- name: list_workflows, list_workflows_named
SELECT id, name, created_at FROM __schema__.workflows
WHERE name = %(name)s  -- only: list_workflows_named
ORDER BY created_at DESC, id DESC LIMIT %(limit)s OFFSET %(offset)s;

-- name: workflow_counts
SELECT workflow_id, state, count(*)::integer AS n FROM __schema__.jobs
WHERE workflow_id = ANY(%(ids)s::text[])
GROUP BY workflow_id, state;

-- name: lock_workflow
SELECT id FROM __schema__.workflows WHERE id = %(id)s FOR UPDATE;

-- name: cancel_workflow_waiting
UPDATE __schema__.jobs SET state = 'cancelled', finished_at = %(now)s
WHERE workflow_id = %(id)s AND state IN ('waiting', 'scheduled', 'pending')
RETURNING id, dependents;

-- name: cancel_workflow_running
UPDATE __schema__.jobs SET cancel_requested = true
WHERE workflow_id = %(id)s AND state = 'running' AND NOT cancel_requested;

-- name: parents_of
SELECT p.* FROM __schema__.edges AS e JOIN __schema__.jobs AS p ON p.id = e.parent_id
WHERE e.child_id = %(id)s
ORDER BY e.position;

