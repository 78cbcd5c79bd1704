"""The example's jobs: one App, one job. The store is $CONVEYOR_URL, else a SQLite file here."""

from __future__ import annotations

import conveyor

app = conveyor.App()  # $CONVEYOR_URL, else sqlite:///conveyor.db in the current directory


@app.job(max_attempts=3)
def build_report(ctx: conveyor.Context, month: str) -> dict[str, object]:
    """A report for `month`: progress as it goes, the totals as its result."""
    ctx.progress(50, "counting")
    rows = len(month) * 100
    ctx.log(f"{rows} rows counted for {month}")
    ctx.progress(100, "done")
    return {"month": month, "rows": rows}
