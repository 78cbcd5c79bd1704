"""Workflows in the dashboard and the API: the list, one workflow's graph (laid out here, drawn
as SVG by the template), cancelling it; and the API's workflow routes.

The graph is laid out in layers (a step sits one layer right of its deepest parent). Within a
layer, the steps of one job name are drawn as one node with their states counted once there
are more than `GROUP_ABOVE` of them, so a fan-out of 10,000 stays one readable node.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel

from conveyor.model.workflow import StoredWorkflow, WorkflowSummary
from conveyor.web.dashboard import Dashboard
from conveyor.web.errors import Refused
from conveyor.web.page_routes import Back, PageRoutes
from conveyor.web.schemas import JOB_ID_PATTERN, NAME_PATTERN, JobSummary

if TYPE_CHECKING:
    from conveyor.web.api import _Routes

WORKFLOWS: Back = ("/workflows", "Back to workflows")
GROUP_ABOVE = 8  # steps of one name in a layer drawn one by one up to this many
COLUMN, ROW, NODE_W, NODE_H = 230, 64, 190, 46  # the drawing's grid, in SVG units
PER_PAGE = 50
STEPS_SHOWN = 200  # rows of the steps table (the graph groups the rest)

_URGENCY = ("failed", "running", "pending", "scheduled", "waiting", "cancelled", "skipped")

WorkflowId = Annotated[str, Path(pattern=JOB_ID_PATTERN, description="a workflow id")]


# the graph ------------------------------------------------------------------------------------
@dataclass
class Node:
    """One box of the drawing: a step, or several steps of one job name in one layer."""

    key: str
    label: str
    layer: int
    job_ids: list[str]
    counts: Counter[str] = field(default_factory=Counter)
    x: int = 0
    y: int = 0

    @property
    def state(self) -> str:
        """The node's colour: the most urgent of its steps' states."""
        for state in _URGENCY:
            if self.counts.get(state):
                return state
        return "completed"

    @property
    def single(self) -> bool:
        """Whether it stands for one step (then it links to that job)."""
        return len(self.job_ids) == 1

    @property
    def summary(self) -> str:
        """Its states counted, most first: "9,000 completed, 1,000 running" (a single step:
        its state)."""
        if self.single:
            return next(iter(self.counts))
        return ", ".join(f"{n:,} {state}" for state, n in self.counts.most_common())


@dataclass
class Graph:
    """A workflow laid out: nodes with positions, edges between node keys, the canvas."""

    nodes: list[Node]
    edges: list[tuple[Node, Node]]
    width: int
    height: int


def layout(workflow: StoredWorkflow) -> Graph:
    """Layers, groups and positions for drawing `workflow` (see the module docstring)."""
    ids = {job.id for job in workflow.steps}
    parents: dict[str, list[str]] = {}
    for parent, child in workflow.edges:
        if parent in ids:
            parents.setdefault(child, []).append(parent)
    layer: dict[str, int] = {}
    for job in workflow.steps:  # stored in the order added: parents come first
        layer[job.id] = 1 + max((layer.get(p, 0) for p in parents.get(job.id, [])), default=-1)
    per_name = Counter((layer[job.id], job.name) for job in workflow.steps)
    nodes: dict[str, Node] = {}
    node_of: dict[str, Node] = {}
    for job in workflow.steps:
        depth = layer[job.id]
        grouped = per_name[(depth, job.name)] > GROUP_ABOVE
        key = f"{depth}:{job.name}" if grouped else job.id
        node = nodes.get(key)
        if node is None:
            # "transform", a times sign, "10,000"
            many = f"{job.name} \u00d7{per_name[(depth, job.name)]:,}"
            label = many if grouped else job.step or job.id
            node = nodes[key] = Node(key, label, depth, [])
        node.job_ids.append(job.id)
        node.counts[job.state.value] += 1
        node_of[job.id] = node
    rows: Counter[int] = Counter()
    for node in nodes.values():
        node.x = 10 + node.layer * COLUMN
        node.y = 10 + rows[node.layer] * ROW
        rows[node.layer] += 1
    pairs = {
        (node_of[p].key, node_of[c].key) for p, c in workflow.edges if p in node_of and c in node_of
    }
    edges = [(nodes[p], nodes[c]) for p, c in sorted(pairs)]
    width = 20 + (max(layer.values(), default=0) + 1) * COLUMN
    height = 20 + max(rows.values(), default=1) * ROW
    return Graph(list(nodes.values()), edges, width, height)


# pages ----------------------------------------------------------------------------------------
def workflow_pages(routes: PageRoutes) -> None:
    """The workflows list, one workflow's page, and cancelling it."""
    routes.view("/workflows", _workflow_list, "workflows.html")
    routes.view(
        "/workflows/{workflow_id}",
        _workflow_detail,
        "workflow.html",
        missing="Workflow not found",
        back=WORKFLOWS,
    )
    routes.action("/workflows/{workflow_id}/cancel", _cancel_workflow)


