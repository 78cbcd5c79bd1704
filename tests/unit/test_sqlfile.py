"""The shared SQL loader: one statement-splitting rule, named queries, templates, fragments."""

from __future__ import annotations

import pytest

from conveyor.backends.sqlfile import parse_queries, split_statements
from conveyor.errors import ConfigurationError, ConveyorError


# splitting ---------------------------------------------------------------------------------------
def test_statements_end_at_semicolons_outside_literals_and_comments() -> None:
    script = """
        -- leading comment; not a statement
        INSERT INTO t VALUES ('a;b');
        /* block; comment */ SELECT "odd;name" FROM t; -- trailing; comment
        SELECT 1;
    """
    assert split_statements(script) == [
        "INSERT INTO t VALUES ('a;b');",
        'SELECT "odd;name" FROM t;',
        "SELECT 1;",
    ]


def test_a_doubled_quote_stays_inside_the_literal() -> None:
    assert split_statements("SELECT 'it''s; fine', 'x';SELECT '''';") == [
        "SELECT 'it''s; fine', 'x';",
        "SELECT '''';",
    ]
    assert split_statements('SELECT 1 AS "a""; b";') == ['SELECT 1 AS "a""; b";']


def test_comments_inside_a_statement_are_kept_and_may_hold_quotes() -> None:
    script = "SELECT 1 -- it's; here\n     , 2 /* don't; /* nested; */ still */;\n"
    assert split_statements(script) == [
        "SELECT 1 -- it's; here\n     , 2 /* don't; /* nested; */ still */;"
    ]


def test_a_line_comment_marker_inside_a_literal_is_text() -> None:
    assert split_statements("SELECT '--;', '/*';") == ["SELECT '--;', '/*';"]


def test_a_multiline_literal_keeps_its_lines() -> None:
    assert split_statements("SELECT 'a;\n-- b;\n\nc';") == ["SELECT 'a;\n-- b;\n\nc';"]


def test_empty_statements_and_comment_only_scripts_give_nothing() -> None:
    assert split_statements(";;\n-- only a comment\n/* and; this */\n") == []


@pytest.mark.parametrize(
    ("script", "message"),
    [
        ("SELECT 1", "incomplete SQL statement"),
        ("SELECT 1;\nSELECT 'a;", "unterminated string literal"),
        ('SELECT "a;', "unterminated quoted identifier"),
        ("SELECT 1; /* a /* b */ ;", r"unterminated /\* comment"),
    ],
)
def test_broken_scripts_raise_a_configuration_error(script: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        split_statements(script, "m.sql")
    assert issubclass(ConfigurationError, ConveyorError)


def test_dollar_quotes_are_not_understood() -> None:
    # documented: no store's file uses them, so a ; inside one ends the statement
    assert split_statements("SELECT $$a;b$$;") == ["SELECT $$a;", "b$$;"]


# named queries -----------------------------------------------------------------------------------
def test_named_queries_drop_comment_lines_and_blank_lines() -> None:
    text = """
-- preamble, ignored
SELECT 'not a query';

-- name: one
-- about it
SELECT a,  -- kept: not a whole line
       ';' AS b

-- inner comment

FROM t;
-- the next query's comment
-- name: two
SELECT '
-- inside a literal: kept
';
"""
    assert parse_queries(text) == {
        "one": "SELECT a,  -- kept: not a whole line\n       ';' AS b\nFROM t;",
        "two": "SELECT '\n-- inside a literal: kept\n';",
    }


def test_a_name_defined_twice_is_refused() -> None:
    text = "-- name: x\nSELECT 1;\n-- name: y\nSELECT 2;\n-- name: x\nSELECT 3;\n"
    with pytest.raises(ConfigurationError, match=r"'x' is defined twice \(first on line 1\)"):
        parse_queries(text, "q.sql")


def test_a_name_defined_twice_within_one_header_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="defined twice"):
        parse_queries("-- name: x, x\nSELECT 1;\n")


def test_a_query_with_two_statements_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must hold one statement, not 2"):
        parse_queries("-- name: x\nSELECT 1; SELECT 2;\n")


def test_a_query_without_a_statement_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must hold one statement, not 0"):
        parse_queries("-- name: x\n-- nothing here\n-- name: y\nSELECT 1;\n")


def test_a_semicolon_in_a_literal_does_not_make_two_statements() -> None:
    assert parse_queries("-- name: x\nSELECT 'a;b' -- c;d\n;\n") == {"x": "SELECT 'a;b' -- c;d\n;"}


def test_a_malformed_header_is_refused_not_read_as_a_comment() -> None:
    with pytest.raises(ConfigurationError, match="malformed header"):
        parse_queries("-- name: x\nSELECT 1;\n-- name: two words\nSELECT 2;\n")


def test_a_header_inside_a_literal_or_comment_is_not_a_header() -> None:
    text = "-- name: x\nSELECT '\n-- name: y\n' /*\n-- name: z\n*/;\n"
    assert list(parse_queries(text)) == ["x"]


