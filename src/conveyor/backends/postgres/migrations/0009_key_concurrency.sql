-- Version 9: up to N running jobs per concurrency key (`key_concurrency`, issue 16 point 2).
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

-- Every running job of a key, whatever its limit: the claim's "is the key free" test and the
-- count of a shared key's running jobs.
CREATE INDEX jobs_running_key_counts ON __schema__.jobs (concurrency_key)
    WHERE state = 'running' AND concurrency_key IS NOT NULL;

-- Due jobs of keys with several slots, which the one-statement claim leaves out and names:
-- empty (and free to look at) for a fleet that uses none.
CREATE INDEX jobs_due_shared_keys ON __schema__.jobs (queue, run_at)
    WHERE state IN ('scheduled', 'pending') AND key_concurrency IS NOT NULL;
