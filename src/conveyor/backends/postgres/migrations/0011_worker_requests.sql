-- Version 11: quieting and stopping a worker from the dashboard or the CLI (issue 19, point 4).
-- `mode` is what the worker reported at its last heartbeat (running, quiet, stopping);
-- `requested` is what an operator asked of it (quiet, stop; NULL: nothing), which the
-- heartbeat's upsert never writes and hands back in the same statement (model/workers.py).
ALTER TABLE __schema__.workers ADD COLUMN mode text NOT NULL DEFAULT 'running';
ALTER TABLE __schema__.workers ADD COLUMN requested text;
