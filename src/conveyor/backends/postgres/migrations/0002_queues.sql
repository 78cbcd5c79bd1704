-- Version 2: paused queues. A queue without a row here is running.

CREATE TABLE __schema__.queues (
    name       text PRIMARY KEY,
    paused     boolean NOT NULL DEFAULT false,
    changed_at timestamptz NOT NULL
);
