"""`conveyor recurring|queues|workers|stats|migrate`, configuration files, help and errors."""

from __future__ import annotations

import sys
from typing import Any

import click
import pytest
from click.testing import CliRunner

from conveyor.cli.commands import cli

from .support import (
    Project,
    assert_one_line_error,
    run_until_finished,
    running_worker,
    wait_for,
)


def test_recurring_verbs(project: Project) -> None:
    assert "no recurring jobs" in project.invoke("recurring", "ls").stdout
    project.app.recurring_jobs.add("nightly", "0 3 * * *", "greet", args={"name": "night"})
    table = project.invoke("recurring", "ls")
    assert table.exit_code == 0 and "nightly" in table.stdout and "0 3 * * *" in table.stdout
    [listed] = project.json("recurring", "ls")
    assert (listed["name"], listed["enabled"], listed["job_name"]) == ("nightly", True, "greet")
    shown = project.invoke("recurring", "show", "nightly")
    assert shown.exit_code == 0 and "night" in shown.stdout and "UTC" in shown.stdout
    assert project.json("recurring", "disable", "nightly")["enabled"] is False
    assert project.app.recurring_jobs.get("nightly").enabled is False
    enabled = project.invoke("recurring", "enable", "nightly")
    assert enabled.exit_code == 0 and "enabled nightly" in enabled.stdout
    run = project.json("recurring", "run", "nightly")
    job = project.app.jobs.require(run["id"])
    assert (job.name, job.args, job.recurring_name) == ("greet", {"name": "night"}, "nightly")
    assert project.invoke("recurring", "rm", "nightly").exit_code == 0
    assert project.app.recurring_jobs.list() == []


@pytest.mark.parametrize("verb", ["show", "enable", "disable", "rm", "run"])
def test_recurring_verbs_on_an_unknown_name(project: Project, verb: str) -> None:
    assert_one_line_error(project.invoke("recurring", verb, "nope"), 1, "no recurring job")


def test_queues_ls_pause_resume(project: Project) -> None:
    assert "no queues yet" not in project.invoke("queues", "ls").stdout  # "serial" is declared
    project.enqueue("send", to="a")
    project.enqueue("send", to="b")
    paused = project.invoke("queues", "pause", "emails")
    assert paused.exit_code == 0 and "paused queue emails" in paused.stdout
    by_name = {q["name"]: q for q in project.json("queues", "ls")}
    assert by_name["emails"]["paused"] is True and by_name["emails"]["waiting"] == 2
    assert by_name["serial"]["concurrency"] == 1
    table = project.invoke("queues", "ls")
    assert "paused" in table.stdout and "emails" in table.stdout
    assert project.json("queues", "resume", "emails") == {"queue": "emails", "paused": False}
    assert not {q["name"]: q for q in project.json("queues", "ls")}["emails"]["paused"]


def test_pausing_an_unknown_queue_is_refused_unless_created(project: Project) -> None:
    assert_one_line_error(project.invoke("queues", "pause", "emials"), 1, "no queue is named")
    assert "emials" not in {q["name"] for q in project.json("queues", "ls")}
    assert_one_line_error(project.invoke("queues", "resume", "emials"), 1, "no queue is named")
    created = project.json("queues", "pause", "later", "--create")
    assert created == {"queue": "later", "paused": True}
    assert {q["name"]: q for q in project.json("queues", "ls")}["later"]["paused"] is True
    assert_one_line_error(project.invoke("queues", "pause", "a/b", "--create"), 2, "queue name")


def test_workers_ls_and_stats(project: Project) -> None:
    assert "no live workers" in project.invoke("workers", "ls").stdout
    done = project.enqueue("greet", name="ada")
    project.enqueue("boom")
    worker_app = project.module.build()
    with running_worker(worker_app):
        wait_for(lambda: worker_app.jobs.counts().by_state.get("failed") == 1, what="a failure")
        wait_for(lambda: worker_app.jobs.require(done).is_finished, what="greet")
        [alive] = project.json("workers", "ls")
        assert alive["concurrency"] == 4 and alive["queues"] is None
        assert alive["id"] in project.invoke("workers", "ls").stdout
        numbers = project.json("stats")
        assert numbers["by_state"]["completed"] == 1 and numbers["by_state"]["failed"] == 1
        assert numbers["throughput"] == {"minutes": 60, "completed": 1, "failed": 1}
        assert numbers["workers"] == 1
        text = project.invoke("stats", "--minutes", "5")
        assert "1 completed, 1 failed" in text.stdout and "1 live worker" in text.stdout
    assert_one_line_error(project.invoke("stats", "--minutes", "0"), 2, "--minutes")


def test_migrate_prints_the_schema_version(project: Project) -> None:
    result = project.json("migrate")
    assert result["store"] == "SQLiteBackend" and result["schema_version"] >= 3
    text = project.invoke("migrate")
    assert text.exit_code == 0 and f"schema version {result['schema_version']}" in text.stdout


