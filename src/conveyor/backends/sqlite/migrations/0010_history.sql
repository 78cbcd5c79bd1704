-- Version 10: history (issue 19 point 6, model/history.py). One row per queue per minute of
-- finished jobs, written by the sweeper's roll-up (never by a finish) and pruned after the
-- history retention: counts by outcome, the count and sum of wait (due -> started) and run
-- (started -> finished) seconds, and the run times' histogram (h0..h10, bounds in
-- model/history.py RUN_BOUNDS). The watermark row says up to where jobs are rolled up (NULL:
-- not yet), so several sweepers never count a job twice and a reader takes the minutes after
-- it from the job rows.
CREATE TABLE conveyor_history (
    minute     REAL NOT NULL,
    queue      TEXT NOT NULL,
    completed  INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    cancelled  INTEGER NOT NULL DEFAULT 0,
    wait_count INTEGER NOT NULL DEFAULT 0,
    wait_sum   REAL NOT NULL DEFAULT 0,
    run_count  INTEGER NOT NULL DEFAULT 0,
    run_sum    REAL NOT NULL DEFAULT 0,
    h0 INTEGER NOT NULL DEFAULT 0, h1 INTEGER NOT NULL DEFAULT 0, h2 INTEGER NOT NULL DEFAULT 0,
    h3 INTEGER NOT NULL DEFAULT 0, h4 INTEGER NOT NULL DEFAULT 0, h5 INTEGER NOT NULL DEFAULT 0,
    h6 INTEGER NOT NULL DEFAULT 0, h7 INTEGER NOT NULL DEFAULT 0, h8 INTEGER NOT NULL DEFAULT 0,
    h9 INTEGER NOT NULL DEFAULT 0, h10 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue)
) WITHOUT ROWID;
CREATE TABLE conveyor_history_mark (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    until REAL
);
INSERT INTO conveyor_history_mark (id, until) VALUES (1, NULL);
