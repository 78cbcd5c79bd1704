"""Checked by mypy in tests/unit/test_static_typing.py, never run: each line ending in
an `error:` comment must be reported with that text, and no other line may be."""

from __future__ import annotations

from datetime import date
from typing import assert_type

import conveyor

app = conveyor.App("memory://")


@app.job
def build_report(ctx: conveyor.Context, user_id: int, *, dry_run: bool = False) -> date:
    return date.today()


@app.job(queue="mail", max_attempts=5)
async def send(ctx: conveyor.Context, to: str, subject: str = "") -> list[str]:
    return [to]


class Resize:
    def run(self, ctx: conveyor.Context, width: int) -> None: ...


resize = app.job(Resize)  # mypy ignores what a class decorator returns: register by a call


# correct calls
build_report.enqueue(1)
build_report.enqueue(user_id=1, dry_run=True)
build_report.request(7)
build_report.with_options(priority=5, delay=10.0, unique_key="r").enqueue(user_id=2)
send.enqueue("ada@example.com", subject="hi")
resize.enqueue(width=3)
handle = build_report.enqueue(3)
assert_type(handle, conveyor.JobHandle[date])
assert_type(handle.wait().result, date)
assert_type(send.enqueue("x").wait().result, list[str])
conveyor.App("memory://", concurrency=4, queue_full="refuse")
app.recurring("nightly", "0 3 * * *", build_report, overlap="queue")


async def produce() -> None:
    later = await send.enqueue_async(to="b@example.com")
    assert_type(later, conveyor.JobHandle[list[str]])


# wrong calls
build_report.enqueue(mnth=5)  # error: Unexpected keyword argument "mnth"
build_report.enqueue()  # error: Missing positional argument "user_id"
build_report.enqueue(user_id="5")  # error: Argument "user_id" to "enqueue" of "JobFunction"
build_report.enqueue(1, True)  # error: Too many positional arguments
send.request(to=1)  # error: Argument "to" to "request" of "JobFunction" has incompatible type
build_report.with_options(priorty=5)  # error: Unexpected keyword argument "priorty"
build_report.with_options(delay="soon")  # error: Argument "delay" to "with_options"
conveyor.App("memory://", concurency=4)  # error: Unexpected keyword argument "concurency"
conveyor.App("memory://", queue_full="drop")  # error: incompatible type "Literal['drop']"
app.recurring("n", "* * * * *", send, overlap="never")  # error: type "Literal['never']"