def test_the_app_comes_from_the_option_the_environment_or_a_config_file(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_one_line_error(project.invoke("jobs", "ls", app=False), 2, "no app given")
    verb_option = project.invoke("jobs", "ls", "--app", project.ref, app=False)
    assert verb_option.exit_code == 0
    monkeypatch.setenv("CONVEYOR_APP", project.ref)
    assert project.invoke("jobs", "ls", app=False).exit_code == 0
    monkeypatch.delenv("CONVEYOR_APP")
    (project.path / "pyproject.toml").write_text(f'[tool.conveyor]\napp = "{project.ref}"\n')
    assert project.invoke("jobs", "ls", app=False).exit_code == 0
    (project.path / "conveyor.toml").write_text('app = "nowhere_at_all:app"\n')  # wins
    assert_one_line_error(project.invoke("jobs", "ls", app=False), 1, "no module named")
    other = project.path / "other.toml"
    other.write_text(f'app = "{project.ref}"\n')
    explicit = project.invoke("--config", str(other), "stats", app=False)
    assert explicit.exit_code == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('app = "x:app"\ncolour = "red"\n', "unknown key(s) colour"),
        ("app = [", "not valid TOML"),
        ("app = 3\n", "app must be a string"),
        ('log_level = "loud"\n', "log_level must be one of"),
    ],
)
def test_bad_config_files_are_usage_errors(project: Project, text: str, words: str) -> None:
    (project.path / "conveyor.toml").write_text(text)
    assert_one_line_error(project.invoke("jobs", "ls", app=False), 2, words)


def test_the_config_url_picks_the_store_of_an_app_without_one(project: Project) -> None:
    module = project.path / "urlless.py"
    module.write_text("import conveyor\napp = conveyor.App()\napp.declare('x')\n")
    (project.path / "conveyor.toml").write_text('app = "urlless:app"\nurl = "sqlite:///c.db"\n')
    try:
        result = project.invoke("migrate", "--json", app=False)
        assert result.exit_code == 0, result.stderr
        assert (project.path / "c.db").exists()
    finally:
        sys.modules.pop("urlless", None)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["nosuchverb"], 2, "No such command 'nosuchverb'"),
        (["jobs", "ls", "--nope"], 2, "No such option '--nope'"),
        (["--app", "bad", "jobs", "ls"], 2, "not a MODULE:APP reference"),
        (["--app", "nowhere_at_all:app", "stats"], 1, "no module named"),
        (["worker"], 2, "no app given"),
        (["worker", "{project}:app", "--queues", " , "], 2, "--queues needs"),
    ],
)
def test_errors_are_one_line_with_meaningful_exit_codes(
    project: Project, args: list[str], code: int, words: str
) -> None:
    argv = [arg.format(project=project.name) for arg in args]
    assert_one_line_error(project.invoke(*argv, app=False), code, words)


