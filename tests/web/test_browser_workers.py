"""The workers page in Chromium: Quiet, Resume and Stop a live worker, its mode shown live.

Uses the launch and sign-in of test_browser.py, with a live server (and worker) of its own:
the worker it stops is not the other modules' worker.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor import JobState
from conveyor.web import create_app

from .support import (
    MANAGE_TOKEN,
    TOKENS,
    LiveServer,
    build_app,
    start_live_server,
    wait_for,
)
from .test_browser import (  # skips this module too when there is no Chromium
    browser,
    open_page,
    shots,
    state_of,
    sync_api,
)

__all__ = ["browser", "shots"]

expect = sync_api.expect


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = build_app()
    server = start_live_server(app, create_app(app, tokens=TOKENS, secret="browser-workers"))
    yield server
    server.close()
    app.close()


def test_quiet_resume_and_stop_a_worker_from_its_row(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    [worker] = live.app.jobs.workers()
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/workers")
    row = page.locator(f"tr[data-worker='{worker.id}']")
    expect(row.locator("[data-mode]")).to_have_attribute("data-mode", "running")
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    row.locator("[data-action=quiet]").click()
    page.wait_for_selector("[role=status]:has-text('asked to go quiet')")
    assert asked and asked[0].startswith(f"Quiet worker {worker.id}?")
    # the worker follows at its heartbeat; the page's live refresh shows it without a reload
    expect(row.locator("[data-mode]")).to_have_attribute("data-mode", "quiet")
    held = live.app.enqueue("hello")
    page.screenshot(path=str(shots / "workers-quiet.png"), full_page=True)
    assert state_of(live.app, held.id) is JobState.PENDING

    page.evaluate("window.sameDocument = true")  # gone if the page reloaded
    live.app.jobs.resume_worker(worker.id)  # from elsewhere (the CLI, the API)
    expect(row.locator("[data-mode]")).to_have_attribute("data-mode", "running")
    assert page.evaluate("window.sameDocument") is True
    wait_for(lambda: state_of(live.app, held.id) is JobState.COMPLETED, what="the held job")

    row.locator("[data-action=stop]").click()
    page.wait_for_selector("[role=status]:has-text('asked to stop')")
    assert asked[-1].startswith(f"Stop worker {worker.id}?")
    expect(page.locator(f"tr[data-worker='{worker.id}']")).to_have_count(0)  # it exited
    expect(page.locator("td:has-text('No live workers.')")).to_have_count(1)
    page.screenshot(path=str(shots / "workers-stopped.png"), full_page=True)
    page.context.close()
