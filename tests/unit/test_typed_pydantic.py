"""Typed jobs with Pydantic models (when Pydantic is installed; it is not a dependency of the
core): checked by Pydantic, stored as their JSON dump, rebuilt before the job runs."""

from __future__ import annotations

from datetime import date

import pytest

import conveyor
from conveyor.model.signature import spec_of, spec_of_schema

pydantic = pytest.importorskip("pydantic")


class Invoice(pydantic.BaseModel):  # type: ignore[misc,name-defined]
    number: int
    due: date


def bill(ctx: conveyor.Context, invoice: Invoice) -> Invoice:
    return invoice


def test_pydantic_models_are_checked_by_pydantic_and_stored_as_json() -> None:
    s = spec_of("bill", bill)
    stored = s.bind((), {"invoice": Invoice(number=7, due=date(2026, 1, 31))})
    assert stored == {"invoice": {"number": 7, "due": "2026-01-31"}}
    assert s.decode(stored)[1]["invoice"] == Invoice(number=7, due=date(2026, 1, 31))
    assert s.decode_result(s.encode_result(Invoice(number=1, due=date(2026, 2, 1)))) == Invoice(
        number=1, due=date(2026, 2, 1)
    )
    with pytest.raises(conveyor.InvalidArguments, match=r"'invoice\.number'"):
        s.bind((), {"invoice": {"number": "x", "due": "2026-01-31"}})


def test_a_pydantic_model_is_a_declared_schema() -> None:
    declared = spec_of_schema("bill", Invoice)
    assert declared.bind((), {"number": 1, "due": "2026-01-01"}) == {
        "number": 1,
        "due": "2026-01-01",
    }
    with pytest.raises(conveyor.InvalidArguments, match="missing argument 'due'"):
        declared.bind((), {"number": 1})
