"""The history charts in Chromium: the range switch, a queue's own history, live updates.

Uses the launch and sign-in of test_browser.py, with a live server (and worker) of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor.web import create_app

from .support import MANAGE_TOKEN, TOKENS, LiveServer, build_app, start_live_server, wait_for
from .test_browser import (  # skips this module too when there is no Chromium
    browser,
    open_page,
    shots,
)

__all__ = ["browser", "shots"]


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    app = build_app()
    server = start_live_server(app, create_app(app, tokens=TOKENS, secret="browser-history"))
    yield server
    server.close()
    app.close()


def total(page: Any, key: str) -> str:
    text: str = page.locator(f"[data-history-totals] [data-total={key}]").inner_text()
    return text


def test_the_overview_charts_switch_range_and_refresh_live(
    browser: Any, live: LiveServer, shots: Path
) -> None:
    live.app.enqueue("hello").wait(10)
    live.app.enqueue("boom").wait(10)
    page = open_page(browser, live, MANAGE_TOKEN)

    chart = page.locator("[data-chart=completed]")
    assert page.locator("[data-history]").get_attribute("data-history") == "1h"
    wait_for(lambda: chart.locator("rect.col").count() > 0, what="a completed bar")
    assert page.locator("[data-chart=failed] rect.col").count() == 1
    assert page.locator("[data-chart=latency] polyline[data-line=run]").count() == 1
    assert "per 1 min, last 1h" in (chart.get_attribute("aria-label") or "")

    page.click("[data-range='24h']")
    page.wait_for_selector("[data-history='24h']")
    assert page.url.endswith("?range=24h")
    assert page.locator("[data-range='24h']").get_attribute("aria-current") == "page"
    assert "per 15 min, last 24h" in (chart.get_attribute("aria-label") or "")
    assert page.locator("[data-chart=completed] rect.col").count() == 1  # one 15-min step
    before = total(page, "completed")
    page.screenshot(path=str(shots / "overview-history-24h.png"), full_page=True)

    live.app.enqueue("hello").wait(10)
    wait_for(lambda: total(page, "completed") != before, what="the history to refresh")
    assert page.locator("[data-history]").get_attribute("data-history") == "24h"  # range kept

    page.click("[data-range='7d']")
    page.wait_for_selector("[data-history='7d']")
    assert "per 1 h, last 7d" in (chart.get_attribute("aria-label") or "")
    page.screenshot(path=str(shots / "overview-history-7d.png"), full_page=True)


def test_a_queue_page_shows_its_own_history(browser: Any, live: LiveServer, shots: Path) -> None:
    live.app.enqueue("hello", queue="reports").wait(10)
    page = open_page(browser, live, MANAGE_TOKEN)

    page.goto(f"{live.url}/queues/reports?range=1h")

    assert page.locator("h2:has-text('History')").inner_text().endswith("queue reports")
    assert total(page, "completed") == "1 completed"
    assert page.locator("[data-chart=completed] rect.col").count() == 1
    page.screenshot(path=str(shots / "queue-history-1h.png"), full_page=True)
