-- Conveyor on PostgreSQL, version 1. Every object lives in the store's schema (written
-- __schema__ here and replaced by the quoted schema name when applied), so several
-- applications can share one database. Times are timestamptz; JSON columns are jsonb.

CREATE TABLE __schema__.jobs (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    queue            text NOT NULL,
    args             jsonb NOT NULL DEFAULT '{}',
    metadata         jsonb NOT NULL DEFAULT '{}',
    priority         integer NOT NULL DEFAULT 0,
    state            text NOT NULL,
    attempt          integer NOT NULL DEFAULT 0,
    max_attempts     integer NOT NULL,
    timeout          double precision,
    run_at           timestamptz NOT NULL,
    created_at       timestamptz NOT NULL,
    started_at       timestamptz,
    finished_at      timestamptz,
    progress         double precision NOT NULL DEFAULT 0,
    progress_message text,
    logs             jsonb NOT NULL DEFAULT '[]',  -- [[epoch seconds, message], ...]
    result           jsonb,                        -- NULL until completed
    errors           jsonb NOT NULL DEFAULT '[]',  -- [{attempt, message, traceback, at, kind}]
    unique_key       text,
    recurring_name   text,
    concurrency_key  text,
    worker_id        text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    CONSTRAINT jobs_state_known CHECK (state IN (
        'scheduled', 'pending', 'running', 'completed', 'failed', 'cancelled', 'skipped'))
);

-- The claim walks this partial index of runnable jobs in claim order; it only ever holds the
-- waiting backlog, however many finished jobs the table keeps.
CREATE INDEX jobs_due ON __schema__.jobs (priority DESC, run_at, id)
    INCLUDE (queue, concurrency_key)
    WHERE state IN ('scheduled', 'pending');

-- Claiming from chosen queues (and from one limited queue) without walking other queues.
CREATE INDEX jobs_due_by_queue ON __schema__.jobs (queue, priority DESC, run_at, id)
    INCLUDE (concurrency_key)
    WHERE state IN ('scheduled', 'pending');

-- The next not-yet-due job (a worker's sleep deadline) and promotion of due scheduled jobs.
CREATE INDEX jobs_scheduled ON __schema__.jobs (run_at, queue) WHERE state = 'scheduled';

-- Queue-limit counts and lease rescue look only at the few running jobs.
CREATE INDEX jobs_running ON __schema__.jobs (queue, lease_expires_at) WHERE state = 'running';

-- Jobs sharing a concurrency key never run at once: the claim passes over held keys, and this
-- index turns a race between two claims into an error the losing claim retries.
CREATE UNIQUE INDEX jobs_running_keys ON __schema__.jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;

-- At most one active job per unique_key (enqueue uses ON CONFLICT DO NOTHING on it).
CREATE UNIQUE INDEX jobs_unique ON __schema__.jobs (unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('scheduled', 'pending', 'running');

-- Whether a recurring job has an active run (the overlap policy).
CREATE INDEX jobs_recurring_active ON __schema__.jobs (recurring_name)
    WHERE recurring_name IS NOT NULL AND state IN ('scheduled', 'pending', 'running');

-- Pruning by age; finished_at is set exactly when a job is finished.
CREATE INDEX jobs_finished ON __schema__.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Listing newest first.
CREATE INDEX jobs_created ON __schema__.jobs (created_at DESC, id DESC);

CREATE TABLE __schema__.workers (
    id           text PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    queues       jsonb,  -- list of names, NULL for every queue
    concurrency  integer NOT NULL,
    started_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL
);

CREATE TABLE __schema__.recurring (
    name         text PRIMARY KEY,
    cron         text NOT NULL,
    timezone     text NOT NULL,
    job_name     text NOT NULL,
    args         jsonb NOT NULL DEFAULT '{}',
    overlap      text NOT NULL,
    catch_up     integer NOT NULL,
    enabled      boolean NOT NULL,
    toggled      boolean NOT NULL DEFAULT false,  -- an operator's enable/disable wins over code
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    last_job_id  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX recurring_next ON __schema__.recurring (next_fire_at) WHERE enabled;

-- One row per fired tick: the primary key makes a tick fire once across schedulers.
CREATE TABLE __schema__.recurring_fires (
    name        text NOT NULL,
    fire_at     timestamptz NOT NULL,
    job_id      text NOT NULL,
    recorded_at timestamptz NOT NULL,
    PRIMARY KEY (name, fire_at)
);

CREATE INDEX recurring_fires_recorded ON __schema__.recurring_fires (recorded_at);