def _verbs(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found += _verbs(command, path)
    return found


@pytest.mark.parametrize("path", _verbs(cli), ids=" ".join)
def test_every_verb_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.stdout, result.stdout


def test_every_leaf_verb_but_demo_takes_app_and_json() -> None:
    def leaves(group: click.Group) -> list[Any]:
        out: list[Any] = []
        for command in group.commands.values():
            out += leaves(command) if isinstance(command, click.Group) else [command]
        return out

    for command in leaves(cli):
        if command.name == "demo":
            continue
        names = {opt for param in command.params for opt in param.opts}
        assert {"--app", "--json"} <= names, command.name


def test_store_and_unexpected_errors_are_one_line_too(project: Project) -> None:
    (project.path / "brokenstore.py").write_text(
        "import conveyor\napp = conveyor.App('sqlite:///no/such/dir/jobs.db')\n"
    )
    (project.path / "surprise.py").write_text(
        "import conveyor\n"
        "app = conveyor.App('memory://')\n"
        "def boom(**_):\n"
        "    raise RuntimeError('surprise')\n"
        "app.jobs.list = boom\n"
    )
    try:
        store = project.invoke("--app", "brokenstore:app", "jobs", "ls", app=False)
        unexpected = project.invoke("--app", "surprise:app", "jobs", "ls", app=False)
    finally:
        sys.modules.pop("brokenstore", None)
        sys.modules.pop("surprise", None)
    assert_one_line_error(store, 1, "cannot open the SQLite store")
    assert_one_line_error(unexpected, 1, "unexpected RuntimeError: surprise")
    assert "CONVEYOR_DEBUG=1" in unexpected.stderr


def test_queues_set_changes_a_running_workers_limit(project: Project) -> None:
    worker_app = project.module.build()  # another App on the same store: the fleet
    jobs = [worker_app.request("slow") for _ in range(3)]
    with running_worker(worker_app):
        limited = project.json("queues", "set", "default", "--concurrency", "1", "--create")
        assert (limited["concurrency"], limited["operator_set"]) == (1, ["concurrency"])
        ids = [handle.id for handle in project.app.enqueue_many(jobs)]

        def states() -> list[str]:
            return sorted(str(project.app.jobs.require(i).state) for i in ids)

        # one claim takes every due job it may: all three, were the limit not applied
        wait_for(lambda: "running" in states(), what="a slow job to start")
        assert states() == ["pending", "pending", "running"]
        raised = project.invoke("queues", "set", "default", "--concurrency", "3")
        assert raised.exit_code == 0 and "concurrency 3 (operator)" in raised.stdout
        wait_for(lambda: states() == ["running"] * 3, what="the raised limit to apply")
        project.module.GATE.set()
        wait_for(lambda: states() == ["completed"] * 3, what="the jobs to finish")


def test_queues_set_and_show(project: Project) -> None:
    shown = project.json("queues", "show", "serial")
    assert (shown["concurrency"], shown["max_size"], shown["operator_set"]) == (1, None, [])
    bounded = project.json("queues", "set", "serial", "--max-size", "10", "--when-full", "refuse")
    assert (bounded["concurrency"], bounded["max_size"], bounded["when_full"]) == (
        1, 10, "refuse",
    )  # fmt: skip
    assert bounded["operator_set"] == ["max_size", "when_full"]
    table = project.invoke("queues", "ls").stdout
    assert "10 (refuse)*" in table
    lifted = project.json("queues", "set", "serial", "--concurrency", "none")
    assert lifted["concurrency"] is None
    rated = project.json("queues", "set", "serial", "--rate-limit", "100/m")
    assert rated["rate_limit"] == "100/m" and "rate_limit" in rated["operator_set"]
    assert "100/m*" in project.invoke("queues", "ls").stdout
    assert project.json("queues", "set", "serial", "--rate-limit", "none")["rate_limit"] is None
    reset = project.json("queues", "set", "serial", "--reset")
    assert (reset["concurrency"], reset["max_size"], reset["operator_set"]) == (1, None, [])
    assert "concurrency 1" in project.invoke("queues", "show", "serial").stdout


def test_queues_set_refusals(project: Project) -> None:
    assert_one_line_error(
        project.invoke("queues", "set", "emials", "--concurrency", "2"), 1, "no queue is named"
    )
    assert "emials" not in {q["name"] for q in project.json("queues", "ls")}
    created = project.json("queues", "set", "later", "--max-size", "5", "--create")
    assert created["max_size"] == 5
    assert_one_line_error(
        project.invoke("queues", "set", "serial", "--concurrency", "0"), 2, "concurrency must be"
    )
    assert_one_line_error(
        project.invoke("queues", "set", "serial", "--max-size", "lots"), 2, "neither an integer"
    )
    assert_one_line_error(
        project.invoke("queues", "set", "serial", "--rate-limit", "5/day"), 2, "rate_limit must be"
    )
    assert_one_line_error(project.invoke("queues", "set", "serial"), 2, "give --concurrency")
    assert_one_line_error(
        project.invoke("queues", "set", "serial", "--reset", "--concurrency", "2"), 2, "--reset"
    )
    assert project.json("queues", "show", "serial")["concurrency"] == 1


def test_a_disabled_recurring_job_shows_no_next_fire(project: Project) -> None:
    project.app.recurring_jobs.add("nightly", "0 3 * * *", "greet", args={"name": "n"})
    project.invoke("recurring", "disable", "nightly")

    [listed] = project.json("recurring", "ls")
    shown = project.json("recurring", "show", "nightly")

    assert listed["next_fire_at"] is None and shown["next_fire_at"] is None
    assert project.json("recurring", "enable", "nightly")["next_fire_at"] is not None
    missing = project.invoke("recurring", "show", "nope")
    assert "conveyor recurring ls" in missing.stderr


def test_stats_with_a_range_shows_the_history(project: Project) -> None:
    done = [project.enqueue("greet", name="ada"), project.enqueue("send", to="b")]
    failed = project.enqueue("boom")
    run_until_finished(project.module.build(), [*done, failed])

    history = project.json("stats", "--range", "24h")["history"]
    assert (history["range"], history["queue"], len(history["points"])) == ("24h", None, 96)
    assert sum(p["completed"] for p in history["points"]) == 2
    assert sum(p["failed"] for p in history["points"]) == 1
    assert len(history["run_bounds"]) + 1 == len(history["points"][-1]["run_buckets"])
    emails = project.json("stats", "--queue", "emails")["history"]
    assert (emails["range"], len(emails["points"])) == ("1h", 60)
    assert sum(p["completed"] for p in emails["points"]) == 1
    text = project.invoke("stats", "--range", "7d")
    assert text.exit_code == 0 and "history: 2 completed, 1 failed" in text.stdout
    by_url = project.invoke("stats", "--range", "1h", "--url", project.module.URL, app=False)
    assert by_url.exit_code == 0 and "history: 2 completed, 1 failed" in by_url.stdout
    assert "history" not in project.json("stats")
    assert_one_line_error(project.invoke("stats", "--range", "2h"), 2, "1h, 24h, 7d")
    assert_one_line_error(project.invoke("stats", "--queue", "a/b"), 2, "queue name")
