"""`conveyor jobs …` through the real entry point against a SQLite store."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest

from conveyor.backends.records import LIST_COUNT_CAP

from .support import Project, assert_one_line_error, run_until_finished, running_worker, wait_for


def test_ls_lists_filters_and_pages(project: Project) -> None:
    empty = project.invoke("jobs", "ls")
    assert empty.exit_code == 0 and "no jobs match" in empty.stdout
    ada = project.enqueue("greet", name="ada")
    project.enqueue("greet", name="bob")
    mail = project.enqueue("send", to="x@example.com")
    table = project.invoke("jobs", "ls")
    assert table.exit_code == 0
    assert ada in table.stdout and "greet" in table.stdout and "emails" in table.stdout
    assert "3 job(s)" in table.stdout

    listing = project.json("jobs", "ls")
    assert listing["total"] == 3
    assert [job["id"] for job in listing["jobs"]][-1] == ada  # newest first
    assert {job["state"] for job in listing["jobs"]} == {"pending"}
    assert [j["id"] for j in project.json("jobs", "ls", "--queue", "emails")["jobs"]] == [mail]
    assert project.json("jobs", "ls", "--name", "greet")["total"] == 2
    assert project.json("jobs", "ls", "--search", mail[-6:])["total"] == 1
    assert project.json("jobs", "ls", "--state", "failed,completed")["total"] == 0
    second = project.json("jobs", "ls", "--per-page", "2", "--page", "2")
    assert (second["total"], second["page"], [j["id"] for j in second["jobs"]]) == (3, 2, [ada])


def test_ls_shows_a_capped_total(project: Project) -> None:
    app = project.app
    app.enqueue_many([app.request("greet", {"name": "x"}) for _ in range(LIST_COUNT_CAP + 1)])

    table = project.invoke("jobs", "ls", "--per-page", "1000")
    listing = project.json("jobs", "ls")

    assert table.exit_code == 0 and "page 1 of 10+ · 10,000+ job(s)" in table.stdout
    assert (listing["total"], listing["total_exact"]) == (10_000, False)


def test_ls_finds_jobs_by_argument_error_kind_and_time(project: Project) -> None:
    ada = project.enqueue("greet", name="ada.lovelace")
    bob = project.enqueue("greet", name="bob")
    failed = project.enqueue("boom")
    run_until_finished(project.app, [ada, bob, failed])

    def found(*args: str) -> list[str]:
        return [job["id"] for job in project.json("jobs", "ls", *args)["jobs"]]

    assert found("--search", "LOVELACE") == [ada]
    assert found("--search", "kaboom") == [failed]  # the last error's message
    assert found("--error-kind", "exception") == [failed]  # an alias of "error"
    assert found("--error-kind", "timeout") == []
    assert found("--name-contains", "OO") == [failed]
    assert set(found("--finished-after", "1h")) == {ada, bob, failed}
    assert found("--created-before", "2000-01-01") == []
    assert found("--worker", "no-such-worker") == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--error-kind", "meltdown"], "unknown error kind 'meltdown'; the kinds are: error"),
        (["--created-after", "yesterday"], "created_after filter 'yesterday' is not a time"),
        (["--finished-after", "1h", "--finished-before", "2h"], "the finished range is empty"),
        (["--search", "a\tb"], "control character"),
        (["--state", "bogus"], "unknown state bogus"),
        (["--per-page", "0"], "--per-page"),
        (["--page", "x"], "--page"),
    ],
)
def test_ls_refuses_bad_options_in_one_line(project: Project, args: list[str], words: str) -> None:
    assert_one_line_error(project.invoke("jobs", "ls", *args), 2, words)


def test_show_prints_arguments_logs_attempts_and_errors(project: Project) -> None:
    ok = project.enqueue("greet", name="ada")
    bad = project.enqueue("boom")
    run_until_finished(project.module.build(), [ok, bad])

    shown = project.invoke("jobs", "show", ok)
    assert shown.exit_code == 0, shown.stderr
    for words in (ok, "greet", "completed", '"name": "ada"', "greeting ada", "hello ada"):
        assert words in shown.stdout
    failed = project.invoke("jobs", "show", bad)
    assert failed.exit_code == 0
    for words in ("failed", "attempts that failed", "ValueError: kaboom", "traceback"):
        assert words in failed.stdout
    record = project.json("jobs", "show", bad)
    assert record["state"] == "failed" and record["errors"][0]["message"] == "ValueError: kaboom"
    assert project.json("jobs", "show", ok)["logs"][0]["message"] == "greeting ada"


def test_show_of_an_unknown_job_is_not_found(project: Project) -> None:
    assert_one_line_error(project.invoke("jobs", "show", "nope"), 1, "no job has id 'nope'")


def test_follow_streams_progress_and_logs_until_the_job_ends(project: Project) -> None:
    job_id = project.enqueue("slow")
    worker_app = project.module.build()

    def release_when_halfway() -> None:
        wait_for(lambda: worker_app.jobs.require(job_id).progress == 50, what="progress 50")
        project.module.GATE.set()

    with running_worker(worker_app):
        releaser = threading.Thread(target=release_when_halfway, daemon=True)
        releaser.start()
        followed = project.invoke("jobs", "show", job_id, "--follow")
        releaser.join(15)
    assert followed.exit_code == 0, followed.stderr
    assert "step 1" in followed.stderr and "step 2" in followed.stderr
    assert "completed" in followed.stderr
    assert "100%" in followed.stdout  # the final record


def test_follow_exits_1_when_the_job_fails_and_on_timeout(project: Project) -> None:
    bad = project.enqueue("boom")
    run_until_finished(project.module.build(), [bad])
    result = project.invoke("jobs", "show", bad, "--follow", "--json")
    assert result.exit_code == 1
    waiting = project.enqueue("greet", name="nobody runs me")
    timed_out = project.invoke("jobs", "show", waiting, "--follow", "--timeout", "0.3")
    assert_one_line_error(timed_out, 1, "still pending after 0.3 s")


def test_enqueue_with_options_and_unique_keys(project: Project) -> None:
    made = project.json(
        "jobs", "enqueue", "send", "--args", '{"to": "ada@example.com"}', "--priority", "5",
        "--unique-key", "welcome-ada",
    )  # fmt: skip
    assert made["created"] is True and made["state"] == "pending"
    job = project.app.jobs.require(made["id"])
    assert (job.args, job.priority, job.queue) == ({"to": "ada@example.com"}, 5, "emails")
    again = project.invoke(
        "jobs",
        "enqueue",
        "send",
        "--args",
        '{"to": "ada@example.com"}',
        "--unique-key",
        "welcome-ada",
    )
    assert again.exit_code == 0 and "nothing new was enqueued" in again.stdout
    later = project.json("jobs", "enqueue", "greet", "--args", '{"name": "x"}', "--delay", "1h")
    assert later["state"] == "scheduled"
    queued = project.json("jobs", "enqueue", "greet", "--args", '{"name": "y"}', "--queue", "q2")
    assert project.app.jobs.require(queued["id"]).queue == "q2"
    plain = project.invoke("jobs", "enqueue", "greet", "--args", '{"name": "z"}')
    assert plain.exit_code == 0 and plain.stdout.startswith("enqueued greet")
    keyed = project.json(
        "jobs", "enqueue", "greet", "--args", '{"name": "ada"}', "--concurrency-key", "g:{name}"
    )
    assert project.app.jobs.require(keyed["id"]).concurrency_key == "g:ada"
    limited = project.json(
        "jobs", "enqueue", "greet", "--args", '{"name": "ada"}', "--concurrency-key", "g:{name}",
        "--key-concurrency", "2", "--rate-limit", "5/m", "--rate-key", "r:{name}",
    )  # fmt: skip
    stored = project.app.jobs.require(limited["id"])
    assert (stored.key_concurrency, stored.rate_limit, stored.rate_key) == (2, "5/m", "r:ada")
    bad = project.invoke("jobs", "enqueue", "greet", "--args", '{"name": "b"}', "--rate-limit", "5")
    assert bad.exit_code == 2 and "rate_limit must be a rate like" in bad.output


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["nope"], 1, "no job named 'nope'"),
        (["greet", "--args", "{not json"], 2, "not valid JSON"),
        (["greet", "--args", "[1, 2]"], 2, "must be a JSON object"),
        (["greet", "--args", "{}", "--delay", "soon"], 2, "is not a duration"),
        (["greet", "--args", "{}", "--max-attempts", "0"], 2, "--max-attempts"),
        # the one validator, as for the Python API and the REST API
        (["greet", "--args", "{}", "--queue", "a/b"], 2, "queue 'a/b' is not a valid queue name"),
        (["greet", "--args", "{}", "--priority", "10000000"], 2, "priority must be from"),
        (["greet", "--args", '{"name": 99999999999999999999}'], 2, "beyond 64-bit integers"),
        (["greet", "--args", '{"name": "a\\u0000"}'], 2, "NUL character"),
        (["greet", "--args", "{}", "--unique-key", "k\x00"], 2, "NUL character"),
        (
            ["greet", "--args", '{"name": "x"}', "--concurrency-key", "k:{no}"],
            2,
            "needs the argument",
        ),
    ],
)
def test_enqueue_refuses_bad_input(
    project: Project, args: list[str], code: int, words: str
) -> None:
    assert_one_line_error(project.invoke("jobs", "enqueue", *args), code, words)


def test_cancel(project: Project) -> None:
    job_id = project.enqueue("greet", name="ada")
    done = project.invoke("jobs", "cancel", job_id)
    assert done.exit_code == 0 and "cancelled" in done.stdout
    assert project.app.jobs.require(job_id).state == "cancelled"
    assert_one_line_error(project.invoke("jobs", "cancel", job_id), 1, "already cancelled")
    assert_one_line_error(project.invoke("jobs", "cancel", "nope"), 1, "no job has id")


def test_cancel_of_a_running_job_asks_it_to_stop(project: Project) -> None:
    job_id = project.enqueue("slow")
    worker_app = project.module.build()
    with running_worker(worker_app):
        wait_for(lambda: worker_app.jobs.require(job_id).state == "running", what="running")
        result = project.json("jobs", "cancel", job_id)
        assert result["cancel_requested"] is True
        wait_for(lambda: worker_app.jobs.require(job_id).is_finished, what="the job to end")
        project.module.GATE.set()  # lets the abandoned thread of the sync job return
    assert project.app.jobs.require(job_id).state == "cancelled"


def test_retry_one_and_all_failed_with_refusals(project: Project) -> None:
    failed = [project.enqueue("boom") for _ in range(3)]
    ok = project.enqueue("greet", name="ada")
    run_until_finished(project.module.build(), [*failed, ok])
    one = project.invoke("jobs", "retry", failed[0])
    assert one.exit_code == 0 and "pending" in one.stdout
    assert_one_line_error(
        project.invoke("jobs", "retry", ok), 1, "only failed or cancelled jobs can be retried"
    )
    bulk = project.json("jobs", "retry", "--failed")
    assert sorted(bulk["retried"]) == sorted(failed[1:]) and bulk["refused"] == {}
    assert {project.app.jobs.require(i).state for i in failed} == {"pending"}
    none_left = project.invoke("jobs", "retry", "--failed", "--name", "boom")
    assert none_left.exit_code == 0 and "retried 0 failed job(s)" in none_left.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "give either a JOB_ID or --failed"),
        (["abc", "--failed"], "give either a JOB_ID or --failed"),
        (["abc", "--queue", "q"], "only go with --failed"),
    ],
)
def test_retry_usage_errors(project: Project, args: list[str], words: str) -> None:
    assert_one_line_error(project.invoke("jobs", "retry", *args), 2, words)


def test_rm_deletes_a_finished_job(project: Project) -> None:
    job_id = project.enqueue("greet", name="ada")
    assert project.json("jobs", "rm", job_id) == {"deleted": job_id}
    assert project.app.jobs.get(job_id) is None
    assert_one_line_error(project.invoke("jobs", "rm", job_id), 1, "no job has id")


def test_purge_deletes_jobs_finished_before_the_cutoff(project: Project) -> None:
    ok = [project.enqueue("greet", name=str(i)) for i in range(5)]
    bad = project.enqueue("boom")
    waiting = project.enqueue("greet", name="later")
    project.app.jobs.pause_queue("default")
    project.app.jobs.resume_queue("default")
    run_until_finished(project.module.build(), [*ok, bad, waiting])
    project.enqueue("greet", name="still waiting")
    assert project.json("jobs", "purge", "--older-than", "7d")["deleted"] == 0
    project.module.OFFSET[0] = timedelta(days=8)  # the CLI's app now lives 8 days later
    kept_failed = project.json("jobs", "purge", "--older-than", "7d", "--keep-failed", "--yes")
    assert kept_failed["deleted"] == 6
    assert project.app.jobs.get(bad) is not None
    text = project.invoke("jobs", "purge", "--older-than", "1w", "-y")
    assert text.exit_code == 0 and "deleted 1 job(s)" in text.stdout
    assert project.json("jobs", "ls")["total"] == 1  # the waiting one is never purged


@pytest.mark.parametrize(("args", "words"), [([], "--older-than"), (["--older-than", "7x"], "7x")])
def test_purge_refuses_bad_durations(project: Project, args: list[str], words: str) -> None:
    assert_one_line_error(project.invoke("jobs", "purge", *args), 2, words)


def finished_jobs(project: Project) -> list[str]:
    """Two completed jobs and a failed one, run by a worker; their ids."""
    ids = [project.enqueue("greet", name="a"), project.enqueue("greet", name="b")]
    ids.append(project.enqueue("boom"))
    run_until_finished(project.module.build(), ids)
    return ids


def test_purge_dry_run_prints_what_would_go_and_deletes_nothing(project: Project) -> None:
    ids = finished_jobs(project)
    project.enqueue("greet", name="waiting")
    dry = project.json("jobs", "purge", "--older-than", "0s", "--dry-run")
    assert dry["dry_run"] is True and dry["would_delete"] == 3
    assert dry["by_state"] == {"completed": 2, "failed": 1}
    kept = project.json("jobs", "purge", "--older-than", "0s", "--keep-failed", "--dry-run")
    assert kept["by_state"] == {"completed": 2}
    text = project.invoke("jobs", "purge", "--older-than", "0s", "--dry-run")
    assert text.exit_code == 0
    assert "would delete 3 job(s)" in text.stdout and "(2 completed, 1 failed)" in text.stdout
    assert all(project.app.jobs.get(job_id) for job_id in ids)


def test_purge_without_a_terminal_needs_yes(project: Project) -> None:
    ids = finished_jobs(project)
    refused = project.invoke("jobs", "purge", "--older-than", "0s")
    assert_one_line_error(refused, 2, "this would delete 3 job(s)")
    assert "--yes" in refused.stderr
    assert all(project.app.jobs.get(job_id) for job_id in ids)
    assert project.json("jobs", "purge", "--older-than", "0s", "--yes")["deleted"] == 3
    nothing = project.invoke("jobs", "purge", "--older-than", "0s")  # nothing to ask about
    assert nothing.exit_code == 0 and "deleted 0 job(s)" in nothing.stdout


def purge_on_a_terminal(project: Project, answer: bytes) -> tuple[int, str]:
    """Run `conveyor jobs purge --older-than 0s` with a pseudo-terminal as stdin and stderr,
    answer its question with `answer`; the exit code and what the terminal showed."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "--app", project.ref,
         "jobs", "purge", "--older-than", "0s"],
        stdin=child, stdout=subprocess.DEVNULL, stderr=child, cwd=project.path,
        env={**os.environ, "PYTHONPATH": str(project.path)},
    )  # fmt: skip
    os.close(child)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while b"[y/N]" not in shown:
            assert time.monotonic() < deadline, f"no question asked: {shown!r}"
            if select.select([main], [], [], 0.5)[0]:
                shown += os.read(main, 4096)
        os.write(main, answer + b"\n")
        code = proc.wait(timeout=60)
        while select.select([main], [], [], 0.1)[0]:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main)
    return code, shown.decode(errors="replace")


def test_purge_on_a_terminal_asks_with_the_count(project: Project) -> None:
    ids = finished_jobs(project)
    code, shown = purge_on_a_terminal(project, b"n")
    assert code == 1 and "Delete 3 job(s) that finished before" in shown
    assert "(2 completed, 1 failed)?" in shown and "nothing deleted" in shown
    assert all(project.app.jobs.get(job_id) for job_id in ids)
    code, shown = purge_on_a_terminal(project, b"y")
    assert code == 0, shown
    assert not any(project.app.jobs.get(job_id) for job_id in ids)
