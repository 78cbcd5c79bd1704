"""The sample jobs `conveyor demo` runs: progress, flaky retries, a hopeless failure, a serial
queue, quick bulk jobs, a delayed job and a unique one."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from conveyor.app import App, JobFunction
from conveyor.context import Context
from conveyor.model.options import Backoff

# Short intervals so that retries, progress and the end of the demo are seen within seconds.
DEMO_SETTINGS: dict[str, Any] = {
    "heartbeat_interval": 0.5,
    "lease_seconds": 5.0,
    "poll_interval": 0.2,
    "progress_flush_interval": 0.2,
    "sweep_interval": 0.5,
    "shutdown_timeout": 2.0,
}
IMPORT, REPORT, EMAIL = "import_catalog", "build_report", "send_email"
MONTHS = ("2024-01", "2024-02", "2024-03", "2024-04")
QUICK = Backoff(base=0.2, max=1.0)


def define_jobs(app: App) -> dict[str, JobFunction[..., Any]]:
    """Register the demo's jobs on `app`; returns them by name."""
    app.queue("reports", concurrency=1)

    @app.job(queue="imports")
    async def import_catalog(ctx: Context, supplier: str, items: int) -> dict[str, Any]:
        steps = 5
        for step in range(1, steps + 1):
            await asyncio.sleep(0.3)
            ctx.progress(step * 100 / steps, f"{items * step // steps}/{items} items")
        ctx.log(f"imported {items} items from {supplier}")
        return {"supplier": supplier, "items": items}

    @app.job(max_attempts=4, backoff=QUICK)
    def call_partner_api(ctx: Context, endpoint: str, outages: int) -> str:
        time.sleep(0.1)  # a plain function: it runs on the worker's thread pool
        if ctx.attempt <= outages:
            raise ConnectionError(f"GET {endpoint}: 503 Service Unavailable")
        ctx.log(f"GET {endpoint}: 200 on attempt {ctx.attempt}")
        return "200 OK"

    @app.job(max_attempts=3, backoff=QUICK)
    async def charge_card(ctx: Context, order: int) -> None:
        await asyncio.sleep(0.1)
        raise RuntimeError(f"order {order}: card declined by the bank")

    @app.job(queue="reports")
    def build_report(ctx: Context, month: str) -> dict[str, Any]:
        for step in range(1, 5):
            time.sleep(0.1)
            ctx.progress(step * 25, "aggregating" if step < 4 else "done")
        return {"month": month, "rows": 500 + 10 * int(month[-2:])}

    @app.job(queue="emails")
    async def send_email(ctx: Context, to: str) -> None:
        await asyncio.sleep(random.uniform(0.05, 0.3))
        ctx.log(f"sent to {to}")

    @app.job
    async def send_reminder(ctx: Context, user: str) -> str:
        await asyncio.sleep(0.1)
        return f"reminded {user}"

    @app.job
    async def sync_inventory(ctx: Context, warehouse: str) -> dict[str, Any]:
        await asyncio.sleep(0.5)
        return {"warehouse": warehouse, "skus": 312}

    defined: list[JobFunction[..., Any]] = [
        import_catalog, call_partner_api, charge_card, build_report, send_email,
        send_reminder, sync_inventory,
    ]  # fmt: skip
    return {job.name: job for job in defined}
