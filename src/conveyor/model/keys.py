"""Concurrency keys computed from a job's arguments: `concurrency_key="tenant:{tenant_id}"` (a
format string over the arguments) or a callable of them. Jobs that share a key never run at
the same time, across every worker (the stores hold at most one running job per key)."""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from typing import Any

from conveyor.errors import InvalidArguments, InvalidJobOptions
from conveyor.model.validation import UNIQUE_KEY_MAX, check_text

#: a key rule: a format string over the arguments by name, or a callable of the arguments
KeyRule = str | Callable[[Mapping[str, Any]], str]


def key_fields(rule: str) -> tuple[str, ...]:
    """The argument names a key template refers to; refuses positional and nested fields."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(rule))
    except ValueError as exc:
        raise InvalidJobOptions(
            f"concurrency_key {rule!r} is not a valid template: {exc}"
        ) from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise InvalidJobOptions(
                f"concurrency_key {rule!r}: each {{...}} must name one argument, as in "
                f"'tenant:{{tenant_id}}', not {{{field}}}"
            )
        names.append(field)
    return tuple(dict.fromkeys(names))


def check_key_rule(rule: object, parameters: tuple[str, ...] | None = None) -> KeyRule | None:
    """A key rule that can be applied: None, a callable, or a template whose fields are
    among `parameters` (when the job's signature is known)."""
    if rule is None or callable(rule):
        return rule
    if not isinstance(rule, str) or not rule:
        raise InvalidJobOptions(
            "concurrency_key must be a format string over the job's arguments (e.g. "
            f"'tenant:{{tenant_id}}') or a callable of them, not {rule!r}"
        )
    unknown = [
        name for name in key_fields(rule) if parameters is not None and name not in parameters
    ]
    if unknown:
        raise InvalidJobOptions(
            f"concurrency_key {rule!r} names {', '.join(unknown)}, which the job does not take "
            f"(its parameters: {', '.join(parameters or ()) or 'none'})"
        )
    return rule


def render_key(rule: KeyRule, job_name: str, args: Mapping[str, Any]) -> str:
    """The key of one job, from its stored arguments."""
    if callable(rule):
        try:
            value = rule(args)
        except Exception as exc:
            raise InvalidArguments(
                f"job {job_name!r}: its concurrency_key function raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(value, str):
            raise InvalidArguments(
                f"job {job_name!r}: its concurrency_key function must return a str, not "
                f"{type(value).__name__}"
            )
    elif "{" not in rule:
        value = rule
    else:
        missing = [name for name in key_fields(rule) if name not in args]
        if missing:
            raise InvalidArguments(
                f"job {job_name!r}: concurrency_key {rule!r} needs the argument(s) "
                f"{', '.join(missing)}, which this enqueue did not give"
            )
        value = rule.format_map(args)
    return check_text(value, "concurrency_key", UNIQUE_KEY_MAX)
