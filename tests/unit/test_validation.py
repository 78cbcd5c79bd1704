"""One validator for every entry point: bad options and arguments are refused before anything
is stored, each refusal naming what was wrong and the accepted range."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import conveyor
from conveyor import App, Context
from conveyor.errors import (
    ArgumentsNotSerializable,
    ConveyorError,
    InvalidArguments,
    InvalidJobOptions,
)
from conveyor.model.job import NewJob
from conveyor.model.validation import MAX_NESTING, check_arguments


@pytest.fixture
def app() -> Iterator[App]:
    app = App("memory://")

    @app.job
    def echo(ctx: Context, **args: Any) -> None:
        return None

    yield app
    app.close()


BAD_OPTIONS: list[tuple[dict[str, Any], str]] = [
    ({"priority": "high"}, r"priority must be an integer from -1000000 to 1000000, not str"),
    ({"priority": True}, "priority must be an integer"),
    ({"priority": 10**7}, "priority must be from -1000000 to 1000000"),
    ({"priority": 1.5}, "priority must be an integer"),
    ({"max_attempts": 0}, "max_attempts must be from 1 to 1000"),
    ({"max_attempts": "3"}, "max_attempts must be an integer"),
    ({"timeout": 0}, "timeout must be a finite number of seconds, more than 0"),
    ({"timeout": math.inf}, "timeout must be a finite number"),
    ({"timeout": "5"}, "timeout must be a number of seconds"),
    ({"delay": -1}, "delay must be a finite number of seconds, 0 and at most"),
    ({"delay": math.nan}, "delay must be a finite number"),
    ({"delay": 400 * 86400}, r"delay must be at most 31622400 s \(366 days\)"),
    ({"run_at": datetime(2030, 1, 1)}, "run_at must be timezone-aware"),
    ({"run_at": "tomorrow"}, "run_at must be a datetime"),
    ({"queue": "a/b"}, "queue 'a/b' is not a valid queue name"),
    ({"queue": "bell\x07"}, "is not a valid queue name"),
    ({"queue": ""}, "is not a valid queue name"),
    ({"queue": 7}, "queue must be a string"),
    ({"unique_key": ""}, "unique_key must be 1 to 500 characters"),
    ({"unique_key": "k\x00"}, r"NUL character"),
    ({"unique_key": "k\ud800"}, "lone surrogate"),
    ({"metadata": {"a": 1}}, "metadata must map strings to strings"),
    ({"metadata": ["a"]}, "metadata must be a dict of str to str, not list"),
    ({"metadata": {"a": "b\x00"}}, "NUL character"),
    ({"colour": "red"}, r"unknown job option\(s\): colour; the options are"),
]


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS, ids=lambda v: repr(v)[:40])
def test_with_options_refuses_a_bad_option_at_once(
    app: App, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidJobOptions, match=message):
        app.enqueue("echo", {}, **options)
    assert app.jobs.counts().by_state == {}


@pytest.mark.parametrize(("options", "message"), BAD_OPTIONS[:6], ids=lambda v: repr(v)[:40])
def test_a_job_function_refuses_the_same_options(
    app: App, options: dict[str, Any], message: str
) -> None:
    @app.job
    def typed(ctx: Context, n: int = 0) -> int:
        return n

    with pytest.raises(InvalidJobOptions, match=message):
        typed.with_options(**options)


def test_the_refusals_are_conveyor_errors() -> None:
    assert issubclass(InvalidJobOptions, conveyor.ConfigurationError)
    assert issubclass(InvalidArguments, ConveyorError)
    assert issubclass(ArgumentsNotSerializable, InvalidArguments)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


BAD_ARGS: list[tuple[Any, type[Exception], str]] = [
    ([1, 2], InvalidArguments, "must be a dict of names to values, not list"),
    ({"n": 2**63}, InvalidArguments, r"args.n is 9223372036854775808, beyond 64-bit integers"),
    ({"n": [-(2**63) - 1]}, InvalidArguments, "beyond 64-bit"),
    ({"d": nested(MAX_NESTING + 1)}, InvalidArguments, "nested deeper than 32 levels"),
    ({"s": "a\x00b"}, InvalidArguments, r"args.s: it contains a NUL character"),
    ({"s": "\udfff"}, InvalidArguments, "lone surrogate"),
    ({"k\x00": 1}, InvalidArguments, "NUL character"),
    ({"x": {1: 2}}, ArgumentsNotSerializable, "keys must be strings"),
    ({"x": math.nan}, ArgumentsNotSerializable, "NaN"),
    ({"x": object()}, ArgumentsNotSerializable, "a object"),
]


@pytest.mark.parametrize(("args", "error", "message"), BAD_ARGS, ids=lambda v: repr(v)[:30])
def test_bad_arguments_are_refused_naming_the_path(
    app: App, args: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        app.enqueue("echo", args)
    assert app.jobs.counts().by_state == {}


def test_values_at_the_edges_are_accepted_and_round_trip(app: App) -> None:
    args = {
        "big": 2**63 - 1,
        "small": -(2**63),
        "deep": nested(MAX_NESTING - 1),
        "text": "naïve ☃ \U0001f600",
        "f": 1.5,
    }
    job = app.enqueue("echo", args, priority=1_000_000, max_attempts=1000, queue="a.b:c-d").job
    assert app.jobs.get(job.id).args == args  # type: ignore[union-attr]
    assert check_arguments(args) is args


def test_a_bulk_enqueue_checks_every_request_before_storing_any(app: App) -> None:
    now = datetime.now(UTC)
    good = NewJob("echo")
    bad = [
        NewJob("echo", priority="high"),  # type: ignore[arg-type]
        NewJob("echo", args={"s": "\x00"}),
        NewJob("echo", run_at=now + timedelta(days=400)),
        NewJob("", queue="default"),
    ]
    for request in bad:
        with pytest.raises((InvalidJobOptions, InvalidArguments)):
            app.enqueue_many([good, request])
    assert app.jobs.counts().by_state == {}


async def test_the_async_path_checks_the_same(app: App) -> None:
    with pytest.raises(InvalidJobOptions, match="priority"):
        await app.enqueue_many_async([NewJob("echo", priority=2.5)])  # type: ignore[arg-type]
    with pytest.raises(InvalidArguments, match="NUL"):
        await app.enqueue_async("echo", {"s": "\x00"})


def test_queue_declarations_use_the_same_pattern(app: App) -> None:
    with pytest.raises(InvalidJobOptions, match="not a valid queue name"):
        app.queue("a/b", concurrency=1)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "postgresql://postgres@127.0.0.1:5432/test?foo=bar",
            r"unknown option\(s\) 'foo'.*sslmode",
        ),
        ("sqlite:///jobs.db?timeout=5", "the sqlite store takes none"),
        ("memory://?size=3", "the memory store takes none"),
    ],
)
def test_unknown_store_url_options_are_named(url: str, message: str) -> None:
    from conveyor.backends import open_backend
    from conveyor.errors import ConfigurationError
    from conveyor.model.settings import Settings

    with pytest.raises(ConfigurationError, match=message):
        open_backend(url, Settings())


@pytest.mark.parametrize("text", ["a\x00", "\ud800"])
@pytest.mark.parametrize("field", ["name", "queue", "search"])
def test_list_filters_a_store_cannot_hold_are_refused(app: App, field: str, text: str) -> None:
    from conveyor.errors import InvalidFilter

    with pytest.raises(InvalidFilter, match=f"the {field} filter"):
        app.jobs.list(**{field: text})


def test_a_bulk_request_of_unhashable_names_or_queues_is_refused_clearly(app: App) -> None:
    for request in (NewJob(["echo"]), NewJob("echo", queue=["q"])):  # type: ignore[arg-type]
        with pytest.raises(InvalidJobOptions, match="must be a string"):
            app.enqueue_many([request])
