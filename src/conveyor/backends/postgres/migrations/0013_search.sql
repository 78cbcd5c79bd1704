-- Version 13: the job search's indexes (docs/web.md, "Finding jobs").
--
-- jobs_search: a GIN trigram index (pg_trgm) over the text a search looks in: the id, the
-- name, the arguments and metadata as JSON text and the last error's message, joined by a
-- control character no search may hold (so a match never spans two fields). An ILIKE
-- '%text%' of three characters or more reads the index's candidates instead of every row
-- (under 200 ms at 1,000,000 jobs where a scan took seconds). The listing's queries repeat
-- this expression exactly: the planner matches it by shape.
--
-- pg_trgm is one extension per database, shared by every store's schema. It is used where a
-- database owner already installed it; otherwise it is created in a schema of its own,
-- conveyor_extensions, rather than in this store's schema: dropping one store's schema (as
-- each test does) would then drop the extension and every other store's search index with
-- it. A global advisory lock keeps two stores migrating at once from both creating it.
--
-- jobs_error_kind: the last error's kind, only for jobs with an error, so the other jobs'
-- writes pay nothing for it; "kind = x" implies the predicate, so the planner uses it.
DO $migration$
DECLARE
    home text;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('conveyor-extension:pg_trgm'));
    SELECT n.nspname INTO home
    FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF home IS NULL THEN
        BEGIN
            CREATE SCHEMA IF NOT EXISTS conveyor_extensions;
            CREATE EXTENSION pg_trgm SCHEMA conveyor_extensions;
        EXCEPTION WHEN OTHERS THEN
            RAISE EXCEPTION USING
                ERRCODE = 'insufficient_privilege',
                MESSAGE = format(
                    'Conveyor''s job search needs the PostgreSQL extension pg_trgm, which '
                    'could not be created: %s', SQLERRM),
                HINT = 'As a database owner or superuser run CREATE EXTENSION pg_trgm; '
                    '(any schema; on Debian the extension ships with postgresql-contrib), '
                    'then run `conveyor migrate` again.';
        END;
        home := 'conveyor_extensions';
    END IF;
    IF NOT has_schema_privilege(home, 'USAGE') THEN
        RAISE EXCEPTION USING
            ERRCODE = 'insufficient_privilege',
            MESSAGE = format(
                'Conveyor''s job search needs the PostgreSQL extension pg_trgm, which is '
                'installed in schema %s, which this role (%s) may not use', home, current_user),
            HINT = format('As its owner run GRANT USAGE ON SCHEMA %I TO %I; then run '
                '`conveyor migrate` again.', home, current_user);
    END IF;
    -- for gin_trgm_ops below, until this migration's transaction ends
    PERFORM set_config('search_path', quote_ident(home) || ', ' || current_setting('search_path'), true);
END
$migration$;

CREATE INDEX jobs_search ON __schema__.jobs USING gin ((
    id || chr(31) || name || chr(31) || args::text || chr(31) || metadata::text || chr(31)
    || coalesce(errors -> -1 ->> 'message', '')
) gin_trgm_ops);

CREATE INDEX jobs_error_kind ON __schema__.jobs ((errors -> -1 ->> 'kind'), created_at)
    WHERE (errors -> -1 ->> 'kind') IS NOT NULL;
