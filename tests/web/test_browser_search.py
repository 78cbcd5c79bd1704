"""Finding jobs in Chromium: a search inside an argument, filters combined (kept in the URL),
numbered pages with first/last and the jump box.

Uses the launch and sign-in of test_browser.py, with a live server of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

import conveyor
from conveyor.web import create_app

from .support import MANAGE_TOKEN, TOKENS, LiveServer, build_app, start_live_server, wait_for
from .test_browser import (  # skips this module too when there is no Chromium
    Page,
    browser,
    open_page,
    shots,
    sync_api,
)

__all__ = ["browser", "shots"]

expect = sync_api.expect


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = build_app()
    server = start_live_server(app, create_app(app, tokens=TOKENS, secret="browser-search"))
    yield server
    server.close()
    app.close()


def listed(page: Page) -> list[str]:
    """The ids of the rows the list shows."""
    rows = page.locator("table.jobs tbody tr[data-job]")
    return [rows.nth(i).get_attribute("data-job") for i in range(rows.count())]


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlparse(page.url).query)


def finished(app: conveyor.App, *ids: str) -> None:
    wait_for(lambda: all(app.jobs.require(i).is_finished for i in ids), what="jobs to finish")


def test_a_search_finds_text_inside_an_argument(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    wanted = live.app.enqueue("hello", {"who": "Grace Hopper of the Navy"}, delay=3600)
    live.app.enqueue("hello", {"who": "Alan Turing"}, delay=3600)
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs")

    page.fill("form.filters input[name=q]", "hopper OF")
    page.click("form.filters button:has-text('Filter')")

    expect(page.locator("h1 small")).to_have_text("1 found")
    assert listed(page) == [wanted.id]
    assert query_of(page)["q"] == ["hopper OF"]
    expect(page.locator("form.filters input[name=q]")).to_have_value("hopper OF")
    page.screenshot(path=str(shots / "jobs-search-argument.png"), full_page=True)


def test_filters_combine_and_stay_in_the_url(browser: Any, live: LiveServer, shots: Path) -> None:
    failed = live.app.enqueue("boom")
    done = live.app.enqueue("hello", {"who": "disk"})
    finished(live.app, failed.id, done.id)
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs")

    page.fill(
        "form.filters input[name=q]", "DISK"
    )  # both: boom's error message and hello's argument
    page.click("details.more-filters summary")
    page.select_option("form.filters select[name=error_kind]", "error")
    page.fill("form.filters input[name=name_contains]", "oo")
    page.fill("form.filters input[name=finished_after]", "1h")
    page.click("form.filters button:has-text('Filter')")

    assert listed(page) == [failed.id]
    query = query_of(page)
    assert (query["q"], query["error_kind"], query["name_contains"]) == (
        ["DISK"],
        ["error"],
        ["oo"],
    )
    assert query["finished_after"] == ["1h"]
    expect(page.locator("details.more-filters")).to_have_attribute("open", "")
    page.screenshot(path=str(shots / "jobs-filters-combined.png"), full_page=True)

    page.reload()  # the URL alone gives the same list and the same filter bar
    assert listed(page) == [failed.id]
    expect(page.locator("form.filters select[name=error_kind]")).to_have_value("error")
    page.select_option("form.filters select[name=error_kind]", "timeout")
    page.click("form.filters button:has-text('Filter')")
    assert listed(page) == []
    expect(page.locator("table.jobs tbody")).to_contain_text("No jobs match.")


def test_numbered_pages_first_last_and_jump(browser: Any, live: LiveServer, shots: Path) -> None:
    app = live.app
    app.enqueue_many(
        [app.request("hello", {"who": f"pager-{i:03}"}, delay=3600) for i in range(260)]
    )
    page = open_page(browser, live, MANAGE_TOKEN)
    page.goto(f"{live.url}/jobs?q=pager-")
    pager = page.locator("nav.pager")

    expect(page.locator("h1 small")).to_have_text("260 found")
    expect(pager).to_contain_text("page 1 of 6")
    assert pager.locator("[data-page-first]").count() == 0  # already on the first page
    first_ids = listed(page)
    assert len(first_ids) == 50

    pager.locator("a[data-page='2']").click()
    expect(pager.locator("[aria-current=page]")).to_have_text("2")
    assert query_of(page)["q"] == ["pager-"]  # a page link keeps the filter
    assert not set(listed(page)) & set(first_ids)

    pager.locator("[data-page-last]").click()
    expect(pager).to_contain_text("page 6 of 6")
    assert len(listed(page)) == 10
    assert pager.locator("[data-page-last]").count() == 0

    page.fill("form.jump input[name=page]", "4")
    page.click("form.jump button:has-text('Go')")
    expect(pager.locator("[aria-current=page]")).to_have_text("4")
    assert query_of(page)["page"] == ["4"] and query_of(page)["q"] == ["pager-"]
    page.screenshot(path=str(shots / "jobs-pages-jump.png"), full_page=True)

    pager.locator("[data-page-first]").click()
    expect(pager.locator("[aria-current=page]")).to_have_text("1")
    assert listed(page) == first_ids
