-- Version 4: listing jobs of some states newest first without walking every job.
CREATE INDEX conveyor_jobs_state_created ON conveyor_jobs (state, created_at DESC, id DESC);
