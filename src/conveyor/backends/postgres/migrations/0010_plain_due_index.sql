-- Version 10: the one-statement claims' indexes (all queues, and by queue) hold only plain due
-- jobs (no key of several slots, no rate of their own); the guarded ones get one by queue.
-- Why: the one-statement claim filters on `key_concurrency IS NULL AND rate_key IS NULL`. On a
-- table not yet analysed (a new store, a burst into a fresh schema) the planner guesses such a
-- test keeps 0.5 % of rows, so the claim's cached generic plan expected one row and chose a
-- bitmap scan of every due job and a sort (5 ms per claim at 10,000 due, growing with the
-- backlog) over the walk of this index in claim order (under 1 ms, flat). With the tests in the
-- index's predicate the planner sees them as implied and no longer discounts the estimate.
DROP INDEX __schema__.jobs_due;
CREATE INDEX jobs_due ON __schema__.jobs (priority DESC, run_at, id)
    INCLUDE (queue, concurrency_key)
    WHERE state IN ('scheduled', 'pending') AND key_concurrency IS NULL AND rate_key IS NULL;

DROP INDEX __schema__.jobs_due_by_queue;
CREATE INDEX jobs_due_by_queue ON __schema__.jobs (queue, priority DESC, run_at, id)
    INCLUDE (concurrency_key)
    WHERE state IN ('scheduled', 'pending') AND key_concurrency IS NULL AND rate_key IS NULL;

-- The guarded jobs by queue, in claim order: a claim of named queues reads them per queue, and
-- the loose scan of waiting queues (waiting_queues) finds their queues one probe each.
CREATE INDEX jobs_due_guarded_by_queue ON __schema__.jobs (queue, priority DESC, run_at, id)
    INCLUDE (concurrency_key)
    WHERE state IN ('scheduled', 'pending')
      AND (key_concurrency IS NOT NULL OR rate_key IS NOT NULL);
