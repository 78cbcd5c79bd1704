-- Version 12: history (issue 19 point 6, model/history.py). One row per queue per minute of
-- finished jobs, written by the sweeper's roll-up (never by a finish) and pruned after the
-- history retention: counts by outcome, the count and sum of wait (due -> started) and run
-- (started -> finished) seconds, and the run times' histogram (h0..h10, bounds in
-- model/history.py RUN_BOUNDS). The watermark row says up to where jobs are rolled up (NULL:
-- not yet); a roll-up locks it, so several sweepers never count a job twice, and a reader
-- takes the minutes after it from the job rows.
CREATE TABLE __schema__.history (
    minute     timestamptz NOT NULL,
    queue      text COLLATE "C" NOT NULL,
    completed  integer NOT NULL DEFAULT 0,
    failed     integer NOT NULL DEFAULT 0,
    cancelled  integer NOT NULL DEFAULT 0,
    wait_count integer NOT NULL DEFAULT 0,
    wait_sum   double precision NOT NULL DEFAULT 0,
    run_count  integer NOT NULL DEFAULT 0,
    run_sum    double precision NOT NULL DEFAULT 0,
    h0 integer NOT NULL DEFAULT 0, h1 integer NOT NULL DEFAULT 0, h2 integer NOT NULL DEFAULT 0,
    h3 integer NOT NULL DEFAULT 0, h4 integer NOT NULL DEFAULT 0, h5 integer NOT NULL DEFAULT 0,
    h6 integer NOT NULL DEFAULT 0, h7 integer NOT NULL DEFAULT 0, h8 integer NOT NULL DEFAULT 0,
    h9 integer NOT NULL DEFAULT 0, h10 integer NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, queue)
);
CREATE TABLE __schema__.history_mark (
    id    integer PRIMARY KEY CHECK (id = 1),
    until timestamptz
);
INSERT INTO __schema__.history_mark (id, until) VALUES (1, NULL);
