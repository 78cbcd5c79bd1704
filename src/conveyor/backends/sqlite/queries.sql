-- Every statement the SQLite store runs, by name. Times are REAL unix epoch seconds.
-- Variable-length id or queue lists are passed as one JSON array and read with json_each.

-- connections and transactions ------------------------------------------------------------

-- name: journal_wal
PRAGMA journal_mode = WAL;

-- name: synchronous_normal
PRAGMA synchronous = NORMAL;

-- name: data_version
PRAGMA data_version;

-- name: begin_immediate
BEGIN IMMEDIATE;

-- name: begin_read
BEGIN;

-- name: commit
COMMIT;

-- name: rollback
ROLLBACK;

-- migrations ------------------------------------------------------------------------------

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS conveyor_schema_version (
    version    INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
);

-- name: applied_versions
SELECT version FROM conveyor_schema_version ORDER BY version;

-- name: schema_version_table
SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'conveyor_schema_version';

-- name: latest_version
SELECT max(version) FROM conveyor_schema_version;

-- name: record_version
INSERT INTO conveyor_schema_version (version, applied_at)
VALUES (?, (julianday('now') - 2440587.5) * 86400.0);

-- producers -------------------------------------------------------------------------------

-- name: insert_job
INSERT INTO conveyor_jobs (
    id, name, queue, args, metadata, priority, state, max_attempts, timeout,
    run_at, created_at, unique_key, recurring_name, concurrency_key, logs, finished_at,
    workflow_id, step, parents_left, on_parent_failure, key_concurrency, rate_limit, rate_key
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: insert_unique_job
INSERT INTO conveyor_jobs (
    id, name, queue, args, metadata, priority, state, max_attempts, timeout,
    run_at, created_at, unique_key, recurring_name, concurrency_key, logs, finished_at,
    workflow_id, step, parents_left, on_parent_failure, key_concurrency, rate_limit, rate_key
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'running')
DO NOTHING;

-- name: active_by_unique_key
SELECT * FROM conveyor_jobs
WHERE unique_key = ? AND state IN ('scheduled', 'pending', 'running');

-- claiming --------------------------------------------------------------------------------

-- name: count_running
SELECT queue, count(*) FROM conveyor_jobs
WHERE state = 'running' AND queue IN (SELECT value FROM json_each(:queues))
GROUP BY queue;

-- INDEXED BY: without statistics the planner prefers the run_at range and then sorts the
-- whole due backlog; walking the claim-ordered index stops after :limit rows instead.

-- A candidate's key has room: no key; or one job at a time (NULL key_concurrency) and no
-- running job of the key (the running keys read once, uncorrelated: the common case stays
-- as cheap as before key_concurrency); or fewer running jobs of the key than its limit.
-- The claim then keeps, per key, only as many as there is room (model/keys.py).
-- fragment: key_room
(concurrency_key IS NULL
     OR (key_concurrency IS NULL AND concurrency_key NOT IN (
         SELECT concurrency_key FROM conveyor_jobs INDEXED BY conveyor_jobs_running_keys
         WHERE state = 'running' AND concurrency_key IS NOT NULL))
     OR (key_concurrency IS NOT NULL AND key_concurrency > (
         SELECT count(*) FROM conveyor_jobs AS r INDEXED BY conveyor_jobs_running_keys
         WHERE r.state = 'running' AND r.concurrency_key = conveyor_jobs.concurrency_key)))

-- A candidate's own rate has room: none, or its key's window is not spent at :now.
-- fragment: rate_room
(rate_key IS NULL OR rate_key NOT IN (
    SELECT name FROM conveyor_rate_windows WHERE scope = 'key' AND full_until > :now))

-- The windows of the rate-limited queues and keys a claim may start jobs in (:scopes and
-- :names, JSON arrays side by side).
-- name: rate_windows
SELECT w.scope, w.name, w.starts FROM conveyor_rate_windows AS w
JOIN (SELECT s.value AS scope, n.value AS name
      FROM json_each(:scopes) AS s JOIN json_each(:names) AS n ON n.key = s.key) AS asked
  ON w.scope = asked.scope AND w.name = asked.name;

-- name: save_rate_window
INSERT INTO conveyor_rate_windows (scope, name, starts, full_until)
VALUES (:scope, :name, :starts, :full_until)
ON CONFLICT (scope, name) DO UPDATE SET
    starts = excluded.starts, full_until = excluded.full_until;

-- When the soonest spent window allows a start again: a worker wakes then, as for a
-- scheduled job's run_at (once per window: an opened window is no longer counted).
-- name: next_window
SELECT min(full_until) FROM conveyor_rate_windows WHERE full_until > :now;

-- name: running_per_key
SELECT concurrency_key, count(*) FROM conveyor_jobs INDEXED BY conveyor_jobs_running_keys
WHERE state = 'running' AND concurrency_key IN (SELECT value FROM json_each(:keys))
GROUP BY concurrency_key;

-- name: candidates_except
SELECT id, priority, run_at, concurrency_key, key_concurrency, queue, rate_limit, rate_key
FROM conveyor_jobs INDEXED BY conveyor_jobs_due
WHERE state IN ('scheduled', 'pending') AND run_at <= :now
  AND queue NOT IN (SELECT value FROM json_each(:excluded))
  AND {key_room}
  AND {rate_room}
ORDER BY priority DESC, run_at, id
LIMIT :limit;

-- The queues holding waiting jobs, one index seek each (a loose scan of the per-queue index),
-- at most :most of them: a claim of all queues that must leave some out (paused, limited) reads
-- the others one by one rather than walking past the left-out ones' backlog.
-- name: waiting_queues
WITH RECURSIVE waiting (queue) AS (
    SELECT (SELECT min(queue) FROM conveyor_jobs INDEXED BY conveyor_jobs_due_by_queue
            WHERE state IN ('scheduled', 'pending'))
    UNION ALL
    SELECT (SELECT min(j.queue) FROM conveyor_jobs AS j INDEXED BY conveyor_jobs_due_by_queue
            WHERE j.state IN ('scheduled', 'pending') AND j.queue > waiting.queue)
    FROM waiting WHERE waiting.queue IS NOT NULL
    LIMIT :most
)
SELECT queue FROM waiting WHERE queue IS NOT NULL;

-- name: candidates_of_queue
SELECT id, priority, run_at, concurrency_key, key_concurrency, queue, rate_limit, rate_key
FROM conveyor_jobs INDEXED BY conveyor_jobs_due_by_queue
WHERE state IN ('scheduled', 'pending') AND queue = :queue AND run_at <= :now
  AND {key_room}
  AND {rate_room}
ORDER BY priority DESC, run_at, id
LIMIT :limit;

-- name: claim_jobs
UPDATE conveyor_jobs
SET state = 'running',
    attempt = attempt + 1,
    worker_id = :worker_id,
    lease_expires_at = :lease_expires_at,
    started_at = :now
-- "+state": look the ids up by primary key, not by walking every waiting job's state
WHERE id IN (SELECT value FROM json_each(:ids)) AND +state IN ('scheduled', 'pending')
RETURNING *;

-- Only scheduled jobs wait for their run_at: pending ones are due already.
-- name: next_run_at
SELECT run_at FROM conveyor_jobs INDEXED BY conveyor_jobs_scheduled
WHERE state = 'scheduled' AND run_at > :now
  AND (:queues IS NULL OR queue IN (SELECT value FROM json_each(:queues)))
ORDER BY run_at
LIMIT 1;

-- finishing and reporting -----------------------------------------------------------------

-- name: running_owners
SELECT id, worker_id, attempt, dependents FROM conveyor_jobs
WHERE id IN (SELECT value FROM json_each(?)) AND state = 'running';

-- name: finish_job
UPDATE conveyor_jobs
SET state = :state,
    result = :result,
    finished_at = :finished_at,
    run_at = coalesce(:run_at, run_at),
    attempt = attempt - :give_back,
    errors = CASE WHEN :error IS NULL THEN errors
                  ELSE json_insert(errors, '$[#]', json(:error)) END,
    worker_id = NULL,
    lease_expires_at = NULL
WHERE id = :id AND worker_id = :worker_id AND attempt = :attempt AND state = 'running';

-- name: job_logs
SELECT logs, attempt FROM conveyor_jobs WHERE id = ? AND state = 'running';

-- name: report
UPDATE conveyor_jobs
SET progress = coalesce(:progress, progress),
    progress_message = coalesce(:progress_message, progress_message),
    logs = coalesce(:logs, logs)
WHERE id = :id AND state = 'running';

-- workers ---------------------------------------------------------------------------------

-- The worker's own fields, never `requested` (an operator's), which it returns.
-- name: upsert_worker
INSERT INTO conveyor_workers (id, host, pid, queues, concurrency, started_at, last_seen_at, mode)
VALUES (:id, :host, :pid, :queues, :concurrency, :started_at, :last_seen_at, :mode)
ON CONFLICT (id) DO UPDATE SET
    host = excluded.host,
    pid = excluded.pid,
    queues = excluded.queues,
    concurrency = excluded.concurrency,
    started_at = excluded.started_at,
    last_seen_at = excluded.last_seen_at,
    mode = excluded.mode
