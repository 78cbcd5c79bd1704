"""Typed jobs, in the model: arguments bound to the signature, checked by their hints, written
as plain JSON and rebuilt from it; results likewise."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Literal, NotRequired, TypedDict
from uuid import UUID

import pytest

import conveyor
from conveyor.model.signature import ArgumentSpec, spec_of, spec_of_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclass(frozen=True)
class Item:
    sku: str
    price: Decimal
    tags: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Order:
    id: UUID
    placed: datetime
    items: list[Item]
    color: Color = Color.RED


class Address(TypedDict):
    street: str
    zip: NotRequired[str]


def spec(func: Any) -> ArgumentSpec:
    return spec_of(func.__name__, func)


def roundtrip(s: ArgumentSpec, **args: Any) -> dict[str, Any]:
    stored = json.loads(json.dumps(s.bind((), args)))  # what a store keeps
    positional, named = s.decode(stored)
    assert positional == ()
    return named


def test_names_are_bound_and_unknown_or_missing_ones_refused() -> None:
    def build_report(ctx: conveyor.Context, month: str, *, dry_run: bool = False) -> None: ...

    s = spec(build_report)
    assert s.bind(("2024-05",), {"dry_run": True}) == {"month": "2024-05", "dry_run": True}
    with pytest.raises(conveyor.InvalidArguments, match=r"unknown argument 'mnth'.*'month'\?"):
        s.bind((), {"mnth": "2024-05"})
    with pytest.raises(conveyor.InvalidArguments, match=r"missing argument 'month' \(expects str"):
        s.bind((), {"dry_run": True})
    with pytest.raises(conveyor.InvalidArguments, match="takes 1 positional argument"):
        s.bind(("2024-05", True), {})  # dry_run is keyword-only
    with pytest.raises(conveyor.InvalidArguments, match="'month' given twice"):
        s.bind(("2024-05",), {"month": "2024-06"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("7", "'user_id' expects int, got str '7'"),
        (True, "'user_id' expects int, got bool True"),
        (7.0, "'user_id' expects int, got float 7.0"),
        (None, "'user_id' expects int, got None"),
    ],
)
def test_a_value_of_the_wrong_type_is_refused_naming_job_parameter_and_types(
    value: Any, message: str
) -> None:
    def send(ctx: conveyor.Context, user_id: int) -> None: ...

    with pytest.raises(conveyor.InvalidArguments, match=f"job 'send': argument {message}"):
        spec(send).bind((), {"user_id": value})


def test_plain_hints_take_their_json_values_as_they_are() -> None:
    def plain(
        ctx: conveyor.Context,
        n: int,
        ratio: float,
        name: str | None,
        mode: Literal["fast", "slow"],
        extra: dict[str, Any],
        anything: Any = None,
    ) -> None: ...

    s = spec(plain)
    args = {"n": 1, "ratio": 2, "name": None, "mode": "fast", "extra": {"a": [1]}}
    assert s.bind((), args) == args
    assert roundtrip(s, **args)["ratio"] == 2.0 and isinstance(roundtrip(s, **args)["ratio"], float)
    with pytest.raises(conveyor.InvalidArguments, match="'mode' expects 'fast' or 'slow'"):
        s.bind((), {**args, "mode": "medium"})


def test_rich_values_are_stored_as_plain_json_and_rebuilt() -> None:
    def ship(
        ctx: conveyor.Context,
        order: Order,
        when: datetime,
        day: date,
        at: time,
        level: Level,
        colors: set[Color],
        pair: tuple[int, str],
        path: Path,
        posix: PurePosixPath,
        address: Address,
        amounts: Mapping[str, Decimal],
        history: Sequence[date] = (),
    ) -> None: ...

    s = spec(ship)
    order = Order(
        UUID("12345678-1234-5678-1234-567812345678"),
        datetime(2026, 5, 1, 12, 0, tzinfo=UTC),
        [Item("a-1", Decimal("9.99"), ["x"]), Item("b-2", Decimal("0.10"))],
        Color.BLUE,
    )
    args = {
        "order": order,
        "when": datetime(2026, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))),
        "day": date(2026, 5, 1),
        "at": time(9, 15, tzinfo=UTC),
        "level": Level.HIGH,
        "colors": {Color.RED},
        "pair": (1, "one"),
        "path": Path("/tmp/report.csv"),
        "posix": PurePosixPath("a/b"),
        "address": {"street": "Main 1"},
        "amounts": {"eur": Decimal("1.50")},
        "history": [date(2026, 4, 1)],
    }
    stored = s.bind((), args)
    assert stored["order"] == {
        "id": "12345678-1234-5678-1234-567812345678",
        "placed": "2026-05-01T12:00:00+00:00",
        "items": [
            {"sku": "a-1", "price": "9.99", "tags": ["x"]},
            {"sku": "b-2", "price": "0.10", "tags": []},
        ],
        "color": "blue",
    }
    assert stored["level"] == 2 and stored["colors"] == ["red"] and stored["pair"] == [1, "one"]
    assert roundtrip(s, **args) == args


def test_by_name_producers_may_send_the_json_form_and_it_is_checked() -> None:
    def ship(ctx: conveyor.Context, order: Order, when: datetime) -> None: ...

    s = spec(ship)
    good = {
        "order": {"id": "12345678-1234-5678-1234-567812345678", "placed": "2026-05-01T12:00Z",
                  "items": []},
        "when": "2026-05-01T08:30:00+02:00",
    }  # fmt: skip
    assert s.bind((), good) == good
    assert roundtrip(s, **good)["order"].color is Color.RED  # the field's default
    cases = [
        ({**good, "when": "2026-05-01T08:30:00"}, "'when' expects an aware datetime"),
        ({**good, "when": datetime(2026, 5, 1)}, "'when' expects an aware datetime"),
        (
            {**good, "order": {**good["order"], "items": [{"sku": "a", "price": 1.5}]}},
            r"'order.items\[0\].price' expects a Decimal \(as text\), got float 1.5",
        ),
        ({**good, "order": {**good["order"], "id": "nope"}}, "'order.id' expects a UUID"),
        ({**good, "order": {**good["order"], "colour": "red"}}, "unknown field"),
        ({**good, "order": {"items": []}}, r"'order.id' is missing \(Order requires it\)"),
    ]
    for args, message in cases:
        with pytest.raises(conveyor.InvalidArguments, match=message):
            s.bind((), args)


def test_a_worker_refuses_stored_arguments_that_can_never_fit() -> None:
    def send(ctx: conveyor.Context, user_id: int, color: Color = Color.RED) -> None: ...

    s = spec(send)
    with pytest.raises(conveyor.InvalidArguments, match=r"'color' expects Color \(one of 'red'"):
        s.decode({"user_id": 1, "color": "green"})
    with pytest.raises(conveyor.InvalidArguments, match="missing argument 'user_id'"):
        s.decode({})


def test_kwargs_and_positional_only_parameters() -> None:
    def flexible(ctx: conveyor.Context, first: int, /, **rest: date) -> None: ...

    s = spec(flexible)
    stored = s.bind((1,), {"due": date(2026, 1, 2)})
    assert stored == {"first": 1, "due": "2026-01-02"}
    assert s.decode(stored) == ((1,), {"due": date(2026, 1, 2)})
    with pytest.raises(conveyor.InvalidArguments, match="'other' expects a date"):
        s.bind((1,), {"other": 3})


def test_results_are_written_and_rebuilt_by_the_return_hint() -> None:
    def total(ctx: conveyor.Context) -> dict[str, Decimal]: ...

    s = spec(total)
    assert s.encode_result({"eur": Decimal("2.50")}) == {"eur": "2.50"}
    assert s.decode_result({"eur": "2.50"}) == {"eur": Decimal("2.50")}
    with pytest.raises(conveyor.InvalidResult, match=r"result\['eur'\] expects a Decimal"):
        s.encode_result({"eur": 2.5})


class Opaque:
    pass


def test_an_unsupported_hint_is_refused_at_decoration_naming_the_supported_types() -> None:
    app = conveyor.App("memory://")

    with pytest.raises(conveyor.ConfigurationError, match=r"parameter 'thing'.*Supported: str"):

        @app.job
        def keep(ctx: conveyor.Context, thing: Opaque) -> None: ...

    with pytest.raises(conveyor.ConfigurationError, match="JSON objects have text keys"):

        @app.job
        def by_number(ctx: conveyor.Context, table: dict[int, str]) -> None: ...

    @app.job(validate=False)
    def unchecked(ctx: conveyor.Context, thing: Opaque) -> None: ...

    assert unchecked.request(thing={"raw": 1}).args == {"thing": {"raw": 1}}  # type: ignore[arg-type]


def test_a_declared_schema_checks_by_name_producers() -> None:
    class SendArgs(TypedDict):
        to: str
        retries: NotRequired[int]

    @dataclass
    class Resize:
        width: int
        height: int = 0

    assert spec_of_schema("send", SendArgs).bind((), {"to": "a@b"}) == {"to": "a@b"}
    with pytest.raises(conveyor.InvalidArguments, match="job 'send': argument 'retries' expects"):
        spec_of_schema("send", SendArgs).bind((), {"to": "a@b", "retries": "3"})
    with pytest.raises(conveyor.InvalidArguments, match="missing argument 'width'"):
        spec_of_schema("resize", Resize).bind((), {"height": 2})


def test_hints_may_name_classes_of_the_scope_the_job_is_defined_in() -> None:
    app = conveyor.App("memory://")

    @dataclass(frozen=True)
    class Point:
        x: int
        y: int

    @app.job(name="plot")
    def plot(ctx: conveyor.Context, at: Point) -> Point:
        return at

    assert plot.request(Point(1, 2)).args == {"at": {"x": 1, "y": 2}}
    assert app.testing.run(plot, at={"x": 3, "y": 4}) == Point(3, 4)
