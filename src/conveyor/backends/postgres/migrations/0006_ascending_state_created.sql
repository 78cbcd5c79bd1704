-- Version 6: jobs_state_created in ascending order; the listings walk it backwards. A new job
-- has the newest created_at and the greatest id, so in the descending index every insert
-- landed at the far left of its state's range, where btree inserts split pages; ascending,
-- it lands at the right end, which btrees append to cheaply: a bulk COPY's server time fell
-- by a tenth (bench/RESULTS.md).
DROP INDEX IF EXISTS __schema__.jobs_state_created;
CREATE INDEX jobs_state_created ON __schema__.jobs (state, created_at, id);
