-- Version 9: up to N running jobs per concurrency key (`key_concurrency`, issue 16 point 2),
-- and rate limits (point 3).
-- The limit is stored on each job row; NULL means 1, the default, so existing rows keep their
-- meaning and a key of one slot keeps the unique index that makes a race between two claims
-- an error the losing claim retries (the one-statement claim's hot path is unchanged). Keys of
-- several slots cannot be guarded by an index: their claims count the running jobs of each
-- key under a per-key transaction advisory lock (docs/flow-control.md).
-- Columns added with constant defaults: no table rewrite.
ALTER TABLE __schema__.jobs ADD COLUMN key_concurrency integer;

DROP INDEX __schema__.jobs_running_keys;
CREATE UNIQUE INDEX jobs_running_keys ON __schema__.jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL AND key_concurrency IS NULL;

-- The running jobs of keys with several slots, counted by their claims. Apart from the unique
-- index, so a running job of a one-slot key is in one index as before (a claim tests both:
-- this one is empty for a fleet without such keys).
CREATE INDEX jobs_running_shared_keys ON __schema__.jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL AND key_concurrency IS NOT NULL;

-- Rate limits (issue 16 point 3): a job's own rate and the key of the window it counts in
-- (both NULL: none), and a queue's rate setting.
ALTER TABLE __schema__.jobs
    ADD COLUMN rate_limit text,
    ADD COLUMN rate_key text COLLATE "C";
ALTER TABLE __schema__.queues ADD COLUMN rate_limit text;

-- The windows: per queue (scope 'queue') or per rate_key (scope 'key'), the latest starts
-- (epoch seconds, oldest first, at most the rate's N) and until when the window allows no
-- start (NULL: it has room). Claims lock the rows they start jobs in (sorted), so two
-- claims never both take the last start of a window (model/rates.py).
CREATE TABLE __schema__.rate_windows (
    scope      text NOT NULL,
    name       text COLLATE "C" NOT NULL,
    starts     double precision[] NOT NULL DEFAULT '{}',
    full_until timestamptz,
    PRIMARY KEY (scope, name)
);
-- A claim's wake-up time (the soonest spent window) and its pass over spent keys.
CREATE INDEX rate_windows_full ON __schema__.rate_windows (full_until)
    WHERE full_until IS NOT NULL;

-- Due jobs of keys with several slots or with a rate of their own, which the one-statement
-- claim leaves out and names: empty (and free to look at) for a fleet that uses neither.
CREATE INDEX jobs_due_guarded ON __schema__.jobs (run_at)
    WHERE state IN ('scheduled', 'pending')
      AND (key_concurrency IS NOT NULL OR rate_key IS NOT NULL);
