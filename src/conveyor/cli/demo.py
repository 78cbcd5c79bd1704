"""`conveyor demo`: sample jobs on a fresh store, run by an embedded worker, shown live."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

from conveyor.app import App, JobHandle
from conveyor.cli.demo_jobs import DEMO_SETTINGS, EMAIL, IMPORT, MONTHS, REPORT, define_jobs
from conveyor.cli.demo_report import Narrator, serial_check, summary_table
from conveyor.model.job import Job

DEADLINE = 15.0  # seconds the worker gets to finish every demo job
CONCURRENCY = 8


def run_demo(
    *, db: Path | None, emails: int, url: str | None, console: Console | None = None
) -> int:
    """Run the demo; 0 when every job reached a final state before the deadline, else 1."""
    console = console or Console(highlight=False)
    scratch = None
    if url is None:
        if db is None:
            scratch = Path(tempfile.mkdtemp(prefix="conveyor-demo-"))
            db = scratch / "demo.db"
        url = f"sqlite:///{db.resolve()}"
    try:
        app = App(url, **DEMO_SETTINGS)
        try:
            return asyncio.run(_demo(app, emails, console))
        finally:
            app.close()
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
            console.print(
                "To browse the demo's jobs in the dashboard, keep them and serve them:\n"
                "  conveyor demo --db demo.db && conveyor web --url sqlite:///demo.db"
            )
        elif db is not None:
            console.print(f"The jobs are kept in {db}. See them in the dashboard:")
            console.print(
                f"  conveyor web --url sqlite:///{db}   (then open http://127.0.0.1:8000)"
            )


async def _demo(app: App, emails: int, console: Console) -> int:
    jobs = define_jobs(app)
    console.rule("[bold]Conveyor demo")
    console.print(f"store: [cyan]{app.url}[/]   worker: embedded, concurrency {CONCURRENCY}")
    bars = Progress(
        TextColumn("{task.description}", style="cyan"),
        BarColumn(bar_width=24),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}", style="dim"),
        console=console,
    )
    narrator = Narrator(bars, emails)
    narrator.listen(app)

    say = narrator.say
    handles: list[JobHandle] = []
    for supplier, items in (("acme", 1200), ("globex", 800), ("initech", 450)):
        handle = await jobs[IMPORT].enqueue_async(supplier=supplier, items=items)
        narrator.track(handle.job, f"import {supplier}")
        handles.append(handle)
    say("enqueued 3 imports that report progress")
    for endpoint, outages in (("/orders", 1), ("/stock", 2)):
        handles.append(
            await jobs["call_partner_api"].enqueue_async(endpoint=endpoint, outages=outages)
        )
    say("enqueued 2 partner calls that fail 1 and 2 times, then succeed (backoff 0.2 s)")
    handles.append(await jobs["charge_card"].enqueue_async(order=1042))
    say("enqueued 1 card charge that always fails (3 attempts)")

    batch = [jobs[REPORT].request(month=month) for month in MONTHS]
    batch += [jobs[EMAIL].request(to=f"user{n}@example.com") for n in range(1, emails + 1)]
    bulk = await app.enqueue_many_async(batch)
    handles += bulk
    for handle in bulk[: len(MONTHS)]:
        narrator.track(handle.job, f"report {handle.job.args['month']}")
    say(
        f"one bulk call stored {len(bulk)} jobs: {len(MONTHS)} reports on the serial queue "
        f"'reports' (concurrency=1) and {emails} emails"
    )

    reminder = await jobs["send_reminder"].with_options(delay=2).enqueue_async(user="ada")
    handles.append(reminder)
    say(f"enqueued a reminder with delay=2 s: it is [bold]{reminder.job.state}[/]")

    unique = jobs["sync_inventory"].with_options(unique_key="inventory-sync")
    first = await unique.enqueue_async(warehouse="north")
    again = await unique.enqueue_async(warehouse="north")
    handles.append(first)
    say(
        f"enqueued sync_inventory twice with unique_key='inventory-sync': created={first.created}, "
        f"then created={again.created} (same job: {again.id == first.id})"
    )
    console.rule("worker running")

    ids = list(dict.fromkeys(h.id for h in handles))
    started = time.monotonic()
    final: list[Job] = []
    with bars:
        async with app.worker(concurrency=CONCURRENCY):
            while True:
                final = await asyncio.to_thread(_fetch, app, ids)
                if all(job.is_finished for job in final):
                    break
                if time.monotonic() - started > DEADLINE:
                    break
                await asyncio.sleep(0.2)
    elapsed = time.monotonic() - started

    console.rule("result")
    console.print(summary_table(final))
    for line in serial_check([job for job in final if job.name == REPORT]):
        console.print(line)
    unfinished = [job for job in final if not job.is_finished]
    if unfinished:
        console.print(
            f"[red]{len(unfinished)} job(s) did not finish within {DEADLINE:g} s; stopped anyway"
        )
        return 1
    console.print(f"all {len(final)} jobs reached a final state in {elapsed:.1f} s")
    return 0


def _fetch(app: App, ids: list[str]) -> list[Job]:
    jobs = [app.jobs.get(job_id) for job_id in ids]
    return [job for job in jobs if job is not None]
