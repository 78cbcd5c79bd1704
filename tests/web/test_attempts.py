"""A job's page groups its attempts, newest first, each with its error and its own log lines."""

from __future__ import annotations

from fastapi.testclient import TestClient

import conveyor
from conveyor.web.attempts import attempt_groups

from .test_workflow_views import sign_in


def flaky_app(url: str = "memory://") -> conveyor.App:
    app = conveyor.App(url)

    @app.job(max_attempts=3, backoff=conveyor.Backoff(base=0, jitter=0))
    def flaky(ctx: conveyor.Context) -> str:
        ctx.log(f"trying, attempt {ctx.attempt}")
        if ctx.attempt < 3:
            raise RuntimeError(f"no luck on attempt {ctx.attempt}")
        return "done"

    return app


def test_attempts_are_grouped_newest_first_with_their_lines_and_errors() -> None:
    app = flaky_app()
    handle = app.enqueue("flaky")
    app.testing.drain()

    groups = attempt_groups(handle.refresh())

    assert [(g.number, g.outcome) for g in groups] == [
        (3, "completed"),
        (2, "retried"),
        (1, "retried"),
    ]
    assert [[line.message for line in g.lines] for g in groups] == [
        ["trying, attempt 3"],
        ["trying, attempt 2"],
        ["trying, attempt 1"],
    ]
    assert groups[0].errors == [] and "attempt 2" in groups[1].errors[0].message
    assert groups[0].current


def test_the_job_page_shows_each_attempt(app: conveyor.App, client: TestClient) -> None:
    @app.job(name="flaky", max_attempts=2, backoff=conveyor.Backoff(base=0, jitter=0))
    def flaky(ctx: conveyor.Context) -> None:
        ctx.log(f"line of attempt {ctx.attempt}")
        raise RuntimeError(f"failed attempt {ctx.attempt}")

    handle = app.enqueue("flaky")
    app.testing.drain()
    sign_in(client)

    html = client.get(f"/jobs/{handle.id}").text

    first, second = html.index('data-attempt-group="2"'), html.index('data-attempt-group="1"')
    assert first < second  # newest first
    group_two = html[first:second]
    assert "line of attempt 2" in group_two and "failed attempt 2" in group_two
    assert "line of attempt 1" in html[second:] and "line of attempt 1" not in group_two
