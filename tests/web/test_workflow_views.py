"""Workflows in the REST API and the dashboard: list, graph, cancel, permissions, escaping."""

from __future__ import annotations

from fastapi.testclient import TestClient

import conveyor
from conveyor.web.workflow_views import GROUP_ABOVE, layout

from .support import EVIL, MANAGE_TOKEN
from .test_pages import login


def nightly(app: conveyor.App, parts: int = 2) -> conveyor.WorkflowHandle:
    """hello → boom and `parts` hellos → evil (a step named with markup)."""
    wf = app.workflow("nightly")
    first = wf.add(app.request("hello", {"who": "fetch"}), name="fetch")
    middle = [wf.add(app.request("hello"), after=[first]) for _ in range(parts)]
    wf.add(app.request("evil"), after=middle, name=EVIL)
    return wf.enqueue()


def sign_in(client: TestClient) -> str:
    """Sign in with the manage token; returns the session's CSRF token."""
    return login(client, MANAGE_TOKEN)


def test_the_api_lists_and_shows_workflows(app: conveyor.App, viewer: TestClient) -> None:
    handle = nightly(app)

    listed = viewer.get("/api/workflows").json()
    assert [w["id"] for w in listed["workflows"]] == [handle.id]
    assert listed["workflows"][0]["counts"] == {"pending": 1, "waiting": 3}
    assert listed["workflows"][0]["state"] == "running"
    shown = viewer.get(f"/api/workflows/{handle.id}").json()
    assert [s["name"] for s in shown["steps"]] == ["fetch", "hello", "hello-2", EVIL]
    assert shown["steps"][3]["after"] == ["hello", "hello-2"]
    assert shown["steps"][0]["job"]["state"] == "pending"
    assert len(shown["edges"]) == 4
    named = viewer.get("/api/workflows", params={"name": "other"}).json()
    assert named["workflows"] == []


def test_the_api_refuses_bad_ids_unknown_workflows_and_viewers_cancelling(
    app: conveyor.App, viewer: TestClient, manager: TestClient, client: TestClient
) -> None:
    handle = nightly(app)

    assert client.get("/api/workflows").status_code == 401
    assert viewer.get("/api/workflows/not-an-id").status_code == 422
    missing = viewer.get("/api/workflows/01a24259-7398-7efe-ac87-6e76a68b7474")
    assert missing.status_code == 404
    assert "no workflow has id" in missing.json()["error"]
    assert viewer.post(f"/api/workflows/{handle.id}/cancel").status_code == 403
    assert viewer.get("/api/workflows", params={"per_page": 0}).status_code == 422

    cancelled = manager.post(f"/api/workflows/{handle.id}/cancel").json()

    assert cancelled["state"] == "cancelled"
    assert cancelled["counts"] == {"cancelled": 4}


def test_a_job_of_a_workflow_names_it(app: conveyor.App, viewer: TestClient) -> None:
    handle = nightly(app)
    job_id = handle.steps["fetch"].id

    detail = viewer.get(f"/api/jobs/{job_id}").json()
    assert (detail["workflow_id"], detail["step"]) == (handle.id, "fetch")
    assert viewer.get("/api/jobs", params={"state": "waiting"}).json()["total"] == 3


def test_the_workflow_page_draws_the_graph_escaped_and_links_each_step(
    app: conveyor.App, client: TestClient
) -> None:
    handle = nightly(app)
    sign_in(client)

    page = client.get(f"/workflows/{handle.id}")

    assert page.status_code == 200
    html = page.text
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    assert html.count('class="node ') == 4  # four steps, two hellos not grouped
    assert html.count('class="edge"') == 4
    assert f'href="/jobs/{handle.steps["fetch"].id}"' in html
    job_page = client.get(f"/jobs/{handle.steps['fetch'].id}").text
    assert f'href="/workflows/{handle.id}"' in job_page
    listing = client.get("/workflows").text
    assert f'href="/workflows/{handle.id}"' in listing and "nightly" in listing


def test_an_unknown_workflow_is_a_page_with_a_way_back(
    app: conveyor.App, client: TestClient
) -> None:
    sign_in(client)

    page = client.get("/workflows/01a24259-7398-7efe-ac87-6e76a68b7474")

    assert page.status_code == 404
    assert "Workflow not found" in page.text and 'href="/workflows"' in page.text


def test_cancelling_from_the_page_needs_the_form_token(
    app: conveyor.App, client: TestClient
) -> None:
    handle = nightly(app)
    csrf = sign_in(client)

    forged = client.post(f"/workflows/{handle.id}/cancel", data={"next": "/workflows"})
    assert forged.status_code == 403
    assert app.workflows.get(handle.id).state == "running"

    done = client.post(
        f"/workflows/{handle.id}/cancel",
        data={"csrf": csrf, "next": f"/workflows/{handle.id}"},
        follow_redirects=True,
    )

    assert done.status_code == 200
    assert "cancelled" in done.text
    assert app.workflows.get(handle.id).state == "cancelled"


def test_a_wide_fan_out_is_drawn_as_one_node_with_counts(app: conveyor.App) -> None:
    handle = nightly(app, parts=GROUP_ABOVE + 1)
    app.testing.drain()  # runs everything: boom is not in it, so all complete

    graph = layout(app.workflows.get(handle.id))

    labels = sorted(node.label for node in graph.nodes)
    assert labels == sorted(["fetch", f"hello \u00d7{GROUP_ABOVE + 1}", EVIL])
    group = next(node for node in graph.nodes if len(node.job_ids) > 1)
    assert group.summary == f"{GROUP_ABOVE + 1} completed"
    assert [n.layer for n in sorted(graph.nodes, key=lambda n: n.layer)] == [0, 1, 2]
    assert len(graph.edges) == 2