RETURNING requested;

-- name: extend_leases
UPDATE conveyor_jobs SET lease_expires_at = :lease_expires_at
WHERE id IN (SELECT value FROM json_each(:ids))
  AND worker_id = :worker_id AND +state = 'running';

-- name: cancel_requested_among
SELECT id FROM conveyor_jobs
WHERE id IN (SELECT value FROM json_each(:ids))
  AND worker_id = :worker_id AND +state = 'running' AND cancel_requested = 1;

-- name: delete_worker
DELETE FROM conveyor_workers WHERE id = ?;

-- name: list_workers
SELECT * FROM conveyor_workers ORDER BY id;

-- name: get_worker
SELECT * FROM conveyor_workers WHERE id = ?;

-- name: set_worker_request
UPDATE conveyor_workers SET requested = :requested WHERE id = :id RETURNING *;

-- A window whose latest start (its array's last, oldest first) left every window behind.
-- name: prune_rate_windows
DELETE FROM conveyor_rate_windows
WHERE coalesce(json_extract(starts, '$[#-1]'), 0) < :before;

-- name: prune_workers
DELETE FROM conveyor_workers WHERE last_seen_at < ?;

-- maintenance -----------------------------------------------------------------------------

-- name: expired_leases
SELECT id, attempt, max_attempts, worker_id, lease_expires_at, cancel_requested, dependents
FROM conveyor_jobs
WHERE state = 'running' AND lease_expires_at < ?;

-- name: rescue_job
UPDATE conveyor_jobs
SET state = :state,
    finished_at = :finished_at,
    run_at = coalesce(:run_at, run_at),
    errors = json_insert(errors, '$[#]', json(:error)),
    worker_id = NULL,
    lease_expires_at = NULL
WHERE id = :id AND state = 'running';

-- name: promote_scheduled
UPDATE conveyor_jobs INDEXED BY conveyor_jobs_scheduled SET state = 'pending'
WHERE state = 'scheduled' AND run_at <= ?;

-- Deleting in bounded batches keeps each write transaction short.
-- name: prune_batch
DELETE FROM conveyor_jobs
WHERE id IN (
    SELECT id FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
    WHERE finished_at IS NOT NULL AND finished_at < max(:completed_before, :failed_before)
      AND ((state IN ('completed', 'cancelled', 'skipped') AND finished_at < :completed_before)
           OR (state = 'failed' AND finished_at < :failed_before))
    LIMIT :batch
)
RETURNING id, workflow_id;

-- name: count_prunable
SELECT state, count(*) AS n
FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
WHERE finished_at IS NOT NULL AND finished_at < max(:completed_before, :failed_before)
  AND ((state IN ('completed', 'cancelled', 'skipped') AND finished_at < :completed_before)
       OR (state = 'failed' AND finished_at < :failed_before))
GROUP BY state;

-- name: prune_fires
DELETE FROM conveyor_recurring_fires WHERE recorded_at < ?;

-- queues and statistics ------------------------------------------------------------------

-- name: paused_queues
SELECT name FROM conveyor_queues WHERE paused = 1;

-- What a claim needs of the queues' rows: the paused ones and the limited ones.
-- name: claim_settings
SELECT name, paused, concurrency, rate_limit FROM conveyor_queues
WHERE paused = 1 OR concurrency IS NOT NULL OR rate_limit IS NOT NULL;

-- name: queue_settings_all
SELECT name, paused, concurrency, max_size, when_full, rate_limit, operator_set
FROM conveyor_queues;

-- name: queue_settings_one
SELECT name, paused, concurrency, max_size, when_full, rate_limit, operator_set
FROM conveyor_queues
WHERE name = :name;

-- name: save_queue_settings
INSERT INTO conveyor_queues (name, paused, changed_at, concurrency, max_size, when_full,
                             rate_limit, operator_set)
VALUES (:name, 0, :now, :concurrency, :max_size, :when_full, :rate_limit, :operator_set)
ON CONFLICT (name) DO UPDATE SET
    concurrency = excluded.concurrency,
    rate_limit = excluded.rate_limit,
    max_size = excluded.max_size,
    when_full = excluded.when_full,
    operator_set = excluded.operator_set,
    changed_at = excluded.changed_at;

-- The bounds of the queues a batch enqueues to (:queues, a JSON array).
-- name: queue_bounds
SELECT name, max_size, when_full FROM conveyor_queues
WHERE max_size IS NOT NULL AND name IN (SELECT value FROM json_each(:queues));

-- Waiting jobs of one queue, what its max_size bounds; walks the queue's part of the index
-- of waiting jobs.
-- name: count_waiting
SELECT count(*) FROM conveyor_jobs INDEXED BY conveyor_jobs_due_by_queue
WHERE queue = :queue AND state IN ('scheduled', 'pending');

-- name: set_queue_paused
INSERT INTO conveyor_queues (name, paused, changed_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused, changed_at = excluded.changed_at;

-- name: queue_stats
SELECT queue,
       sum(state IN ('scheduled', 'pending')) AS waiting,
       sum(state IN ('scheduled', 'pending') AND run_at <= :now) AS due,
       sum(state = 'running') AS running,
       min(CASE WHEN state IN ('scheduled', 'pending') AND run_at <= :now THEN run_at END)
           AS oldest_due_at
FROM conveyor_jobs
GROUP BY queue;

-- Due jobs a key's limit or their own rate holds back now, per queue (for the queue page and
-- the metrics; each due keyed job costs one look-up of its key's running jobs).
-- name: held_back
SELECT queue,
       sum(concurrency_key IS NOT NULL AND coalesce(key_concurrency, 1) <= (
           SELECT count(*) FROM conveyor_jobs AS r INDEXED BY conveyor_jobs_running_keys
           WHERE r.state = 'running' AND r.concurrency_key = j.concurrency_key)) AS by_key,
       sum(rate_key IS NOT NULL AND rate_key IN (
           SELECT name FROM conveyor_rate_windows
           WHERE scope = 'key' AND full_until > :now)) AS by_rate
FROM conveyor_jobs AS j
WHERE state IN ('scheduled', 'pending') AND run_at <= :now
  AND (concurrency_key IS NOT NULL OR rate_key IS NOT NULL)
GROUP BY queue;

-- name: spent_queues
SELECT name FROM conveyor_rate_windows WHERE scope = 'queue' AND full_until > :now;

-- name: throughput
SELECT CAST(finished_at / 60 AS INTEGER) * 60 AS minute,
       sum(state = 'completed') AS completed,
       sum(state = 'failed') AS failed
FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
WHERE finished_at IS NOT NULL AND finished_at >= ? AND state IN ('completed', 'failed')
GROUP BY minute
ORDER BY minute;

-- history (model/history.py) -------------------------------------------------------------

-- Finished jobs counted per queue and stretch of :step seconds, the columns of
-- conveyor_history after the stretch's start; jobs in [:since, :until) past the watermark.
-- run_at is when the last attempt was due, so wait is that attempt's time in line.
-- fragment: finished_jobs
SELECT CAST(finished_at / :step AS INTEGER) * :step AS start, queue,
       sum(state = 'completed') AS completed,
       sum(state = 'failed') AS failed,
       sum(state = 'cancelled') AS cancelled,
       count(started_at) AS wait_count,
       coalesce(sum(max(0, started_at - run_at)), 0) AS wait_sum,
       count(run) AS run_count,
       coalesce(sum(run), 0) AS run_sum,
       sum(b = 0) AS h0, sum(b = 1) AS h1, sum(b = 2) AS h2, sum(b = 3) AS h3, sum(b = 4) AS h4,
       sum(b = 5) AS h5, sum(b = 6) AS h6, sum(b = 7) AS h7, sum(b = 8) AS h8, sum(b = 9) AS h9,
       sum(b = 10) AS h10
FROM (
    SELECT *, CASE WHEN run IS NULL THEN -1 WHEN run < 0.01 THEN 0 WHEN run < 0.05 THEN 1
                   WHEN run < 0.1 THEN 2 WHEN run < 0.25 THEN 3 WHEN run < 0.5 THEN 4
                   WHEN run < 1 THEN 5 WHEN run < 2.5 THEN 6 WHEN run < 10 THEN 7
                   WHEN run < 60 THEN 8 WHEN run < 300 THEN 9 ELSE 10 END AS b
    FROM (
        SELECT finished_at, queue, state, started_at, run_at,
               CASE WHEN state IN ('completed', 'failed') AND started_at IS NOT NULL
                    THEN max(0, finished_at - started_at) END AS run
        FROM conveyor_jobs INDEXED BY conveyor_jobs_finished
        WHERE finished_at IS NOT NULL
          AND finished_at >= max(:since, coalesce((SELECT until FROM conveyor_history_mark), :since))
          AND finished_at < :until
    )
)
GROUP BY start, queue

-- name: history_mark
SELECT until FROM conveyor_history_mark;

-- The write transaction serialises callers; :since is the watermark just read.
-- name: history_roll_up
INSERT INTO conveyor_history (minute, queue, completed, failed, cancelled, wait_count,
    wait_sum, run_count, run_sum, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10)
SELECT * FROM (
    {finished_jobs}
) WHERE true
ON CONFLICT (minute, queue) DO UPDATE SET
    completed = completed + excluded.completed, failed = failed + excluded.failed,
    cancelled = cancelled + excluded.cancelled, wait_count = wait_count + excluded.wait_count,
    wait_sum = wait_sum + excluded.wait_sum, run_count = run_count + excluded.run_count,
    run_sum = run_sum + excluded.run_sum, h0 = h0 + excluded.h0, h1 = h1 + excluded.h1,
    h2 = h2 + excluded.h2, h3 = h3 + excluded.h3, h4 = h4 + excluded.h4, h5 = h5 + excluded.h5,
    h6 = h6 + excluded.h6, h7 = h7 + excluded.h7, h8 = h8 + excluded.h8, h9 = h9 + excluded.h9,
    h10 = h10 + excluded.h10;

-- name: history_set_mark
UPDATE conveyor_history_mark SET until = :until WHERE until IS NULL OR until < :until;

-- Rolled-up minutes before the watermark, then job rows after it, in one statement (one
-- snapshot), per stretch and queue; the store adds up a stretch's two parts.
-- name: history
WITH mark AS (SELECT coalesce(until, :since) AS until FROM conveyor_history_mark)
SELECT CAST(minute / :step AS INTEGER) * :step AS start, queue,
       sum(completed) AS completed, sum(failed) AS failed, sum(cancelled) AS cancelled,
       sum(wait_count) AS wait_count, sum(wait_sum) AS wait_sum, sum(run_count) AS run_count,
       sum(run_sum) AS run_sum, sum(h0) AS h0, sum(h1) AS h1, sum(h2) AS h2, sum(h3) AS h3,
       sum(h4) AS h4, sum(h5) AS h5, sum(h6) AS h6, sum(h7) AS h7, sum(h8) AS h8,
       sum(h9) AS h9, sum(h10) AS h10
FROM conveyor_history
WHERE minute >= :since AND minute < min(:until, (SELECT until FROM mark))
  AND (:queue IS NULL OR queue = :queue)
GROUP BY start, queue
UNION ALL
SELECT * FROM (
    {finished_jobs}
) WHERE :queue IS NULL OR queue = :queue;

-- name: prune_history
DELETE FROM conveyor_history WHERE minute < :before;

-- recurring jobs ---------------------------------------------------------------------------

-- name: recurring_all
SELECT r.*, j.state AS last_job_state
FROM conveyor_recurring r LEFT JOIN conveyor_jobs j ON j.id = r.last_job_id
ORDER BY r.name;

-- name: recurring_one
SELECT r.*, j.state AS last_job_state
FROM conveyor_recurring r LEFT JOIN conveyor_jobs j ON j.id = r.last_job_id
WHERE r.name = ?;

-- name: recurring_upsert
INSERT INTO conveyor_recurring (
    name, cron, timezone, job_name, args, overlap, catch_up, enabled, toggled,
    next_fire_at, last_fire_at, last_job_id, created_at, updated_at
) VALUES (
    :name, :cron, :timezone, :job_name, :args, :overlap, :catch_up, :enabled, :toggled,
    :next_fire_at, :last_fire_at, :last_job_id, :created_at, :updated_at
)
ON CONFLICT (name) DO UPDATE SET
    cron = excluded.cron, timezone = excluded.timezone, job_name = excluded.job_name,
    args = excluded.args, overlap = excluded.overlap, catch_up = excluded.catch_up,
    enabled = excluded.enabled, toggled = excluded.toggled,
    next_fire_at = excluded.next_fire_at, last_fire_at = excluded.last_fire_at,
    last_job_id = excluded.last_job_id, updated_at = excluded.updated_at;

-- name: recurring_delete
DELETE FROM conveyor_recurring WHERE name = ?;

-- name: recurring_due
SELECT r.*, NULL AS last_job_state FROM conveyor_recurring r
WHERE enabled = 1 AND next_fire_at <= ?
ORDER BY next_fire_at, name;

-- name: recurring_next
SELECT min(next_fire_at) FROM conveyor_recurring WHERE enabled = 1 AND next_fire_at > ?;

-- name: recurring_active
SELECT DISTINCT recurring_name FROM conveyor_jobs INDEXED BY conveyor_jobs_recurring_active
WHERE recurring_name IN (SELECT value FROM json_each(?))
  AND state IN ('scheduled', 'pending', 'running');

-- name: record_fire
INSERT INTO conveyor_recurring_fires (name, fire_at, job_id, recorded_at) VALUES (?, ?, ?, ?)
ON CONFLICT (name, fire_at) DO NOTHING;

-- operators -------------------------------------------------------------------------------

-- name: get_job
SELECT * FROM conveyor_jobs WHERE id = ?;

-- name: existing_ids
SELECT id FROM conveyor_jobs WHERE id IN (SELECT value FROM json_each(?));

-- Listing newest first, in three shapes, so each can use its best plan:
-- * no state filter and no scan filter: walk the (created_at) index, stop after a page;
-- * a state filter: the (state, created_at) index ("(:states IS NULL OR …)" would hide it);
--   in both, a created range bounds the walk ("created_at >= coalesce(:created_after, …)"
--   is a range on the index, where ":x IS NULL OR" would be a filter on every row);
-- * a scan filter (a search, a part of the name, a finished range, a worker, an error
--   kind): one scan of the table collects up to :count_limit matches (id, created_at),
--   counts them, sorts them and joins the page back by primary key (list_jobs_search; every
--   row carries the count, and one row of NULL job columns carries it when the page is
--   empty). When it finds :count_limit matches, newer ones may lie past where it stopped:
--   the backend then lists the page with list_jobs_search_newest, which walks the
--   (created_at) index and stops after a page (quick: that many matches are seldom sparse;
--   the sort of 25,000 matches it replaces took 100-500 ms).
-- A search is LIKE (case-insensitive for ASCII, and three times faster than
-- lower()+instr()) on each searched column in turn, the last error's message last (only
-- when the job has errors: json_extract is the costly part). The backend escapes %, _ and \
-- in the text. No index serves a LIKE '%…%': docs/web.md gives what a scan costs.
-- Each count stops at :count_limit rows (LIST_COUNT_CAP + 1): past the cap, the backend
-- reports the total as capped rather than counting 100,000 rows for every page.

-- fragment: walk_filters
AND created_at >= coalesce(:created_after, -1e300)
AND created_at < coalesce(:created_before, 1e300)
AND (:name IS NULL OR name = :name)
AND (:queue IS NULL OR queue = :queue)

-- fragment: scan_filters
AND (:search IS NULL
     OR id LIKE :search ESCAPE '\' OR name LIKE :search ESCAPE '\'
     OR args LIKE :search ESCAPE '\' OR metadata LIKE :search ESCAPE '\'
     OR (errors <> '[]' AND json_extract(errors, '$[#-1].message') LIKE :search ESCAPE '\'))
AND (:states IS NULL OR state IN (SELECT value FROM json_each(:states)))
AND (:name_contains IS NULL OR name LIKE :name_contains ESCAPE '\')
AND (:finished_after IS NULL OR finished_at >= :finished_after)
AND (:finished_before IS NULL OR finished_at < :finished_before)
AND (:worker IS NULL OR worker_id = :worker)
AND (:error_kind IS NULL
     OR (errors <> '[]' AND json_extract(errors, '$[#-1].kind') = :error_kind))
{walk_filters}

-- name: list_jobs
SELECT * FROM conveyor_jobs
WHERE 1
  {walk_filters}
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: count_listed
SELECT count(*) FROM (
    SELECT 1 FROM conveyor_jobs
    WHERE 1
      {walk_filters}
    LIMIT :count_limit
);

-- name: list_jobs_in_states
SELECT * FROM conveyor_jobs
WHERE state IN (SELECT value FROM json_each(:states))
  {walk_filters}
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: count_listed_in_states
SELECT count(*) FROM (
    SELECT 1 FROM conveyor_jobs
    WHERE state IN (SELECT value FROM json_each(:states))
      {walk_filters}
    LIMIT :count_limit
);

-- name: list_jobs_search
WITH matches AS MATERIALIZED (
    SELECT id, created_at FROM conveyor_jobs
    WHERE 1
      {scan_filters}
    LIMIT :count_limit
), listed AS (
    SELECT id AS listed_id, created_at AS listed_at FROM matches
    ORDER BY created_at DESC, id DESC
    LIMIT :limit OFFSET :offset
)
SELECT counted.listed_total, jobs.*
FROM (SELECT count(*) AS listed_total FROM matches) AS counted
LEFT JOIN (listed JOIN conveyor_jobs AS jobs ON jobs.id = listed.listed_id) ON true
ORDER BY listed.listed_at DESC, listed.listed_id DESC;

-- name: list_jobs_search_newest
SELECT * FROM conveyor_jobs
WHERE 1
  {scan_filters}
ORDER BY created_at DESC, id DESC
LIMIT :limit OFFSET :offset;

-- name: counts
SELECT queue, state, count(*) FROM conveyor_jobs GROUP BY queue, state;

-- name: cancel_waiting
UPDATE conveyor_jobs SET state = 'cancelled', finished_at = :now
WHERE id = :id AND state IN ('waiting', 'scheduled', 'pending')
RETURNING *;

-- name: request_cancel
UPDATE conveyor_jobs SET cancel_requested = 1
WHERE id = :id AND state = 'running'
RETURNING *;

-- name: retry_job
UPDATE conveyor_jobs
SET state = 'pending',
    attempt = 0,
    run_at = :now,
    finished_at = NULL,
    result = NULL,
    cancel_requested = 0,
    lease_expires_at = NULL
WHERE id = :id AND state IN ('failed', 'cancelled')
RETURNING *;

-- A scheduled job made due now ("run now"); an earlier run_at is kept.
-- name: run_now
UPDATE conveyor_jobs
SET state = 'pending', run_at = min(run_at, :now)
WHERE id = :id AND state = 'scheduled'
RETURNING *;

-- name: delete_job
DELETE FROM conveyor_jobs WHERE id = ? AND state != 'running' RETURNING id, workflow_id;

-- workflows and dependencies (backends/sqlite/workflows.py; rules in model/dependencies.py) -

-- name: jobs_by_ids
SELECT * FROM conveyor_jobs WHERE id IN (SELECT value FROM json_each(?));

-- name: existing_parents
SELECT id, state FROM conveyor_jobs WHERE id IN (SELECT value FROM json_each(?));

-- name: insert_edge
INSERT INTO conveyor_edges (parent_id, child_id, position) VALUES (?, ?, ?);

-- name: add_dependents
UPDATE conveyor_jobs SET dependents = dependents + :n WHERE id = :id;

-- name: insert_workflow
INSERT INTO conveyor_workflows (id, name, created_at) VALUES (?, ?, ?);

-- name: open_edges
SELECT e.parent_id, e.child_id, p.state AS parent_state,
       coalesce(p.step, p.name) AS parent_label,
       coalesce(c.on_parent_failure, 'cancel') AS policy
FROM conveyor_edges AS e
JOIN conveyor_jobs AS p ON p.id = e.parent_id
JOIN conveyor_jobs AS c ON c.id = e.child_id
WHERE e.parent_id IN (SELECT value FROM json_each(?)) AND e.resolved = 0;

-- name: resolve_edge
UPDATE conveyor_edges SET resolved = 1 WHERE parent_id = ? AND child_id = ?;

-- One statement decrements a child and, when that was its last open edge and it still
-- waits, releases it (SET reads the row as it was, so every CASE sees the old counter).
-- name: release_child
UPDATE conveyor_jobs
SET parents_left = parents_left - :n,
    state = CASE WHEN parents_left - :n > 0 OR state != 'waiting' THEN state
                 WHEN run_at > :now THEN 'scheduled' ELSE 'pending' END,
    run_at = CASE WHEN parents_left - :n > 0 OR state != 'waiting' THEN run_at
                  ELSE max(run_at, :now) END
WHERE id = :id;

-- name: cancel_child
UPDATE conveyor_jobs
SET state = 'cancelled', finished_at = :now, blocked_by = :parent,
    errors = json_insert(errors, '$[#]', json(:error))
WHERE id = :id AND state = 'waiting'
RETURNING id, dependents;

-- name: blocked_children
SELECT e.child_id FROM conveyor_edges AS e
JOIN conveyor_jobs AS c ON c.id = e.child_id
WHERE e.parent_id IN (SELECT value FROM json_each(?))
  AND c.blocked_by = e.parent_id AND c.state = 'cancelled';

-- name: rearm_children
UPDATE conveyor_jobs
SET state = 'waiting', finished_at = NULL, cancel_requested = 0, blocked_by = NULL
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'cancelled'
  AND NOT EXISTS (
      SELECT 1 FROM conveyor_edges AS e JOIN conveyor_jobs AS p ON p.id = e.parent_id
      WHERE e.child_id = conveyor_jobs.id AND e.resolved = 0
        AND p.state IN ('failed', 'cancelled'))
RETURNING id;

-- name: reblock_children
UPDATE conveyor_jobs
SET blocked_by = (
    SELECT e.parent_id FROM conveyor_edges AS e JOIN conveyor_jobs AS p ON p.id = e.parent_id
    WHERE e.child_id = conveyor_jobs.id AND e.resolved = 0
      AND p.state IN ('failed', 'cancelled')
    ORDER BY e.position LIMIT 1)
WHERE id IN (SELECT value FROM json_each(:ids)) AND state = 'cancelled';

-- A retried job runs whatever its parents did: its own open edges are resolved.
-- name: resolve_parents_of
UPDATE conveyor_edges SET resolved = 1 WHERE child_id = ? AND resolved = 0;

-- name: clear_parents_left
UPDATE conveyor_jobs SET parents_left = 0, blocked_by = NULL WHERE id = ?;

-- name: forget_edges
DELETE FROM conveyor_edges
WHERE child_id IN (SELECT value FROM json_each(:ids))
   OR parent_id IN (SELECT value FROM json_each(:ids));

-- name: forget_empty_workflows
DELETE FROM conveyor_workflows
WHERE id IN (SELECT value FROM json_each(:ids))
  AND NOT EXISTS (SELECT 1 FROM conveyor_jobs WHERE workflow_id = conveyor_workflows.id);

-- name: workflow_row
SELECT id, name, created_at FROM conveyor_workflows WHERE id = ?;

-- name: workflow_steps
SELECT * FROM conveyor_jobs WHERE workflow_id = ? ORDER BY id;

-- name: workflow_edges
SELECT e.parent_id, e.child_id FROM conveyor_jobs AS c
JOIN conveyor_edges AS e ON e.child_id = c.id
WHERE c.workflow_id = ?
ORDER BY c.id, e.position;

-- name: list_workflows
SELECT id, name, created_at FROM conveyor_workflows
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: list_workflows_named
SELECT id, name, created_at FROM conveyor_workflows INDEXED BY conveyor_workflows_name
WHERE name = :name
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: workflow_counts
SELECT workflow_id, state, count(*) AS n FROM conveyor_jobs
WHERE workflow_id IN (SELECT value FROM json_each(?))
GROUP BY workflow_id, state;

-- name: cancel_workflow_waiting
UPDATE conveyor_jobs SET state = 'cancelled', finished_at = :now
WHERE workflow_id = :id AND state IN ('waiting', 'scheduled', 'pending')
RETURNING id, dependents;

-- name: cancel_workflow_running
UPDATE conveyor_jobs SET cancel_requested = 1
WHERE workflow_id = :id AND state = 'running' AND cancel_requested = 0;

-- name: parents_of
SELECT p.* FROM conveyor_edges AS e JOIN conveyor_jobs AS p ON p.id = e.parent_id
WHERE e.child_id = ?
ORDER BY e.position;

