"""`verb`: a callback that loads the App, and prints what it returns as JSON or for people."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from conveyor import App
from conveyor.cli.base import Output, verb

from .support import Project


def test_verb_loads_the_app_and_prints_json_or_the_human_form(project: Project) -> None:
    loaded: list[App] = []

    @click.command()
    @click.argument("word")
    @verb
    def shout(app: App, word: str) -> Output:
        """Say WORD loudly."""
        loaded.append(app)
        return Output({"word": word}, f"[bold]{word.upper()}[/]")

    runner = CliRunner()
    human = runner.invoke(shout, ["hi", "--app", project.ref])
    assert (human.exit_code, human.stdout) == (0, "HI\n")
    assert loaded == [project.app]
    data = runner.invoke(shout, ["hi", "--app", project.ref, "--json"])
    assert (data.exit_code, json.loads(data.stdout)) == (0, {"word": "hi"})
    assert "Say WORD loudly." in runner.invoke(shout, ["--help"]).stdout


def test_verb_passes_json_to_a_callback_that_asks_and_exits_with_the_code(
    project: Project,
) -> None:
    asked: list[bool] = []

    @click.command()
    @verb
    def probe(app: App, as_json: bool) -> Output:
        asked.append(as_json)
        return Output([1], lambda out: out.print("printed by the callback"), exit_code=3)

    runner = CliRunner()
    human = runner.invoke(probe, ["--app", project.ref])
    assert (human.exit_code, human.stdout) == (3, "printed by the callback\n")
    data = runner.invoke(probe, ["--app", project.ref, "--json"])
    assert (data.exit_code, json.loads(data.stdout)) == (3, [1])
    assert asked == [False, True]
