"""What checking a job's arguments costs, per job (issue 14's budget: 2 µs for a flat
signature).

    .venv/bin/python bench/typed_check.py [N]

Times, best of 7 runs of N calls each: the check alone (`ArgumentSpec.bind`, what enqueue adds)
for a flat signature and for a rich one (a dataclass with a UUID, a Decimal and an aware
datetime); the rebuild a worker does before the call (`decode`); and `fn.request(...)`, the
whole build of a job, with validation on and off (`@app.job(validate=False)`).
"""

from __future__ import annotations

import sys
import timeit
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import conveyor
from conveyor.model.signature import spec_of


@dataclass(frozen=True)
class Invoice:
    number: UUID
    total: Decimal
    due: datetime


def flat(ctx: conveyor.Context, user_id: int, email: str, *, dry_run: bool = False) -> None:
    """A flat signature: three plain parameters."""


def rich(ctx: conveyor.Context, invoice: Invoice, note: str | None = None) -> None:
    """A rich one: a dataclass of a UUID, a Decimal and an aware datetime."""


def per_call(statement: Any, n: int) -> float:
    """Best µs per call over 7 runs of n calls."""
    return min(timeit.repeat(statement, number=n, repeat=7)) / n * 1e6


def main(n: int) -> None:
    flat_spec, rich_spec = spec_of("flat", flat), spec_of("rich", rich)
    flat_args = {"user_id": 42, "email": "ada@example.com", "dry_run": True}
    invoice = Invoice(UUID(int=7), Decimal("10.10"), datetime(2027, 1, 31, tzinfo=UTC))
    rich_args = {"invoice": invoice, "note": "late"}
    stored_rich = rich_spec.bind((), rich_args)

    app = conveyor.App("memory://")
    checked = app.job(flat)
    unchecked = app.job(name="flat_unchecked", validate=False)(flat)

    rows = [
        ("check, flat signature (bind)", per_call(lambda: flat_spec.bind((), flat_args), n)),
        ("check, rich signature (bind)", per_call(lambda: rich_spec.bind((), rich_args), n)),
        ("rebuild before the run, flat (decode)", per_call(
            lambda: flat_spec.decode(flat_args), n)),
        ("rebuild before the run, rich (decode)", per_call(
            lambda: rich_spec.decode(stored_rich), n)),
        ("fn.request(...), flat, validated", per_call(
            lambda: checked.request(user_id=42, email="ada@example.com", dry_run=True), n)),
        ("fn.request(...), flat, validate=False", per_call(
            lambda: unchecked.request(user_id=42, email="ada@example.com", dry_run=True), n)),
    ]  # fmt: skip
    print(f"python {sys.version.split()[0]}, best of 7 x {n:,} calls")
    for label, micros in rows:
        print(f"{label:42} {micros:6.2f} µs/job")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
