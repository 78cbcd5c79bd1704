"""`conveyor workflows ls / show / cancel`: stored workflows, their steps and edges."""

from __future__ import annotations

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.app import App
from conveyor.cli.base import Output, ago, listing, styled_state, verb, when
from conveyor.model.workflow import StoredWorkflow, WorkflowSummary


@click.group(short_help="List, inspect and cancel workflows.")
def workflows() -> None:
    """Workflows: jobs that run after other jobs (docs/workflows.md).

    \b
    Examples:
      conveyor workflows ls
      conveyor workflows show 01a2…
      conveyor workflows cancel 01a2…
    """


@workflows.command("ls")
@click.option("--name", default=None, help="Only workflows of this name.")
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--per-page", default=50, show_default=True, type=click.IntRange(1, 1000), help="Rows a page."
)
@verb
def workflows_ls(app: App, name: str | None, page: int, per_page: int) -> Output:
    """List workflows, newest first, with their steps counted by state.

    \b
    Example:
      conveyor workflows ls --name nightly-report --json
    """
    found = app.workflows.list(page=page, per_page=per_page, name=name)
    now = app.clock()
    rows = [_summary(item) for item in found.workflows]
    output = listing(
        found.workflows,
        empty="no workflows" + (f" named {name!r}" if name else ""),
        columns=("id", "name", "state", "steps", "by state", "created"),
        right=("steps",),
        row=lambda item: (
            item.id,
            escape(item.name),
            styled_state(item.state),
            str(item.total),
            _counts(item.counts),
            ago(item.created_at, now),
        ),
    )
    data = {"workflows": rows, "page": found.page, "per_page": found.per_page}
    return Output({**data, "has_more": found.has_more}, output.human)


@workflows.command("show")
@click.argument("workflow_id")
@verb
def workflows_show(app: App, workflow_id: str) -> Output:
    """Show a workflow: each step's state and the steps it runs after.

    \b
    Example:
      conveyor workflows show 01a2… --json
    """
    stored = app.workflows.get(workflow_id)
    return Output(_detail(stored), lambda out: _print_workflow(out, stored, app))


@workflows.command("cancel")
@click.argument("workflow_id")
@verb
def workflows_cancel(app: App, workflow_id: str) -> Output:
    """Cancel every unfinished step of a workflow (running steps are asked to stop).

    \b
    Example:
      conveyor workflows cancel 01a2…
    """
    stored = app.workflows.cancel(workflow_id)
    counts = _counts(stored.counts)
    return Output(
        _detail(stored), f"workflow {escape(stored.name)} {stored.id} cancelled: {counts}"
    )


def _summary(item: WorkflowSummary) -> dict[str, object]:
    return {
        "id": item.id,
        "name": item.name,
        "state": item.state,
        "created_at": item.created_at.isoformat(),
        "total_steps": item.total,
        "counts": item.counts,
    }


def _detail(stored: StoredWorkflow) -> dict[str, object]:
    after = stored.runs_after()
    return {
        **_summary(stored.summary()),
        "steps": [
            {
                "name": job.step,
                "job_id": job.id,
                "job": job.name,
                "state": job.state.value,
                "after": after[job.id],
                "error": None if job.last_error is None else job.last_error.message,
            }
            for job in stored.steps
        ],
        "edges": [list(edge) for edge in stored.edges],
    }


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "-"


def _print_workflow(out: Console, stored: StoredWorkflow, app: App) -> None:
    now = app.clock()
    out.print(
        f"[bold]{escape(stored.name)}[/] {stored.id}  {styled_state(stored.state)}  "
        f"created {when(stored.created_at, now)}"
    )
    runs_after = stored.runs_after()
    table = Table(header_style="bold")
    for column in ("step", "job", "state", "after", "job id"):
        table.add_column(column)
    for job in stored.steps:
        after = runs_after[job.id]
        state = styled_state(job.state.value)
        if job.last_error is not None and job.last_error.kind == "parent":
            state += " [dim](parent)[/]"
        table.add_row(
            escape(job.step or "-"),
            escape(job.name),
            state,
            escape(", ".join(after)) or "-",
            job.id,
        )
    out.print(table)
