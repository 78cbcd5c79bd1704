"""A workflow's page in real Chromium: the graph is drawn, and its steps' colours follow the
workflow live as a worker runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .support import MANAGE_TOKEN, LiveServer, wait_for
from .test_browser import browser, live, open_page, shots  # the fixtures, shared

__all__ = ["browser", "live", "shots"]


def test_the_graph_follows_the_workflow_live(browser: Any, live: LiveServer, shots: Path) -> None:
    app = live.app
    wf = app.workflow("report-run")
    first = wf.add(app.request("slow", {"steps": 30, "pause": 0.2}), name="gather")
    parts = [wf.add(app.request("hello", {"who": f"p{n}"}), after=[first]) for n in range(3)]
    wf.add(app.request("hello", {"who": "all"}), after=parts, name="publish")
    handle = wf.enqueue()
    page = open_page(browser, live, MANAGE_TOKEN)

    page.goto(f"{live.url}/workflows/{handle.id}")
    page.wait_for_selector("svg.graph")
    assert page.locator("svg.graph g.node").count() == 5
    assert page.locator("svg.graph path.edge").count() == 6
    assert page.locator('g[data-node-state="waiting"]').count() >= 1  # publish waits
    page.screenshot(path=str(shots / "workflow-running.png"), full_page=True)

    wait_for(
        lambda: page.locator('g[data-node-state="completed"]').count() == 5,
        timeout=30,
        what="every step to turn completed on the page without a reload",
    )
    assert page.locator("[data-workflow-state] .badge").inner_text() == "completed"
    page.screenshot(path=str(shots / "workflow-completed.png"), full_page=True)
    page.click(f'a[href="/jobs/{handle.steps["publish"].id}"] >> nth=0')
    page.wait_for_selector("a[data-workflow-link]")
    page.context.close()
