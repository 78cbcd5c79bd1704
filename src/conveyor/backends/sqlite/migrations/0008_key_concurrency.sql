-- Version 8: how many jobs of a concurrency key may run at once (`key_concurrency`, issue 16
-- point 2). NULL means 1, the default, so existing rows keep their one-at-a-time meaning and a
-- claim tells the two cases apart without a function call. The claim counts a key's running
-- jobs on the existing index of running keys (conveyor_jobs_running_keys).
ALTER TABLE conveyor_jobs ADD COLUMN key_concurrency INTEGER;
