"""`conveyor workflows ls / show / cancel`, for people and with --json."""

from __future__ import annotations

import pytest

import conveyor

from .support import Project, assert_one_line_error


def nightly(project: Project) -> conveyor.WorkflowHandle:
    app = project.app
    wf = app.workflow("nightly")
    first = wf.add(app.request("greet", {"name": "a"}), name="fetch")
    failing = wf.add(app.request("boom"), after=[first], name="score")
    wf.add(app.request("greet", {"name": "b"}), after=[failing], name="publish")
    return wf.enqueue()


def test_ls_show_and_cancel(project: Project) -> None:
    assert "no workflows" in project.invoke("workflows", "ls").stdout
    handle = nightly(project)

    table = project.invoke("workflows", "ls")
    assert (
        table.exit_code == 0
        and handle.id in table.stdout
        and "1 pending, 2 waiting" in table.stdout
    )
    listed = project.json("workflows", "ls")
    assert [w["id"] for w in listed["workflows"]] == [handle.id]
    assert listed["workflows"][0]["total_steps"] == 3 and listed["has_more"] is False
    assert project.json("workflows", "ls", "--name", "other")["workflows"] == []
    shown = project.json("workflows", "show", handle.id)
    assert [(s["name"], s["state"], s["after"]) for s in shown["steps"]] == [
        ("fetch", "pending", []),
        ("score", "waiting", ["fetch"]),
        ("publish", "waiting", ["score"]),
    ]
    people = project.invoke("workflows", "show", handle.id)
    assert people.exit_code == 0 and "publish" in people.stdout and "waiting" in people.stdout

    cancelled = project.json("workflows", "cancel", handle.id)

    assert cancelled["state"] == "cancelled"
    assert {s["state"] for s in cancelled["steps"]} == {"cancelled"}


def test_show_marks_a_step_cancelled_by_its_parent(project: Project) -> None:
    handle = nightly(project)
    project.app.testing.drain()

    shown = project.json("workflows", "show", handle.id)
    assert shown["state"] == "failed"
    publish = shown["steps"][2]
    assert publish["state"] == "cancelled" and "score" in publish["error"]
    people = project.invoke("workflows", "show", handle.id)
    assert "(parent)" in people.stdout
    job = project.invoke("jobs", "show", handle.steps["publish"].id)
    assert f"{handle.id} (step publish)" in job.stdout
    retried = project.invoke("jobs", "retry", handle.steps["score"].id)
    assert retried.exit_code == 0
    assert project.app.jobs.require(handle.steps["publish"].id).state.value == "waiting"


def test_an_unknown_workflow_is_one_line(project: Project) -> None:
    for verb in ("show", "cancel"):
        result = project.invoke("workflows", verb, "nope")
        assert_one_line_error(result, 1, "no workflow has id 'nope'")


def test_store_verbs_take_a_url_instead_of_the_job_code(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    handle = nightly(project)
    url = project.app.url
    runner = project.invoke

    by_flag = runner("workflows", "show", handle.id, "--url", url, "--json", app=False)
    assert by_flag.exit_code == 0 and handle.id in by_flag.stdout
    listed = runner("jobs", "ls", "--url", url, "--json", app=False)
    assert listed.exit_code == 0 and handle.steps["fetch"].id in listed.stdout
    monkeypatch.setenv("CONVEYOR_URL", url)
    by_env = runner("workflows", "ls", "--json", app=False)
    assert by_env.exit_code == 0 and handle.id in by_env.stdout
    assert_one_line_error(
        runner("jobs", "ls", "--url", url), 2, "give either --app (the job code) or --url"
    )
    assert_one_line_error(
        runner("jobs", "ls", "--url", "bogus://x", app=False), 1, "unsupported store URL"
    )
