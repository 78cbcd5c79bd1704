"""The jobs list's selection and bulk actions, times and durations, the theme: in Chromium.

Uses the launch and sign-in of test_browser.py, with a live server of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import conveyor
from conveyor import JobState
from conveyor.web import create_app

from .support import (
    MANAGE_TOKEN,
    TOKENS,
    LiveServer,
    build_app,
    start_live_server,
    sync_recurring,
    wait_for,
)
from .test_browser import (  # skips this module too when there is no Chromium
    TIMEOUT_MS,
    Page,
    browser,
    open_page,
    polls_done,
    refresh_now,
    shots,
    state_of,
    sync_api,
)

__all__ = ["browser", "shots"]

expect = sync_api.expect


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = build_app()
    sync_recurring(app)
    server = start_live_server(app, create_app(app, tokens=TOKENS, secret="browser-select"))
    yield server
    server.close()
    app.close()


def scheduled(app: conveyor.App, count: int, name: str = "evil") -> list[str]:
    """`count` jobs due in an hour (newest last)."""
    return [app.enqueue(name, delay=3600).id for _ in range(count)]


def clear(app: conveyor.App, name: str = "evil") -> None:
    """Delete every waiting `name` job an earlier test left."""
    for job in app.jobs.list(name=name, state=["scheduled", "pending"], per_page=1000).jobs:
        app.jobs.delete(job.id)


def box(page: Page, job_id: str) -> Any:
    return page.locator(f"input[data-select][value='{job_id}']")


def test_ticked_rows_survive_a_live_refresh_and_run_now(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    clear(live.app)
    first, second, third = scheduled(live.app, 3)
    page = open_page(browser, live, MANAGE_TOKEN)
    page.set_viewport_size({"width": 1280, "height": 300})  # the list scrolls
    page.clock.install()
    page.goto(live.url + "/jobs?name=evil&state=scheduled")
    counter = page.locator("[data-bulk-count]")
    expect(counter).to_have_text("No job selected")
    run_now = page.locator("[data-bulk-action=run-now]")
    expect(run_now).to_be_disabled()
    box(page, first).check()
    box(page, third).check()
    expect(counter).to_have_text("2 jobs selected")
    expect(run_now).to_have_text("Run now (2)")
    expect(page.locator("[data-bulk-action=retry]")).to_have_text("Retry (0)")
    expect(page.locator("[data-bulk-action=retry]")).to_be_disabled()
    expect(page.locator("input[data-select-page]")).to_have_js_property("indeterminate", True)
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    scrolled = page.evaluate("window.scrollY")
    assert scrolled > 0
    # a new job arrives: the list refreshes in place, the ticks and the focus stay
    assert page.evaluate("document.activeElement.value") == third
    fourth = scheduled(live.app, 1)[0]
    refresh_now(page)
    expect(box(page, fourth)).to_have_count(1)
    expect(box(page, first)).to_be_checked()
    expect(box(page, third)).to_be_checked()
    expect(box(page, second)).not_to_be_checked()
    expect(box(page, fourth)).not_to_be_checked()
    assert page.evaluate("document.activeElement.value") == third
    assert page.evaluate("window.scrollY") == scrolled
    expect(counter).to_have_text("2 jobs selected")
    page.screenshot(path=str(shots / "jobs-selected.png"), full_page=True)
    run_now.click()  # not destructive: no question
    expect(page.locator("[role=status]")).to_have_text("2 of 2 selected jobs made due now.")
    wait_for(
        lambda: all(state_of(live.app, i) is JobState.COMPLETED for i in (first, third)),
        what="the jobs run now to complete",
    )
    assert state_of(live.app, second) is state_of(live.app, fourth) is JobState.SCHEDULED
    page.context.close()


def test_select_all_matching_then_delete_asks_with_the_count(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    clear(live.app)
    ids = scheduled(live.app, 57)  # more than a page of 50
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/jobs?name=evil&state=scheduled")
    page.locator("input[data-select-page]").check()
    counter = page.locator("[data-bulk-count]")
    expect(counter).to_have_text("All 50 jobs on this page selected")
    offer = page.locator("[data-select-matching]")
    expect(offer).to_have_text("Select all 57 jobs matching")
    offer.click()
    expect(counter).to_have_text("Selected: all 57 jobs matching (at most 10,000 a click)")
    expect(offer).to_be_hidden()
    page.screenshot(path=str(shots / "jobs-select-all-matching.png"), full_page=True)
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.locator("[data-bulk-action=delete]").click()
    wait_for(lambda: asked, what="the question")
    assert asked[0].startswith("Delete all 57 jobs matching that are not running?")
    assert all(live.app.jobs.get(i) is not None for i in ids)
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.locator("[data-bulk-action=delete]").click()
    expect(page.locator("[role=status]")).to_have_text("57 of 57 jobs deleted.")
    assert all(live.app.jobs.get(i) is None for i in ids)
    expect(page.locator("table.jobs tbody")).to_contain_text("No jobs match.")
    page.context.close()


def test_shift_click_ticks_a_range(browser: Any, live: LiveServer) -> None:
    clear(live.app)
    ids = scheduled(live.app, 6)[::-1]  # as listed: newest first
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/jobs?name=evil&state=scheduled")
    box(page, ids[1]).click()
    box(page, ids[4]).click(modifiers=["Shift"])
    expect(page.locator("[data-bulk-count]")).to_have_text("4 jobs selected")
    ticked = [i for i in ids if box(page, i).is_checked()]
    assert ticked == ids[1:5]
    box(page, ids[2]).click(modifiers=["Shift"])  # unticks 2..4 (from the last click)
    expect(page.locator("[data-bulk-count]")).to_have_text("1 job selected")
    assert [i for i in ids if box(page, i).is_checked()] == [ids[1]]
    page.context.close()


def test_cancelling_ticked_jobs_asks_how_many_first(browser: Any, live: LiveServer) -> None:
    clear(live.app)
    done = live.app.enqueue("hello")
    done.wait(10)
    waiting = scheduled(live.app, 2)
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/jobs")
    for job_id in (done.id, *waiting):
        box(page, job_id).check()
    expect(page.locator("[data-bulk-action=cancel]")).to_have_text("Cancel (2)")
    asked: list[str] = []
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.locator("[data-bulk-action=cancel]").click()
    wait_for(lambda: asked, what="the question")
    assert asked[0] == (
        "Cancel 2 jobs? (1 of the 3 selected was already finished: left as they are.)"
    )
    assert all(state_of(live.app, i) is JobState.SCHEDULED for i in waiting)
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("[data-bulk-action=cancel]").click()
    expect(page.locator("[role=status]")).to_have_text(
        "2 of 3 selected jobs cancelled; 1 was already finished."
    )
    assert all(state_of(live.app, i) is JobState.CANCELLED for i in waiting)
    page.context.close()


def test_times_are_relative_with_the_local_time_on_hover(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    job = live.app.enqueue("hello")
    job.wait(10)
    stored = live.app.jobs.require(job.id)
    assert stored.started_at is not None
    context = browser.new_context(
        timezone_id="Asia/Kolkata", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(live.url + "/")
    page.fill("input[name=token]", MANAGE_TOKEN)
    page.click("button:has-text('Sign in')")
    page.goto(f"{live.url}/jobs/{job.id}")
    started = page.locator("[data-timeline] time[data-when=Started]")
    expect(started).to_have_text(re.compile(r"^(just now|\d+ s ago)$"))
    title = started.get_attribute("title") or ""
    local = (stored.started_at + timedelta(hours=5, minutes=30)).strftime("%H:%M:%S")
    assert title.startswith("Started: ") and local in title, title
    # (Chromium's ICU may name the zone by its older alias)
    assert re.search(r"\(your time zone, Asia/(Kolkata|Calcutta)\)", title) and "GMT+5:30" in title
    assert stored.started_at.strftime("%H:%M:%S") + " UTC" in title
    expect(page.locator("[data-timeline]")).to_contain_text("waited")
    expect(page.locator("[data-timeline]")).to_contain_text("ran")
    # a job that never reported progress shows no bar
    expect(page.locator("[data-progress-card]")).to_be_hidden()
    page.screenshot(path=str(shots / "job-timeline.png"), full_page=True)
    context.close()


def test_a_running_jobs_clock_ticks_on_the_list(browser: Any, live: LiveServer) -> None:
    job = live.app.enqueue("slow", {"steps": 400, "pause": 0.05})
    wait_for(lambda: state_of(live.app, job.id) is JobState.RUNNING, what="the job to run")
    page = open_page(browser, live, MANAGE_TOKEN)
    try:
        page.goto(f"{live.url}/jobs?state=running")
        clock = page.locator(f"tr[data-job='{job.id}'] [data-since-label=running]")
        expect(clock).to_have_text(re.compile(r"^running \d+(\.\d)? s$"))
        first = clock.inner_text()
        expect(clock).not_to_have_text(first)  # it counts on, once a second
        row = page.locator(f"tr[data-job='{job.id}'] [data-timing]")
        expect(row).to_contain_text("waited")
    finally:
        live.app.jobs.cancel(job.id)
        page.context.close()


def test_the_theme_toggle_is_remembered(browser: Any, live: LiveServer, shots: Path) -> None:
    page = open_page(browser, live, MANAGE_TOKEN)  # the system is light
    toggle = page.locator("[data-theme-toggle]")
    expect(toggle).to_have_text("Dark theme")
    background = "getComputedStyle(document.body).backgroundColor"
    light = page.evaluate(background)
    toggle.click()
    expect(toggle).to_have_text("Light theme")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    dark = page.evaluate(background)
    assert dark != light
    page.goto(live.url + "/queues")  # kept, and applied before the page's script ran
    assert page.evaluate(background) == dark
    expect(page.locator("[data-theme-toggle]")).to_have_text("Light theme")
    page.screenshot(path=str(shots / "queues-dark-by-choice.png"), full_page=True)
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert icon == "/static/favicon.svg"
    answer = page.request.get(live.url + icon)
    assert answer.status == 200 and answer.headers["content-type"].startswith("image/svg+xml")
    page.locator("[data-theme-toggle]").click()
    assert page.evaluate(background) == light
    page.context.close()


def test_no_refresh_while_nothing_changed(browser: Any, live: LiveServer) -> None:
    """The page's own rewriting of its times does not count as a change to swap in."""
    page = open_page(browser, live, MANAGE_TOKEN)
    page.clock.install()
    page.goto(live.url + "/recurring")
    page.evaluate(
        """() => {
            window.swaps = 0;
            const region = document.querySelector("[data-live-region=recurring]");
            new MutationObserver(() => { window.swaps += 1; }).observe(region, {childList: true});
        }"""
    )
    refresh_now(page)
    refresh_now(page)
    assert polls_done(page) >= 2
    assert page.evaluate("window.swaps") == 0
    page.context.close()
