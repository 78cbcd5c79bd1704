"""`conveyor migrate` on PostgreSQL: the deploy step for apps whose URL says ?migrate=false."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import conveyor
from conveyor.cli.commands import cli
from conveyor.errors import ConfigurationError
from postgres.server import fresh_schema, url_for

from .support import assert_one_line_error

pytest.importorskip("psycopg", reason='psycopg missing: pip install -e ".[dev]"')

from conveyor.backends.postgres.sql import migrations

SHIPPED = [version for version, _ in migrations()]


def write_app(folder: Path, url: str) -> str:
    """A module holding `app` on `url`; its MODULE:APP reference."""
    name = f"pgapp_{uuid.uuid4().hex[:8]}"
    (folder / f"{name}.py").write_text(
        f"import conveyor\napp = conveyor.App({url!r})\napp.declare('send')\n"
    )
    return f"{name}:app"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The current directory, importable; the modules written there are forgotten after."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    monkeypatch.delenv("CONVEYOR_URL", raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for path in tmp_path.glob("pgapp_*.py"):
        sys.modules.pop(path.stem, None)


def migrate(ref: str, *args: str) -> Result:
    return CliRunner(env={"COLUMNS": "200"}).invoke(
        cli, ["migrate", "--app", ref, *args], catch_exceptions=False
    )


def test_migrate_applies_the_schema_that_migrate_false_apps_need(folder: Path) -> None:
    with fresh_schema() as schema:
        url = url_for(schema, migrate="false")
        ref = write_app(folder, url)
        app = conveyor.App(url)
        app.declare("send")
        with pytest.raises(ConfigurationError, match="conveyor migrate"):
            app.enqueue("send")  # a fresh schema: the app refuses to run without it
        app.close()

        first = migrate(ref, "--json")
        assert first.exit_code == 0, first.output + first.stderr
        report = json.loads(first.stdout)
        assert report["store"] == "PostgresBackend"
        assert report["schema_version"] == SHIPPED[-1]
        assert report["applied"] == SHIPPED

        again = migrate(ref)  # harmless the second time
        assert again.exit_code == 0, again.output + again.stderr
        assert f"schema version {SHIPPED[-1]} (up to date)" in again.stdout
        assert json.loads(migrate(ref, "--json").stdout)["applied"] == []

        try:
            assert app.enqueue("send").refresh().state is conveyor.JobState.PENDING
        finally:
            app.close()


def test_migrate_shows_no_password(folder: Path) -> None:
    with fresh_schema() as schema:
        ref = write_app(folder, url_for(schema, password="s3cret", application_name="x"))
        result = migrate(ref)
    assert result.exit_code == 0, result.output + result.stderr
    assert "s3cret" not in result.stdout and "password=***&application_name=x" in result.stdout


def test_migrate_says_in_one_line_when_the_server_is_unreachable(folder: Path) -> None:
    ref = write_app(folder, "postgresql://postgres@127.0.0.1:1/test?connect_timeout=2")

    assert_one_line_error(migrate(ref), 1, "cannot migrate the PostgreSQL store at 127.0.0.1:1")
