-- Version 4: every new job and every state change wrote an entry in jobs_created as well as in
-- jobs_state_created. Listings newest first now merge one walk of jobs_state_created per state
-- (there are seven), which gives the same order, so that write goes (bench/RESULTS.md).
DROP INDEX IF EXISTS __schema__.jobs_created;
