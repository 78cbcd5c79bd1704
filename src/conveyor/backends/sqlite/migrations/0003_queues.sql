-- Version 3: paused queues.

CREATE TABLE conveyor_queues (
    name       TEXT PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    changed_at REAL NOT NULL
);
