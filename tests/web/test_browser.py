"""The dashboard in a real browser: Playwright driving Debian's Chromium against a live server.

Screenshots go to $CONVEYOR_SCREENSHOTS, or a fresh temporary folder (printed in the report).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists() and os.environ.get("CONVEYOR_REQUIRE_BROWSER"):
    pytest.fail("CI must run the browser tests, but /usr/bin/chromium is missing", pytrace=False)
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api")

import conveyor  # noqa: E402
from conveyor import JobState  # noqa: E402
from conveyor.web import create_app  # noqa: E402

from .support import (  # noqa: E402
    MANAGE_TOKEN,
    TOKENS,
    VIEW_TOKEN,
    LiveServer,
    build_app,
    start_live_server,
    sync_recurring,
    wait_for,
)

Page = Any  # playwright.sync_api.Page (kept loose: playwright is an optional test tool)
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def shots() -> Path:
    folder = os.environ.get("CONVEYOR_SCREENSHOTS")
    path = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="conveyor-web-shots-"))
    path.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {path}")
    return path


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = build_app()
    sync_recurring(app)
    server = start_live_server(app, create_app(app, tokens=TOKENS, secret="browser-test"))
    yield server
    server.close()
    app.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield chromium
        chromium.close()


def open_page(
    browser: Any, live: LiveServer, token: str, *, width: int = 1280, dark: bool = False
) -> Page:
    """A new browser context signed in with `token` through the login form."""
    context = browser.new_context(
        viewport={"width": width, "height": 900}, color_scheme="dark" if dark else "light"
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(live.url + "/")
    page.fill("input[name=token]", token)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Overview')")
    return page


def progress_of(page: Page) -> float:
    value: float = page.locator("[data-live-job] progress[data-progress]").evaluate("e => e.value")
    return value


def state_of(app: conveyor.App, job_id: str) -> JobState:
    return app.jobs.require(job_id).state


def test_overview_shows_counts_charts_queues_and_workers(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    live.app.enqueue("hello").wait(10)
    live.app.enqueue("boom").wait(10)
    page = open_page(browser, live, MANAGE_TOKEN)
    bar = page.locator("[data-chart=completed] rect.col")
    wait_for(lambda: bar.count() > 0, what="a chart bar")
    assert page.locator("[data-chart=failed] rect.col").count() > 0
    assert int(page.locator("[data-count=completed]").inner_text()) >= 1
    assert page.locator("text=No live workers").count() == 0
    page.screenshot(path=str(shots / "overview-1280.png"), full_page=True)
    # the counts stay current without a reload
    before = int(page.locator("[data-count=completed]").inner_text())
    live.app.enqueue("hello").wait(10)
    counter = page.locator("[data-count=completed]")
    wait_for(lambda: int(counter.inner_text()) > before, what="the count to refresh")
    page.goto(f"{live.url}/jobs")
    assert page.locator("table.jobs tbody tr").count() >= 3
    page.screenshot(path=str(shots / "jobs-1280.png"), full_page=True)
    phone = open_page(browser, live, MANAGE_TOKEN, width=390, dark=True)
    phone.screenshot(path=str(shots / "overview-phone-dark.png"), full_page=True)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the overview scrolls sideways at phone width"
    phone.goto(f"{live.url}/jobs")
    phone.screenshot(path=str(shots / "jobs-phone-dark.png"), full_page=True)
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, "the jobs page scrolls sideways at phone width (the table may)"


def test_a_running_jobs_progress_bar_advances(browser: Any, live: LiveServer, shots: Path) -> None:
    job = live.app.enqueue("slow", {"steps": 60, "pause": 0.15})
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs/{job.id}")
    wait_for(lambda: progress_of(page) > 0, what="progress above 0")
    first = progress_of(page)
    wait_for(lambda: progress_of(page) > first, what="progress to advance without reload")
    assert "reached step" in page.locator("[data-logs]").inner_text()
    page.screenshot(path=str(shots / "job-running.png"), full_page=True)
    live.app.jobs.cancel(job.id)


def test_cancel_a_running_job(browser: Any, live: LiveServer) -> None:
    job = live.app.enqueue("slow", {"steps": 1000, "pause": 0.05})
    wait_for(lambda: state_of(live.app, job.id) is JobState.RUNNING, what="the job to run")
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs/{job.id}")
    page.click("[data-action=cancel]")
    wait_for(lambda: state_of(live.app, job.id) is JobState.CANCELLED, what="cancelled")
    page.wait_for_selector("h1 [data-state-badge]:has-text('cancelled')")
    # the page shows the job as it is now: no "Cancellation requested" once it has stopped
    # (the worker stops it before or after the page comes back: either way), nor ever again
    assert page.locator("[data-flash]").count() == 0
    assert "Cancellation requested" not in page.locator("main").inner_text()
    assert page.url == f"{live.url}/jobs/{job.id}"
    page.reload()
    assert page.locator("[data-flash]").count() == 0
    page.context.close()


def test_a_link_cannot_put_a_notice_on_a_page(browser: Any, live: LiveServer) -> None:
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs?notice=Your+token+expired%3A+sign+in+at+evil.example")
    page.wait_for_selector("h1:has-text('Jobs')")
    assert page.locator(".notice, [role=status], [data-flash]").count() == 0
    assert "evil.example" not in page.locator("body").inner_text()
    page.context.close()


def test_retry_a_failed_job(browser: Any, live: LiveServer, shots: Path) -> None:
    job = live.app.enqueue("boom")
    wait_for(lambda: state_of(live.app, job.id) is JobState.FAILED, what="the job to fail")
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs/{job.id}")
    assert "Traceback" in page.locator(".trace").first.inner_text()
    page.screenshot(path=str(shots / "job-failed.png"), full_page=True)
    job_page = f"{live.url}/jobs/{job.id}"
    with page.expect_response(lambda r: r.url == job_page and r.request.method == "GET") as back:
        page.click("[data-action=retry]")
    # the page it returns to says so (then, once the job moved on, reloads to its new state)
    assert 'role="status" data-flash>Job queued to run again.' in back.value.text()
    wait_for(lambda: len(live.app.jobs.require(job.id).errors) == 2, what="the second attempt")


def test_toggle_a_recurring_job(browser: Any, live: LiveServer, shots: Path) -> None:
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/recurring")
    row = page.locator("tr[data-recurring='nightly-report']")
    assert row.locator("[data-enabled]").get_attribute("data-enabled") == "yes"
    row.locator("[data-action=disable]").click()
    page.wait_for_selector("[role=status]:has-text('nightly-report disabled')")
    assert row.locator("[data-enabled]").get_attribute("data-enabled") == "no"
    assert not live.app.recurring_jobs.get("nightly-report").enabled
    page.screenshot(path=str(shots / "recurring.png"), full_page=True)
    row.locator("[data-action=enable]").click()
    page.wait_for_selector("[role=status]:has-text('nightly-report enabled')")


def test_pause_a_queue(browser: Any, live: LiveServer, shots: Path) -> None:
    live.app.enqueue("hello").wait(10)  # the default queue exists
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/queues")
    row = page.locator("tr[data-queue='default']")
    row.locator("[data-action=pause]").click()
    page.wait_for_selector("[role=status]:has-text('Queue default paused')")
    assert row.locator("[data-paused]").get_attribute("data-paused") == "yes"
    held = live.app.enqueue("hello")
    page.screenshot(path=str(shots / "queues-paused.png"), full_page=True)
    assert state_of(live.app, held.id) is JobState.PENDING
    row.locator("[data-action=resume]").click()
    page.wait_for_selector("[role=status]:has-text('Queue default resumed')")
    wait_for(lambda: state_of(live.app, held.id) is JobState.COMPLETED, what="the held job")


def test_a_view_only_user_has_no_buttons_and_the_api_refuses_them(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    failed = live.app.enqueue("boom")
    wait_for(lambda: state_of(live.app, failed.id) is JobState.FAILED, what="the job to fail")
    page = open_page(browser, live, VIEW_TOKEN)
    assert "view only" in page.locator("header").inner_text()
    for path in ["/", "/jobs", f"/jobs/{failed.id}", "/recurring", "/queues", "/workers"]:
        page.goto(live.url + path)
        assert page.locator("[data-action]").count() == 0, path
        assert page.locator("form[method=post] button.btn").count() == 0, path
        if path == f"/jobs/{failed.id}":
            page.screenshot(path=str(shots / "job-view-only.png"), full_page=True)
    answer = page.evaluate(
        """async () => {
            const r = await fetch('/api/queues/default/pause', {
                method: 'POST', headers: {'X-CSRF-Token': document.body.dataset.csrf}});
            return [r.status, (await r.json()).error];
        }"""
    )
    assert answer[0] == 403 and "manage" in answer[1]
    assert not any(q.paused for q in live.app.jobs.queues())


def test_signing_in_after_a_wrong_token(browser: Any, live: LiveServer, shots: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(live.url + "/queues")
    page.fill("input[name=token]", "not-a-token")
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("[role=alert]:has-text('That token is not valid')")
    assert page.url == live.url + "/login"
    page.screenshot(path=str(shots / "login-wrong-token.png"), full_page=True)
    page.fill("input[name=token]", MANAGE_TOKEN)  # the next try goes to the page asked for
    page.click("button:has-text('Sign in')")
    page.wait_for_selector("h1:has-text('Queues')")
    assert page.url == live.url + "/queues"
    context.close()
    # the address bar read /login: going there shows the form (it answered a JSON 405)
    context = browser.new_context()
    page = context.new_page()
    answer = page.goto(live.url + "/login")
    assert answer is not None and answer.status == 200
    assert page.locator("input[name=token]").count() == 1
    context.close()


def test_page_errors_are_dashboard_pages_with_a_way_back(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    page = open_page(browser, live, VIEW_TOKEN)
    answer = page.goto(live.url + "/jobs/not-a-job")
    assert answer is not None and answer.status == 404
    assert page.title() == "Job not found · Conveyor"
    assert "not a job id" in page.locator("[role=alert]").inner_text()
    page.screenshot(path=str(shots / "error-bad-job-id.png"), full_page=True)
    page.click("[data-back]")
    page.wait_for_selector("h1:has-text('Jobs')")
    answer = page.goto(live.url + "/no/such/page")
    assert answer is not None and answer.status == 404
    assert page.title() == "Page not found · Conveyor"
    assert page.locator("nav a").count() == 6  # the dashboard's own frame, not raw JSON
    page.click("[data-back]")
    page.wait_for_selector("h1:has-text('Overview')")
    page.context.close()


def test_cancel_all_without_a_filter_asks_with_the_count(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    def active() -> int:
        return live.app.jobs.list(state=["scheduled", "pending", "running"], per_page=1).total

    wait_for(lambda: active() == 0, what="earlier tests' jobs to end")
    held = [live.app.enqueue("hello", delay=3600).id for _ in range(3)]  # active for an hour
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/jobs")
    asked: list[str] = []

    def answer(dialog: Any, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("[data-action='cancel all active']")
    wait_for(lambda: asked, what="the question")
    assert asked[0].startswith("No filter is set: cancel all 3 active jobs")
    assert all(state_of(live.app, job_id) is JobState.SCHEDULED for job_id in held)
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("[data-action='cancel all active']")
    page.wait_for_selector("[role=status]:has-text('3 of 3 jobs cancelled')")
    assert all(state_of(live.app, job_id) is JobState.CANCELLED for job_id in held)
    page.screenshot(path=str(shots / "jobs-cancelled-all.png"), full_page=True)
    page.context.close()


def polls_done(page: Page) -> int:
    """How many live refreshes of this page have completed (app.js counts them)."""
    done: str | None = page.evaluate("document.body.dataset.liveDone || null")
    return int(done) if done else 0


def refresh_now(page: Page) -> None:
    """Run the page's next live refresh (its timers run on Playwright's clock) and wait for it."""
    before = polls_done(page)
    page.clock.run_for(2100)
    wait_for(lambda: polls_done(page) > before, what="a live refresh")


def test_list_pages_refresh_in_place(browser: Any, live: LiveServer, shots: Path) -> None:
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(live.url + "/jobs")
    page.evaluate("window.sameDocument = true")  # gone if the page reloaded
    later = live.app.enqueue("hello", {"who": "later"}, delay=3600)
    page.wait_for_selector(f"a[href='/jobs/{later.id}']")
    page.goto(live.url + "/queues")
    page.evaluate("window.sameDocument = true")
    row = page.locator("tr[data-queue='default']")
    assert row.locator("[data-paused]").get_attribute("data-paused") == "no"
    live.app.jobs.pause_queue("default")
    try:
        page.wait_for_selector("tr[data-queue='default'] [data-paused='yes']")
        page.screenshot(path=str(shots / "queues-live.png"), full_page=True)
    finally:
        live.app.jobs.resume_queue("default")
    page.wait_for_selector("tr[data-queue='default'] [data-paused='no']")
    page.goto(live.url + "/recurring")
    page.evaluate("window.sameDocument = true")
    live.app.recurring_jobs.toggle("nightly-report")
    try:
        page.wait_for_selector("tr[data-recurring='nightly-report'] [data-enabled='no']")
    finally:
        live.app.recurring_jobs.toggle("nightly-report")
    assert page.evaluate("window.sameDocument") is True
    live.app.jobs.cancel(later.id)
    page.context.close()


def test_live_updates_pause_and_keep_a_selection(browser: Any, live: LiveServer) -> None:
    page = open_page(browser, live, MANAGE_TOKEN)
    page.clock.install()
    page.goto(live.url + "/queues")
    toggle = page.locator("[data-live-toggle]")
    assert toggle.get_attribute("aria-pressed") == "false"
    badge = page.locator("tr[data-queue='default'] [data-paused]")
    try:
        # a text selection inside the table holds its refresh back, and only that
        page.evaluate(
            """() => {
                const cell = document.querySelector("tr[data-queue='default'] td");
                const range = document.createRange();
                range.selectNodeContents(cell);
                window.getSelection().removeAllRanges();
                window.getSelection().addRange(range);
            }"""
        )
        live.app.jobs.pause_queue("default")
        refresh_now(page)
        assert badge.get_attribute("data-paused") == "no"
        page.evaluate("window.getSelection().removeAllRanges()")
        refresh_now(page)
        assert badge.get_attribute("data-paused") == "yes"
        # paused: no request at all, on this page and the next
        toggle.click()
        assert toggle.get_attribute("aria-pressed") == "true"
        assert toggle.inner_text() == "Resume live updates"
        live.app.jobs.resume_queue("default")
        polls = page.evaluate("document.body.dataset.livePolls")
        page.clock.run_for(20_000)
        assert page.evaluate("document.body.dataset.livePolls") == polls
        assert badge.get_attribute("data-paused") == "yes"
        page.goto(live.url + "/workers")
        assert page.locator("[data-live-toggle]").inner_text() == "Resume live updates"
        page.goto(live.url + "/queues")
        page.locator("[data-live-toggle]").click()  # on again
        refresh_now(page)
        assert badge.get_attribute("data-paused") == "no"
    finally:
        live.app.jobs.resume_queue("default")
        page.context.close()
