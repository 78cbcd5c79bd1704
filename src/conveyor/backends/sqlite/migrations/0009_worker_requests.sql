-- Version 9: quieting and stopping a worker from the dashboard or the CLI (issue 19, point 4).
-- `mode` is what the worker reported at its last heartbeat (running, quiet, stopping);
-- `requested` is what an operator asked of it (quiet, stop; NULL: nothing), which the upsert
-- of each heartbeat never writes and hands back (model/workers.py).
ALTER TABLE conveyor_workers ADD COLUMN mode TEXT NOT NULL DEFAULT 'running';
ALTER TABLE conveyor_workers ADD COLUMN requested TEXT;
