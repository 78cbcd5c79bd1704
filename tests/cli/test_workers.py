"""`conveyor workers ls|quiet|stop|resume`: an operator steering live workers."""

from __future__ import annotations

import json
from typing import Any

from .support import Project, assert_one_line_error, running_worker, wait_for


def _worker(project: Project) -> dict[str, Any]:
    [alive] = project.json("workers", "ls")
    return dict(alive)


def test_quiet_resume_and_stop_a_live_worker_by_url(project: Project) -> None:
    url = project.module.URL
    worker_app = project.module.build()  # another App on the store: the fleet
    with running_worker(worker_app):
        worker = _worker(project)
        assert worker["mode"] == "running" and worker["requested"] is None
        wid = worker["id"]

        quiet = project.invoke("workers", "quiet", wid, "--url", url, app=False)
        assert quiet.exit_code == 0, quiet.stderr
        assert f"worker {wid}: asked to go quiet" in quiet.stdout
        wait_for(lambda: _worker(project)["mode"] == "quiet", what="the worker to go quiet")
        assert "quiet" in project.invoke("workers", "ls").stdout
        held = project.enqueue("greet", name="ada")
        wait_for(
            lambda: _worker(project)["last_seen_at"] > worker["last_seen_at"],
            what="another heartbeat",
        )
        assert project.app.jobs.require(held).state == "pending"  # nothing claimed

        resumed = project.json("workers", "resume", wid)
        assert resumed["requested"] is None
        wait_for(lambda: project.app.jobs.require(held).is_finished, what="the held job to run")
        assert _worker(project)["mode"] == "running"

        stopped = project.invoke("workers", "stop", wid, "--url", url, "--json", app=False)
        assert stopped.exit_code == 0, stopped.stderr
        assert json.loads(stopped.stdout)["requested"] == "stop"
        wait_for(lambda: project.json("workers", "ls") == [], what="the worker to exit")
        assert_one_line_error(
            project.invoke("workers", "stop", wid, "--url", url, app=False),
            1,
            f"no live worker has id '{wid}'",
        )


def test_a_pending_request_shows_in_the_listing(project: Project) -> None:
    from conveyor.backends.records import WorkerInfo

    now = project.app.clock()
    info = WorkerInfo("far-1:9:abcd", "far-1", 9, None, 2, now, now)
    project.app.backend.heartbeat(info, [], now)
    project.invoke("workers", "quiet", "far-1:9:abcd")

    table = project.invoke("workers", "ls").stdout
    assert "running → quiet" in table  # asked, not yet followed
    assert _worker(project)["requested"] == "quiet"


def test_unknown_worker_and_stopping_worker_are_refused(project: Project) -> None:
    assert_one_line_error(
        project.invoke("workers", "quiet", "nobody"), 1, "no live worker has id 'nobody'"
    )
    assert_one_line_error(project.invoke("workers", "stop", "a\x00b"), 1, "NUL character")
    from conveyor.backends.records import WorkerInfo

    now = project.app.clock()
    project.app.backend.heartbeat(WorkerInfo("w:1:x", "h", 1, None, 1, now, now), [], now)
    assert project.invoke("workers", "stop", "w:1:x").exit_code == 0
    assert_one_line_error(project.invoke("workers", "resume", "w:1:x"), 1, "is stopping")
    missing = project.invoke("workers", "quiet")
    assert missing.exit_code == 2 and "Missing argument 'ID'" in missing.stderr
