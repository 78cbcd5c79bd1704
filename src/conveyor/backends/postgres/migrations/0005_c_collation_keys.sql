-- Version 5: the columns that index keys are built from compare byte by byte (COLLATE "C").
-- They hold machine-made identifiers (ids, states, queue names, keys), whose order has no
-- language; a locale's collation made every index insert and look-up call strcoll. Indexes
-- on these columns are rebuilt; the table itself is not rewritten. `name` keeps the
-- database's collation: the job list searches it with lower(), which follows the collation.
ALTER TABLE __schema__.jobs
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN queue TYPE text COLLATE "C",
    ALTER COLUMN state TYPE text COLLATE "C",
    ALTER COLUMN unique_key TYPE text COLLATE "C",
    ALTER COLUMN recurring_name TYPE text COLLATE "C",
    ALTER COLUMN concurrency_key TYPE text COLLATE "C";
