-- Version 3: listing jobs of some states newest first without walking every job.
CREATE INDEX jobs_state_created ON __schema__.jobs (state, created_at DESC, id DESC);
