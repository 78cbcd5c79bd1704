-- Version 5: the two newest-first listing indexes in ascending order; the listings read them
-- backwards. A new job has the newest created_at and the greatest id, so in a descending
-- index every insert landed at the far left, where SQLite's b-tree rebalances; ascending, it
-- lands at the right end, which is an append. A bulk insert of 10,000 jobs spent about 4.6 µs
-- a job in conveyor_jobs_created alone (bench/RESULTS.md).
DROP INDEX IF EXISTS conveyor_jobs_created;
CREATE INDEX conveyor_jobs_created ON conveyor_jobs (created_at, id);
DROP INDEX IF EXISTS conveyor_jobs_state_created;
CREATE INDEX conveyor_jobs_state_created ON conveyor_jobs (state, created_at, id);
