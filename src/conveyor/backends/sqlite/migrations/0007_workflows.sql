-- Workflows: jobs that wait on other jobs. A waiting job (state 'waiting') is in no claim
-- index (they all hold only scheduled and pending jobs) until its last parent completes.

ALTER TABLE conveyor_jobs ADD COLUMN workflow_id TEXT;
ALTER TABLE conveyor_jobs ADD COLUMN step TEXT;
-- open edges left: the release happens when this reaches 0 (a counter, so two parents
-- finishing at once on another store serialise on the child's row; kept the same here)
ALTER TABLE conveyor_jobs ADD COLUMN parents_left INTEGER NOT NULL DEFAULT 0;
-- how many jobs wait on this one: a finish looks at edges only for a job that has some
ALTER TABLE conveyor_jobs ADD COLUMN dependents INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conveyor_jobs ADD COLUMN on_parent_failure TEXT;  -- NULL: cancel
ALTER TABLE conveyor_jobs ADD COLUMN blocked_by TEXT;  -- the parent that cancelled it

CREATE TABLE conveyor_edges (
    parent_id TEXT NOT NULL,
    child_id  TEXT NOT NULL,
    position  INTEGER NOT NULL,           -- the parent's place in the child's `after`
    resolved  INTEGER NOT NULL DEFAULT 0, -- 1: the parent completed (or failed, for "run")
    PRIMARY KEY (parent_id, child_id)
) WITHOUT ROWID;

CREATE INDEX conveyor_edges_child ON conveyor_edges (child_id, position);

CREATE TABLE conveyor_workflows (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;

CREATE INDEX conveyor_workflows_created ON conveyor_workflows (created_at, id);
CREATE INDEX conveyor_workflows_name ON conveyor_workflows (name, created_at, id);

CREATE INDEX conveyor_jobs_workflow ON conveyor_jobs (workflow_id, id)
    WHERE workflow_id IS NOT NULL;
