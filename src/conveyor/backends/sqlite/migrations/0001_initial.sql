-- Conveyor schema, version 1. Times are REAL unix epoch seconds (UTC); JSON columns are text.

CREATE TABLE conveyor_jobs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    queue            TEXT NOT NULL,
    args             TEXT NOT NULL DEFAULT '{}',
    metadata         TEXT NOT NULL DEFAULT '{}',
    priority         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL,
    attempt          INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL,
    timeout          REAL,
    run_at           REAL NOT NULL,
    created_at       REAL NOT NULL,
    started_at       REAL,
    finished_at      REAL,
    progress         REAL NOT NULL DEFAULT 0,
    progress_message TEXT,
    logs             TEXT NOT NULL DEFAULT '[]',  -- [[at, message], ...]
    result           TEXT,                        -- JSON, NULL until completed
    errors           TEXT NOT NULL DEFAULT '[]',  -- [{attempt, message, traceback, at, kind}, ...]
    unique_key       TEXT,
    recurring_name   TEXT,
    worker_id        TEXT,
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;  -- clustered on id: every index already holds id, so no separate rowid tree

-- Claiming across queues walks this in claim order; queue is included so the queue filter
-- needs no table lookup.
CREATE INDEX conveyor_jobs_due ON conveyor_jobs (priority DESC, run_at, id, queue)
    WHERE state IN ('scheduled', 'pending');

-- Claiming from one limited queue (e.g. a serial one) without skipping other queues' backlog.
CREATE INDEX conveyor_jobs_due_by_queue ON conveyor_jobs (queue, priority DESC, run_at, id)
    WHERE state IN ('scheduled', 'pending');

-- The next not-yet-due job (a worker's sleep deadline), and promotion of due scheduled jobs.
-- Only scheduled jobs: a pending job is due by definition, and most jobs are enqueued pending.
CREATE INDEX conveyor_jobs_scheduled ON conveyor_jobs (run_at, queue)
    WHERE state = 'scheduled';

-- Queue-limit counts and lease rescue only ever look at the few running jobs.
CREATE INDEX conveyor_jobs_running ON conveyor_jobs (queue, lease_expires_at)
    WHERE state = 'running';

-- At most one active job per unique_key, enforced by the store itself.
CREATE UNIQUE INDEX conveyor_jobs_unique ON conveyor_jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'running');

-- Pruning by age; finished_at is set exactly when a job is finished.
CREATE INDEX conveyor_jobs_finished ON conveyor_jobs (finished_at)
    WHERE finished_at IS NOT NULL;

-- Listing newest first.
CREATE INDEX conveyor_jobs_created ON conveyor_jobs (created_at DESC, id DESC);

CREATE TABLE conveyor_workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT,  -- JSON list, NULL for every queue
    concurrency  INTEGER NOT NULL,
    started_at   REAL NOT NULL,
    last_seen_at REAL NOT NULL
);
