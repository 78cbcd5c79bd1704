"""Concurrency keys computed from a job's arguments: `concurrency_key="tenant:{tenant_id}"` (a
format string over the arguments) or a callable of them. At most `key_concurrency` jobs (by
default 1) that share a key run at the same time, across every worker: each store counts the
running jobs of a key in its claim and asks `has_key_room`/`choose_claimable` which
candidates it may take."""

from __future__ import annotations

import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from conveyor.errors import InvalidArguments, InvalidJobOptions
from conveyor.model.rates import Bucket
from conveyor.model.validation import UNIQUE_KEY_MAX, check_text

#: a key rule: a format string over the arguments by name, or a callable of the arguments
KeyRule = str | Callable[[Mapping[str, Any]], str]


def key_fields(rule: str, what: str = "concurrency_key") -> tuple[str, ...]:
    """The argument names a key template refers to; refuses positional and nested fields."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(rule))
    except ValueError as exc:
        raise InvalidJobOptions(f"{what} {rule!r} is not a valid template: {exc}") from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise InvalidJobOptions(
                f"{what} {rule!r}: each {{...}} must name one argument, as in "
                f"'tenant:{{tenant_id}}', not {{{field}}}"
            )
        names.append(field)
    return tuple(dict.fromkeys(names))


def check_key_rule(
    rule: object, parameters: tuple[str, ...] | None = None, what: str = "concurrency_key"
) -> KeyRule | None:
    """A key rule that can be applied: None, a callable, or a template whose fields are
    among `parameters` (when the job's signature is known)."""
    if rule is None or callable(rule):
        return rule
    if not isinstance(rule, str) or not rule:
        raise InvalidJobOptions(
            f"{what} must be a format string over the job's arguments (e.g. "
            f"'tenant:{{tenant_id}}') or a callable of them, not {rule!r}"
        )
    unknown = [
        name for name in key_fields(rule, what) if parameters is not None and name not in parameters
    ]
    if unknown:
        raise InvalidJobOptions(
            f"{what} {rule!r} names {', '.join(unknown)}, which the job does not take "
            f"(its parameters: {', '.join(parameters or ()) or 'none'})"
        )
    return rule


def render_key(
    rule: KeyRule, job_name: str, args: Mapping[str, Any], what: str = "concurrency_key"
) -> str:
    """The key of one job, from its stored arguments."""
    if callable(rule):
        try:
            value = rule(args)
        except Exception as exc:
            raise InvalidArguments(
                f"job {job_name!r}: its {what} function raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(value, str):
            raise InvalidArguments(
                f"job {job_name!r}: its {what} function must return a str, not "
                f"{type(value).__name__}"
            )
    elif "{" not in rule:
        value = rule
    else:
        missing = [name for name in key_fields(rule, what) if name not in args]
        if missing:
            raise InvalidArguments(
                f"job {job_name!r}: {what} {rule!r} needs the argument(s) "
                f"{', '.join(missing)}, which this enqueue did not give"
            )
        value = rule.format_map(args)
    return check_text(value, what, UNIQUE_KEY_MAX)


def has_key_room(running: int, key_concurrency: int) -> bool:
    """Whether a job whose key already has `running` jobs running (or claimed in this claim)
    may start, under its own `key_concurrency`. A key's jobs are meant to share one limit;
    when they do not, each job is held to its own, counting every running job of the key."""
    return running < key_concurrency


#: a claim candidate as the SQL stores read it: (id, concurrency_key, key_concurrency, the rate
#: windows its start counts in)
Candidate = tuple[str, str | None, int, tuple[Bucket, ...]]


def choose_claimable(
    candidates: Iterable[Candidate],
    limit: int,
    running: Mapping[str, int],
    rooms: Mapping[Bucket, int] | None = None,
) -> list[str]:
    """The ids a claim takes from `candidates` (in claim order): at most `limit`, passing
    over a job whose key has no room left given `running` (running jobs per key) and the
    jobs chosen before it, and a job one of whose rate windows has no room left (`rooms`:
    the starts each window still allows now, `model/rates.py`). The candidates' order is
    kept, so a busy key or a spent rate never holds up the others: their jobs are skipped,
    not waited for."""
    chosen: list[str] = []
    taken: dict[str, int] = {}
    left = dict(rooms or {})
    for job_id, key, key_concurrency, buckets in candidates:
        if key is not None:
            count = running.get(key, 0) + taken.get(key, 0)
            if not has_key_room(count, key_concurrency):
                continue
        if buckets and any(left.get(bucket, 0) <= 0 for bucket in buckets):
            continue
        if key is not None:
            taken[key] = taken.get(key, 0) + 1
        for bucket in buckets:
            left[bucket] -= 1
        chosen.append(job_id)
        if len(chosen) == limit:
            break
    return chosen
