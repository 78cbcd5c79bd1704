-- Version 8: workflows, jobs that wait on other jobs. A waiting job (state 'waiting') is in
-- no claim index (they hold only scheduled and pending jobs) until its last parent completes.
-- Columns added with constant defaults: no table rewrite.
ALTER TABLE __schema__.jobs
    ADD COLUMN workflow_id text COLLATE "C",
    ADD COLUMN step text,
    -- open edges left: two parents finishing at once serialise on the child's row lock,
    -- and the one that brings this to 0 releases it
    ADD COLUMN parents_left integer NOT NULL DEFAULT 0,
    -- how many jobs wait on this one: a finish looks at edges only for a job with some
    ADD COLUMN dependents integer NOT NULL DEFAULT 0,
    ADD COLUMN on_parent_failure text,  -- NULL: cancel
    ADD COLUMN blocked_by text COLLATE "C";  -- the parent that cancelled it

-- The new state, checked without holding the table's exclusive lock during the scan.
ALTER TABLE __schema__.jobs DROP CONSTRAINT jobs_state_known;
ALTER TABLE __schema__.jobs ADD CONSTRAINT jobs_state_known CHECK (state IN (
    'waiting', 'scheduled', 'pending', 'running', 'completed', 'failed', 'cancelled',
    'skipped')) NOT VALID;
ALTER TABLE __schema__.jobs VALIDATE CONSTRAINT jobs_state_known;

CREATE TABLE __schema__.edges (
    parent_id text COLLATE "C" NOT NULL,
    child_id  text COLLATE "C" NOT NULL,
    position  integer NOT NULL,             -- the parent's place in the child's `after`
    resolved  boolean NOT NULL DEFAULT false, -- the parent completed (or failed, for "run")
    PRIMARY KEY (parent_id, child_id)
);

CREATE INDEX edges_child ON __schema__.edges (child_id, position);

CREATE TABLE __schema__.workflows (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE INDEX workflows_created ON __schema__.workflows (created_at, id);
CREATE INDEX workflows_name ON __schema__.workflows (name, created_at, id);

CREATE INDEX jobs_workflow ON __schema__.jobs (workflow_id, id) WHERE workflow_id IS NOT NULL;
