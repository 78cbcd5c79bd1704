-- Version 2: recurring jobs, and concurrency keys (jobs sharing a key never run at once).

ALTER TABLE conveyor_jobs ADD COLUMN concurrency_key TEXT;

-- Keys held by running jobs, looked up by every claim that meets a keyed job.
CREATE INDEX conveyor_jobs_running_keys ON conveyor_jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;

-- Whether a recurring job has an active run (the overlap policy).
CREATE INDEX conveyor_jobs_recurring_active ON conveyor_jobs (recurring_name)
    WHERE recurring_name IS NOT NULL AND state IN ('scheduled', 'pending', 'running');

CREATE TABLE conveyor_recurring (
    name         TEXT PRIMARY KEY,
    cron         TEXT NOT NULL,
    timezone     TEXT NOT NULL,
    job_name     TEXT NOT NULL,
    args         TEXT NOT NULL DEFAULT '{}',
    overlap      TEXT NOT NULL,
    catch_up     INTEGER NOT NULL,
    enabled      INTEGER NOT NULL,
    toggled      INTEGER NOT NULL DEFAULT 0,  -- an operator's enable/disable wins over code
    next_fire_at REAL,
    last_fire_at REAL,
    last_job_id  TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);

CREATE INDEX conveyor_recurring_next ON conveyor_recurring (next_fire_at) WHERE enabled = 1;

-- One row per fired tick: the primary key is what makes a tick fire once across schedulers.
CREATE TABLE conveyor_recurring_fires (
    name        TEXT NOT NULL,
    fire_at     REAL NOT NULL,
    job_id      TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (name, fire_at)
) WITHOUT ROWID;

CREATE INDEX conveyor_recurring_fires_recorded ON conveyor_recurring_fires (recorded_at);
