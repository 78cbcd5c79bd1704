-- Version 8: how many jobs of a concurrency key may run at once (`key_concurrency`, issue 16
-- point 2). NULL means 1, the default, so existing rows keep their one-at-a-time meaning and a
-- claim tells the two cases apart without a function call. The claim counts a key's running
-- jobs on the existing index of running keys (conveyor_jobs_running_keys).
ALTER TABLE conveyor_jobs ADD COLUMN key_concurrency INTEGER;

-- Rate limits (issue 16 point 3): a job's own rate and the key of the window it counts in
-- (both NULL: none), a queue's rate setting, and the windows: per queue (scope 'queue') or
-- per rate_key (scope 'key'), the latest starts (a JSON array of epoch seconds, oldest first,
-- at most the rate's N) and until when the window allows no start (NULL: it has room), which
-- a claim reads to pass over spent keys and to say when to wake (model/rates.py).
ALTER TABLE conveyor_jobs ADD COLUMN rate_limit TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN rate_key TEXT;
ALTER TABLE conveyor_queues ADD COLUMN rate_limit TEXT;
CREATE TABLE conveyor_rate_windows (
    scope      TEXT NOT NULL,
    name       TEXT NOT NULL,
    starts     TEXT NOT NULL DEFAULT '[]',
    full_until REAL,
    PRIMARY KEY (scope, name)
) WITHOUT ROWID;
-- A claim's wake-up time (the soonest spent window) and its pass over spent keys.
CREATE INDEX conveyor_rate_windows_full ON conveyor_rate_windows (full_until)
    WHERE full_until IS NOT NULL;