def _workflow_list(dash: Dashboard, request: Request) -> dict[str, Any]:
    params = request.query_params
    try:
        number = int(params.get("page", "1"))
    except ValueError:
        raise Refused(422, "page must be a whole number") from None
    if not 1 <= number <= 1_000_000:
        raise Refused(422, "page must be between 1 and 1,000,000")
    name = params.get("name", "")[:200] or None
    found = dash.app.workflows.list(page=number, per_page=PER_PAGE, name=name)
    return {"title": "Workflows", "found": found, "name": name or ""}


def _workflow_detail(dash: Dashboard, request: Request) -> dict[str, Any]:
    stored = dash.app.workflows.get(_workflow_id(request))
    return {
        "title": f"Workflow {stored.name}",
        "workflow": stored,
        "graph": layout(stored),
        "after": stored.runs_after(),
        "finished": stored.is_finished(),
        "node": (NODE_W, NODE_H),
        "shown": STEPS_SHOWN,
    }


def _cancel_workflow(dash: Dashboard, request: Request, form: Any) -> str:
    stored = dash.app.workflows.cancel(_workflow_id(request))
    return f"Workflow {stored.name} cancelled: unfinished steps will not run."


def _workflow_id(request: Request) -> str:
    workflow_id = str(request.path_params["workflow_id"])
    if not re.match(JOB_ID_PATTERN, workflow_id):
        raise Refused(404, f"{workflow_id!r} is not a workflow id, so no workflow has it")
    return workflow_id


# API ------------------------------------------------------------------------------------------
class WorkflowSummaryOut(BaseModel):
    """A workflow in a list."""

    id: str
    name: str
    state: str
    created_at: Any
    total_steps: int
    counts: dict[str, int]

    @classmethod
    def of(cls, item: WorkflowSummary) -> WorkflowSummaryOut:
        """From the model."""
        return cls(
            id=item.id,
            name=item.name,
            state=item.state,
            created_at=item.created_at,
            total_steps=item.total,
            counts=item.counts,
        )


class WorkflowPageOut(BaseModel):
    """A page of workflows, newest first."""

    workflows: list[WorkflowSummaryOut]
    page: int
    per_page: int
    has_more: bool


class StepOut(BaseModel):
    """One step: its name, the steps it runs after, and its job."""

    name: str | None
    after: list[str]
    job: JobSummary


class WorkflowOut(BaseModel):
    """A workflow with its steps and edges (parent job id, child job id)."""

    id: str
    name: str
    state: str
    created_at: Any
    counts: dict[str, int]
    steps: list[StepOut]
    edges: list[tuple[str, str]]

    @classmethod
    def of(cls, stored: StoredWorkflow) -> WorkflowOut:
        """From the model."""
        after = stored.runs_after()
        return cls(
            id=stored.id,
            name=stored.name,
            state=stored.state,
            created_at=stored.created_at,
            counts=stored.counts,
            steps=[
                StepOut(
                    name=job.step,
                    after=after[job.id],
                    job=JobSummary.of(job),
                )
                for job in stored.steps
            ],
            edges=list(stored.edges),
        )


def workflow_api(routes: _Routes) -> None:
    """/api/workflows: list, one with its steps and edges, cancel."""
    workflows = routes.dash.app.workflows

    @routes.view("/workflows", response_model=WorkflowPageOut)
    def list_workflows(
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        per_page: Annotated[int, Query(ge=1, le=200)] = 50,
        name: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    ) -> WorkflowPageOut:
        """Workflows newest first, each with its steps counted by state."""
        found = workflows.list(page=page, per_page=per_page, name=name)
        return WorkflowPageOut(
            workflows=[WorkflowSummaryOut.of(item) for item in found.workflows],
            page=found.page,
            per_page=found.per_page,
            has_more=found.has_more,
        )

    @routes.view("/workflows/{workflow_id}", response_model=WorkflowOut)
    def get_workflow(workflow_id: WorkflowId) -> WorkflowOut:
        """One workflow: its steps (each with its job) and its edges."""
        return WorkflowOut.of(workflows.get(workflow_id))

    @routes.manage("POST", "/workflows/{workflow_id}/cancel", response_model=WorkflowOut)
    def cancel_workflow(workflow_id: WorkflowId) -> WorkflowOut:
        """Cancel every unfinished step (running ones are asked to stop)."""
        return WorkflowOut.of(workflows.cancel(workflow_id))