# templates ---------------------------------------------------------------------------------------
def test_one_block_renders_one_statement_per_name() -> None:
    text = """
-- name: pick_any, pick_in
SELECT id FROM jobs
WHERE due
  AND queue <> ALL(%(excluded)s)  -- only: pick_any
  AND queue = ANY(%(queues)s)     -- only: pick_in
ORDER BY id;
"""
    assert parse_queries(text) == {
        "pick_any": "SELECT id FROM jobs\nWHERE due\n  AND queue <> ALL(%(excluded)s)\n"
        "ORDER BY id;",
        "pick_in": "SELECT id FROM jobs\nWHERE due\n  AND queue = ANY(%(queues)s)\nORDER BY id;",
    }


def test_fragments_are_indented_where_they_go_and_rendered_per_statement() -> None:
    text = """
-- name: wrapped_a, wrapped_b
WITH picked AS (
    {picked}
)
SELECT * FROM picked;

-- fragment: picked
SELECT id
FROM jobs
WHERE q = 'a;'  -- only: wrapped_a, plain_a
WHERE q = 'b'  -- only: wrapped_b, plain_b
-- a comment line of the fragment's: dropped

-- name: plain_a, plain_b
{picked};
"""
    assert parse_queries(text) == {
        "wrapped_a": "WITH picked AS (\n    SELECT id\n    FROM jobs\n    WHERE q = 'a;'\n)\n"
        "SELECT * FROM picked;",
        "wrapped_b": "WITH picked AS (\n    SELECT id\n    FROM jobs\n    WHERE q = 'b'\n)\n"
        "SELECT * FROM picked;",
        "plain_a": "SELECT id\nFROM jobs\nWHERE q = 'a;';",
        "plain_b": "SELECT id\nFROM jobs\nWHERE q = 'b';",
    }


def test_a_placeholder_in_a_literal_or_comment_is_left_alone() -> None:
    text = "-- name: x\nSELECT '{nope}' /* {nope} */ -- {nope}\n;\n"
    assert parse_queries(text) == {"x": "SELECT '{nope}' /* {nope} */ -- {nope}\n;"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-- name: x\n{missing};\n", "names no fragment"),
        ("-- name: x\nSELECT 1;\n-- fragment: f\nSELECT 2\n", "no query uses it"),
        ("-- name: x\n{f};\n-- fragment: f\nSELECT {f}\n", "fragments include each other"),
        ("-- name: x\n{f};\n-- fragment: f\nSELECT 1; SELECT 2\n", "holds no ;"),
        ("-- name: x\nSELECT 1  -- only: y\n;\n", r"names \['y'\], not a name of this block"),
        (
            "-- name: x\n{f};\n-- fragment: f\nSELECT 1  -- only: x, y\n",
            r"names \['y'\], which is not built from it",
        ),
        ("-- name: x, y\nSELECT 1\n-- only: x\n;\n", "must end a line of SQL"),
        ("-- name: x, y\nSELECT 'a\nb'  -- only: x\n;\n", "must end a line of SQL"),
        ("-- name: x, y\nSELECT 1  -- only: x y\n;\n", "malformed tag"),
        ("-- fragment: f, g\nSELECT 1\n", "a fragment has one name"),
    ],
)
def test_template_mistakes_raise_a_configuration_error(text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_queries(text, "q.sql")


# the stores' own files ------------------------------------------------------------------------
def test_the_postgres_claims_are_rendered_from_one_template() -> None:
    from conveyor.backends.postgres.sql import Q

    claim_any, claim_in = Q["claim_any"], Q["claim_in"]
    assert "j.queue <> ALL(%(excluded)s::text[])" in claim_any
    assert "%(queues)s" not in claim_any
    assert "j.queue = asked.queue" in claim_in and "unnest(%(queues)s::text[]) AS asked" in claim_in
    assert "%(excluded)s" not in claim_in
    assert "only:" not in claim_any + claim_in and "{" not in claim_any + claim_in
    # the limited queues' candidates are the claim's own candidates CTE, but that the claim
    # leaves the queues with a stored limit to them
    paused = "WHERE p.paused))"
    limited = "WHERE p.paused OR p.concurrency IS NOT NULL OR p.rate_limit IS NOT NULL))"
    for claim, candidates in ((claim_any, "candidates_any"), (claim_in, "candidates_in")):
        assert paused in Q[candidates] and limited not in Q[candidates]
        as_claimed = Q[candidates].rstrip(";").replace(paused, limited)
        # and the jobs of keys with several slots or with a rate (claimed under locks)
        shared = "\n      AND j.key_concurrency IS NULL AND j.rate_key IS NULL"
        note = (
            "\n      -- (the names read once, as an array: a per-row anti join over the queues was"
            " planned as a\n      -- nested loop on a fresh table, with no statistics yet, and"
            " cost 40 % more per claim)"
        )
        claim = claim.replace(note, "")
        assert shared in claim and shared not in Q[candidates]
        assert "    " + as_claimed.replace("\n", "\n    ") in claim.replace(shared, "")
    assert "%(queues)s" in Q["next_run_at_in"] and "%(queues)s" not in Q["next_run_at_any"]


def test_the_sqlite_migrations_split_into_statements() -> None:
    from conveyor.backends.sqlite.sql import migrations

    for _, script in migrations():
        statements = split_statements(script)
        assert statements and all(s.endswith(";") for s in statements)
