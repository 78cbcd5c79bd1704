"""Every store refuses the same inputs the same way: through the one validator, before the
store is reached, so a driver error never shows."""

from __future__ import annotations

from typing import Any

import pytest

import conveyor
from conveyor import Context
from conveyor.errors import InvalidArguments, InvalidFilter, InvalidJobOptions

TEXT_NO_STORE_HOLDS = ["nul\x00", "lone \ud83d surrogate"]


@pytest.mark.parametrize("text", TEXT_NO_STORE_HOLDS, ids=["nul", "surrogate"])
def test_text_no_store_can_hold_is_refused_everywhere(app: conveyor.App, text: str) -> None:
    @app.job
    def echo(ctx: Context, **args: Any) -> None:
        return None

    refusals: list[tuple[type[Exception], dict[str, Any]]] = [
        (InvalidArguments, {"args": {"s": text}}),
        (InvalidArguments, {"args": {text: 1}}),
        (InvalidArguments, {"args": {"deep": [{"s": text}]}}),
        (InvalidJobOptions, {"metadata": {"k": text}}),
        (InvalidJobOptions, {"unique_key": text}),
        (InvalidJobOptions, {"queue": text}),
    ]
    for error, call in refusals:
        args = call.pop("args", {})
        with pytest.raises(error):
            app.enqueue("echo", args, **call)
    with pytest.raises(InvalidFilter):
        app.jobs.list(search=text)
    assert app.jobs.counts().by_state == {}
    # and the same text escaped the JSON way is plain text, stored and read back
    handle = app.enqueue("echo", {"s": text.encode("unicode_escape").decode()})
    assert handle.refresh().args == {"s": text.encode("unicode_escape").decode()}


async def test_a_result_no_store_can_hold_fails_that_attempt_alone(app: conveyor.App) -> None:
    @app.job(max_attempts=1)
    def answer(ctx: Context, n: int) -> Any:
        return {"text": "nul\x00"} if n == 3 else {"big": 2**64} if n == 5 else n

    handles = [app.enqueue("answer", {"n": n}) for n in range(8)]
    async with app.worker(concurrency=4):
        for handle in handles:
            await handle.wait_async(30)
    results = {n: handle.refresh() for n, handle in enumerate(handles)}
    for n, job in results.items():
        if n in (3, 5):
            assert job.state is conveyor.JobState.FAILED
            assert job.errors[-1].kind == "result"
            assert "cannot be stored" in job.errors[-1].message
        else:
            assert (job.state, job.result) == (conveyor.JobState.COMPLETED, n)
