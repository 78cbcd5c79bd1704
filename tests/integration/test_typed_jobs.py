"""Typed jobs on every store: rich arguments and results cross the store as plain JSON and
come back as what the function declared; arguments that can never fit fail at once."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TypedDict
from uuid import UUID

import pytest

import conveyor
from conveyor.model.job import JobState


class Tier(enum.Enum):
    FREE = "free"
    PRO = "pro"


@dataclass(frozen=True)
class Invoice:
    number: UUID
    total: Decimal
    due: datetime
    tier: Tier = Tier.FREE


class SendArgs(TypedDict):
    to: str
    attempts: int


async def test_rich_arguments_and_results_round_trip_through_a_worker(
    app: conveyor.App,
) -> None:
    seen: list[Invoice] = []

    @app.job
    async def bill(ctx: conveyor.Context, invoice: Invoice, extra: list[Decimal]) -> Invoice:
        seen.append(invoice)
        return Invoice(invoice.number, invoice.total + sum(extra), invoice.due, Tier.PRO)

    invoice = Invoice(UUID(int=7), Decimal("10.10"), datetime(2027, 1, 31, 9, tzinfo=UTC))
    handle = await bill.enqueue_async(invoice, extra=[Decimal("0.05")])
    stored = app.jobs.require(handle.id)
    assert stored.args["invoice"] == {  # plain JSON in the store, readable by anyone
        "number": "00000000-0000-0000-0000-000000000007",
        "total": "10.10",
        "due": "2027-01-31T09:00:00+00:00",
        "tier": "free",
    }
    async with app.worker():
        done = await handle.wait_async(10)
    assert seen == [invoice]
    assert done.result == Invoice(invoice.number, Decimal("10.15"), invoice.due, Tier.PRO)
    assert app.jobs.require(handle.id).result["tier"] == "pro"


def test_a_bulk_enqueue_with_one_bad_request_stores_none(app: conveyor.App) -> None:
    @app.job
    def send(ctx: conveyor.Context, user_id: int) -> None:
        pass

    with pytest.raises(conveyor.InvalidArguments, match="job 'send': argument 'user_id'"):
        app.enqueue_many([send.request(user_id=i) for i in (1, 2, "3")])  # type: ignore[arg-type]
    assert sum(app.jobs.counts().by_state.values()) == 0


async def test_a_job_stored_by_name_that_cannot_fit_fails_at_once_without_retries(
    app: conveyor.App,
) -> None:
    app.declare("send")  # known only by name here: the worker checks the arguments
    handle = app.enqueue("send", {"user_id": "not a number"})
    ran: list[int] = []

    @app.job(max_attempts=5)
    def send(ctx: conveyor.Context, user_id: int) -> None:
        ran.append(user_id)

    async with app.worker():
        job = await handle.wait_async(10)
    assert ran == [] and job.state is JobState.FAILED and job.attempt == 1
    assert job.errors[-1].kind == "arguments"
    assert "argument 'user_id' expects int, got str" in job.errors[-1].message


def test_a_declared_schema_checks_by_name_producers_at_enqueue(app: conveyor.App) -> None:
    app.declare("send", args=SendArgs, queue="mail")
    handle = app.enqueue("send", {"to": "ada@example.com", "attempts": 2})
    assert handle.job.queue == "mail"
    with pytest.raises(conveyor.InvalidArguments, match="job 'send': argument 'attempts'"):
        app.enqueue("send", {"to": "ada@example.com", "attempts": "2"})
    with pytest.raises(conveyor.InvalidArguments, match="unknown argument 'too'"):
        app.enqueue("send", {"too": "ada@example.com", "attempts": 2})
    assert sum(app.jobs.counts().by_state.values()) == 1


async def test_a_result_that_does_not_fit_the_return_hint_fails_the_attempt(
    app: conveyor.App,
) -> None:
    @app.job(max_attempts=1)
    async def count(ctx: conveyor.Context) -> int:
        return "many"  # type: ignore[return-value]

    handle = count.enqueue()
    async with app.worker():
        job = await handle.wait_async(10)
    assert job.state is JobState.FAILED and job.errors[-1].kind == "result"
    assert "does not fit its return hint" in job.errors[-1].message


def test_validate_false_passes_arguments_through_unchecked(app: conveyor.App) -> None:
    @app.job(validate=False)
    def legacy(ctx: conveyor.Context, user_id: int) -> None:
        pass

    handle = legacy.enqueue(user_id="7", extra=True)  # type: ignore[call-arg,arg-type]
    assert app.jobs.require(handle.id).args == {"user_id": "7", "extra": True}
