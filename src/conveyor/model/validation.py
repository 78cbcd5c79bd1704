"""The one validator of what a job may be: every entry point (the Python API, the CLI, the REST
API) and every store accept exactly the same jobs, because they all come through here.

Limits (documented in docs/guide.md, "What a job may hold"):

- priority: an integer from PRIORITY_MIN to PRIORITY_MAX (higher runs first);
- max_attempts: an integer from 1 to MAX_ATTEMPTS;
- timeout: a finite number of seconds, more than 0 and at most MAX_HORIZON;
- delay: a finite number of seconds from 0 to MAX_HORIZON; run_at: an aware datetime at most
  MAX_HORIZON ahead (a past run_at is due at once);
- queue names: QUEUE_NAME_PATTERN (1 to 200 characters, no `/`, no control characters), the
  pattern the API's queue routes accept;
- job names and unique keys: 1 to 200 (keys: 500) characters;
- metadata: a dict of str to str;
- args: a dict with str keys of JSON values (str, int, float, bool, None, lists, dicts),
  integers within 64 bits, nested at most MAX_NESTING deep;
- queue settings (`check_queue_settings`): concurrency an integer from 1 to MAX_QUEUE_CONCURRENCY
  or None, max_size an integer from 1 to MAX_QUEUE_SIZE or None, when_full "wait" or "refuse";
- all text: no NUL character and no lone surrogate (PostgreSQL cannot store either, and every
  store must accept the same inputs).

Refusals are InvalidJobOptions (an option), InvalidArguments (the args) or InvalidQueueSettings
(a queue's settings), each naming what was wrong and the accepted range.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from conveyor.errors import (
    ArgumentsNotSerializable,
    InvalidArguments,
    InvalidJobOptions,
    InvalidQueueSettings,
)
from conveyor.model.job import Job, NewJob
from conveyor.model.queues import SETTING_FIELDS, QueueSettings

PRIORITY_MIN, PRIORITY_MAX = -1_000_000, 1_000_000
MAX_ATTEMPTS = 1_000
MAX_HORIZON = timedelta(days=366)
MAX_NESTING = 32
NAME_MAX, UNIQUE_KEY_MAX = 200, 500
QUEUE_NAME_PATTERN = r"^[^\x00-\x1f\x7f/]{1,200}$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_QUEUE_CONCURRENCY = 100_000
MAX_QUEUE_SIZE = 1_000_000_000
MAX_KEY_CONCURRENCY = 10_000
MAX_RATE_COUNT = 1_000_000
#: the length of a rate limit's window by its unit: "100/m" is 100 starts in any 60 s
RATE_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
#: N from 1 to MAX_RATE_COUNT, no leading zero (the API's schema uses the same pattern)
RATE_PATTERN = r"^\s*([1-9][0-9]{0,5}|1000000)\s*/\s*(s|m|h)\s*$"
_RATE = re.compile(RATE_PATTERN)
WHEN_FULL = ("wait", "refuse")

_QUEUE_NAME = re.compile(QUEUE_NAME_PATTERN)
_HORIZON_SECONDS = MAX_HORIZON.total_seconds()


# text --------------------------------------------------------------------------------------------
def text_problem(text: str) -> str | None:
    """Why a store could not hold `text` (a NUL or a lone surrogate), or None."""
    if "\x00" in text:
        return "it contains a NUL character (\\u0000)"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "it contains a lone surrogate (text that is not valid Unicode)"
    return None


def check_text(text: object, what: str, limit: int) -> str:
    """`text` if it is a str of 1 to `limit` characters a store can hold; else
    InvalidJobOptions naming `what`."""
    if not isinstance(text, str):
        raise InvalidJobOptions(f"{what} must be a string, not {type(text).__name__}")
    if not 1 <= len(text) <= limit:
        raise InvalidJobOptions(f"{what} must be 1 to {limit} characters, not {len(text)}")
    problem = text_problem(text)
    if problem:
        raise InvalidJobOptions(f"{what} {text!r} cannot be stored: {problem}")
    return text


# options -----------------------------------------------------------------------------------------
def _integer(value: object, what: str, low: int, high: int) -> int:
    if type(value) is not int:  # bool is an int subclass, and never meant here
        raise InvalidJobOptions(
            f"{what} must be an integer from {low} to {high}, not {type(value).__name__} {value!r}"
        )
    if not low <= value <= high:
        raise InvalidJobOptions(f"{what} must be from {low} to {high}, not {value}")
    return value


def _seconds(value: object, what: str, *, zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidJobOptions(
            f"{what} must be a number of seconds, not {type(value).__name__} {value!r}"
        )
    low = "0" if zero else "more than 0"
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero):
        raise InvalidJobOptions(
            f"{what} must be a finite number of seconds, {low} and at most "
            f"{_HORIZON_SECONDS:.0f} ({MAX_HORIZON.days} days), not {value}"
        )
    if value > _HORIZON_SECONDS:
        raise InvalidJobOptions(
            f"{what} must be at most {_HORIZON_SECONDS:.0f} s ({MAX_HORIZON.days} days), "
            f"not {value}"
        )
    return float(value)


def is_valid_name(name: object) -> bool:
    """Whether `name` can name a queue or a recurring job: QUEUE_NAME_PATTERN, and text
    every store can hold (such names appear in the API's and the dashboard's paths)."""
    return isinstance(name, str) and bool(_QUEUE_NAME.match(name)) and not text_problem(name)


QUEUE_NAME_HINT = (
    "use 1 to 200 characters, no '/' and no control characters, e.g. 'emails' or 'reports.daily'"
)


def check_queue(name: object) -> str:
    """A queue name that matches QUEUE_NAME_PATTERN, or InvalidJobOptions."""
    if not isinstance(name, str):
        raise InvalidJobOptions(f"queue must be a string, not {type(name).__name__}")
    if not is_valid_name(name):
        raise InvalidJobOptions(f"queue {name!r} is not a valid queue name: {QUEUE_NAME_HINT}")
    return name


# queue settings ----------------------------------------------------------------------------------
def _queue_limit(value: object, what: str, high: int) -> int | None:
    if value is None:
        return None
    if type(value) is not int:  # bool is an int subclass, and never meant here
        raise InvalidQueueSettings(
            f"{what} must be an integer from 1 to {high}, or none (no limit), "
            f"not {type(value).__name__} {value!r}"
        )
    if not 1 <= value <= high:
        raise InvalidQueueSettings(f"{what} must be from 1 to {high}, or none, not {value}")
    return value


def check_queue_setting(name: str, value: object) -> Any:
    """One queue setting's value, checked (see `check_queue_settings`); InvalidQueueSettings
    for an unknown setting or a value out of range."""
    if name == "concurrency":
        return _queue_limit(value, "concurrency", MAX_QUEUE_CONCURRENCY)
    if name == "max_size":
        return _queue_limit(value, "max_size", MAX_QUEUE_SIZE)
    if name == "when_full":
        if value not in WHEN_FULL or not isinstance(value, str):
            raise InvalidQueueSettings(f"when_full must be 'wait' or 'refuse', not {value!r}")
        return value
    if name == "rate_limit":
        try:
            return check_rate_limit(value)
        except InvalidJobOptions as exc:
            raise InvalidQueueSettings(str(exc)) from None
    raise InvalidQueueSettings(
        f"unknown queue setting {name!r}; the settings are {', '.join(SETTING_FIELDS)}"
    )


def check_queue_changes(values: Mapping[str, object]) -> dict[str, Any]:
    """Settings an operator changes, each checked; the one check of the CLI, the REST API and
    the dashboard."""
    return {name: check_queue_setting(name, value) for name, value in values.items()}


def check_queue_settings(
    concurrency: object = None,
    max_size: object = None,
    when_full: object = "wait",
    rate_limit: object = None,
) -> QueueSettings:
    """A queue's settings: `concurrency` an integer from 1 to MAX_QUEUE_CONCURRENCY or None
    (only the workers' slots limit it), `max_size` an integer from 1 to MAX_QUEUE_SIZE or None
    (no bound), `when_full` "wait" or "refuse", `rate_limit` "N/s|m|h" or None (no rate);
    InvalidQueueSettings naming the one wrong."""
    values = check_queue_changes(
        {
            "concurrency": concurrency,
            "max_size": max_size,
            "when_full": when_full,
            "rate_limit": rate_limit,
        }
    )
    return QueueSettings(**values)


def queue_settings_from_config(value: object, where: str) -> QueueSettings:
    """A queue's settings as a framework's configuration gives them: a concurrency limit (an
    int, or None), or a mapping of settings (concurrency, max_size, when_full); `where` names
    the entry in the refusal (InvalidQueueSettings)."""
    if value is None or (type(value) is int):
        return check_queue_settings(concurrency=value)
    if isinstance(value, Mapping):
        unknown = sorted(str(k) for k in value if k not in SETTING_FIELDS)
        if unknown:
            raise InvalidQueueSettings(
                f"{where}: unknown queue setting(s) {', '.join(unknown)}; "
                f"the settings are {', '.join(SETTING_FIELDS)}"
            )
        try:
            return check_queue_settings(**value)
        except InvalidQueueSettings as exc:
            raise InvalidQueueSettings(f"{where}: {exc}") from None
    raise InvalidQueueSettings(
        f"{where} must be a concurrency limit (int) or None, or a mapping of queue settings "
        f"({', '.join(SETTING_FIELDS)}), got {value!r}"
    )


def check_key_concurrency(value: object) -> int:
    """How many jobs of one concurrency key may run at once: an integer from 1 to
    MAX_KEY_CONCURRENCY, or InvalidJobOptions."""
    return _integer(value, "key_concurrency", 1, MAX_KEY_CONCURRENCY)


def parse_rate_limit(value: object, what: str = "rate_limit") -> tuple[int, float]:
    """The one check of the "N/s", "N/m", "N/h" syntax (at most N starts in any window of a
    second, a minute, an hour; N from 1 to MAX_RATE_COUNT): (N, window in seconds), or
    InvalidJobOptions naming `what`."""
    found = _RATE.match(value) if isinstance(value, str) else None
    if found is None:
        raise InvalidJobOptions(
            f"{what} must be a rate like '10/s', '100/m' or '1000/h' (at most N jobs started "
            f"in any second, minute or hour; N from 1 to {MAX_RATE_COUNT}), not {value!r}"
        )
    count = int(found.group(1))
    if not 1 <= count <= MAX_RATE_COUNT:
        raise InvalidJobOptions(f"{what}: N must be from 1 to {MAX_RATE_COUNT}, not {count}")
    return count, RATE_UNITS[found.group(2)]


def check_rate_limit(value: object, what: str = "rate_limit") -> str | None:
    """None (no rate limit) or a rate limit in its canonical spelling ("100/m"), checked by
    `parse_rate_limit`."""
    if value is None:
        return None
    count, window = parse_rate_limit(value, what)
    unit = next(u for u, seconds in RATE_UNITS.items() if seconds == window)
    return f"{count}/{unit}"


def check_job_rate(rate_limit: object, rate_key: object) -> None:
    """A stored job's rate: both a rate limit and the key of its window, or neither."""
    if rate_limit is None or rate_key is None:
        raise InvalidJobOptions("a job's rate_limit and rate_key come together, or neither")
    check_rate_limit(rate_limit)
    check_text(rate_key, "rate_key", UNIQUE_KEY_MAX)


def check_priority(value: object) -> int:
    """A priority in range, or InvalidJobOptions."""
    return _integer(value, "priority", PRIORITY_MIN, PRIORITY_MAX)


def check_max_attempts(value: object) -> int:
    """A max_attempts in range, or InvalidJobOptions."""
    return _integer(value, "max_attempts", 1, MAX_ATTEMPTS)


def check_timeout(value: object) -> float | None:
    """None (no timeout) or a finite number of seconds > 0, or InvalidJobOptions."""
    return None if value is None else _seconds(value, "timeout", zero=False)


def check_delay(value: object) -> float | None:
    """None or a finite number of seconds from 0 to MAX_HORIZON, or InvalidJobOptions."""
    return None if value is None else _seconds(value, "delay", zero=True)


def check_run_at(value: object, now: datetime | None = None) -> datetime | None:
    """None or an aware datetime (at most MAX_HORIZON after `now`, when given)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        raise InvalidJobOptions(f"run_at must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidJobOptions(
            "run_at must be timezone-aware, e.g. datetime.now(UTC) + timedelta(minutes=5)"
        )
    if now is not None and value - now > MAX_HORIZON:
        raise InvalidJobOptions(
            f"run_at {value.isoformat()} is more than {MAX_HORIZON.days} days ahead: "
            "schedule it closer, or enqueue it later (a recurring job can)"
        )
    return value


def check_unique_key(value: object) -> str | None:
    """None or a key of 1 to UNIQUE_KEY_MAX characters a store can hold."""
    return None if value is None else check_text(value, "unique_key", UNIQUE_KEY_MAX)


def check_metadata(value: object) -> dict[str, str]:
    """A dict of str to str that a store can hold, or InvalidJobOptions."""
    if not isinstance(value, dict):
        raise InvalidJobOptions(
            f"metadata must be a dict of str to str, not {type(value).__name__}"
        )
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise InvalidJobOptions(
                f"metadata must map strings to strings: {key!r}: {item!r} is "
                f"{type(key).__name__}: {type(item).__name__}"
            )
        problem = text_problem(key) or text_problem(item)
        if problem:
            raise InvalidJobOptions(f"metadata {key!r} cannot be stored: {problem}")
    return value


#: How many jobs one job may wait on (a fan-in wider than this is a group of groups).
MAX_PARENTS = 10_000
_ID_LENGTH_MAX = 200


def check_after(value: object) -> tuple[str, ...]:
    """The ids a job waits on: job ids (text) or anything with an `id` (a JobHandle, a Job),
    in order, repeats dropped."""
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidJobOptions(
            f"after must be a list of job ids or job handles, not {type(value).__name__}"
        )
    ids: dict[str, None] = {}
    for item in value:
        job_id = getattr(item, "id", item)
        if not isinstance(job_id, str) or not job_id or len(job_id) > _ID_LENGTH_MAX:
            raise InvalidJobOptions(
                f"after holds {item!r}: give job ids (text) or job handles of enqueued jobs"
            )
        ids[job_id] = None
    if len(ids) > MAX_PARENTS:
        raise InvalidJobOptions(
            f"a job may wait on at most {MAX_PARENTS} jobs, not {len(ids)}: wait on a step "
            "that itself waits on the rest"
        )
    return tuple(ids)


def check_failure_policy(value: object) -> str:
    """on_parent_failure: "cancel" (the default) or "run"."""
    if value not in ("cancel", "run"):
        raise InvalidJobOptions(f'on_parent_failure must be "cancel" or "run", not {value!r}')
    return str(value)


def check_dependencies(job: NewJob) -> None:
    """The workflow fields of a request: its `after` ids, its failure policy, its step name."""
    check_after(job.after)
    check_failure_policy(job.on_parent_failure)
    if job.step is not None:
        check_text(job.step, "the step name", NAME_MAX)
    if job.workflow_id is not None:
        check_text(job.workflow_id, "the workflow id", _ID_LENGTH_MAX)
    if (job.after or job.workflow_id is not None) and job.unique_key is not None:
        raise InvalidJobOptions(
            "workflow steps and jobs that wait on other jobs (after=) cannot carry a "
            "unique_key: drop it, or de-duplicate with a plain job that enqueues the workflow"
        )


def check_new_job(job: NewJob, now: datetime) -> None:
    """Refuse a request no store should keep (InvalidJobOptions or InvalidArguments), before
    anything is stored: every enqueue path calls this for every job of a batch. On the
    enqueue hot path, so the usual job (a known name and queue, default options) takes the
    short way: plain type and range tests, and the names already seen."""
    if type(job.name) is not str or job.name not in _SEEN_NAMES:
        check_text(job.name, "the job name", NAME_MAX)
        _remember(_SEEN_NAMES, job.name)
    if type(job.queue) is not str or job.queue not in _SEEN_QUEUES:
        check_queue(job.queue)
        _remember(_SEEN_QUEUES, job.queue)
    priority, attempts = job.priority, job.max_attempts
    if type(priority) is not int or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
        check_priority(priority)
    if type(attempts) is not int or not 1 <= attempts <= MAX_ATTEMPTS:
        check_max_attempts(attempts)
    if job.timeout is not None:
        check_timeout(job.timeout)
    if job.run_at is not None:
        check_run_at(job.run_at, now)
    if job.unique_key is not None:
        check_unique_key(job.unique_key)
    if job.metadata or type(job.metadata) is not dict:
        check_metadata(job.metadata)
    if job.concurrency_key is not None:
        check_text(job.concurrency_key, "concurrency_key", UNIQUE_KEY_MAX)
    if job.key_concurrency != 1 or type(job.key_concurrency) is not int:
        check_key_concurrency(job.key_concurrency)
    if job.rate_limit is not None or job.rate_key is not None:
        check_job_rate(job.rate_limit, job.rate_key)
    if job.recurring_name is not None:
        check_text(job.recurring_name, "recurring_name", NAME_MAX)
    if job.after or job.workflow_id is not None or job.on_parent_failure != "cancel":
        check_dependencies(job)
    check_arguments(job.args)


#: Names and queues that passed their check (bounded: a flood of distinct ones is still checked).
_SEEN_NAMES: set[str] = set()
_SEEN_QUEUES: set[str] = set()
_SEEN_MAX = 10_000


def _remember(seen: set[str], value: str) -> None:
    if len(seen) < _SEEN_MAX:
        seen.add(value)


def stored_job_problem(job: Job) -> str | None:
    """Why a job read back from a store cannot be run (a field of the wrong type), or None.
    Cheap: only the types a worker relies on are looked at, not the ranges."""
    if type(job.priority) is not int:
        return f"priority is {job.priority!r}, not an integer"
    if type(job.max_attempts) is not int or type(job.attempt) is not int:
        return f"attempt/max_attempts are {job.attempt!r}/{job.max_attempts!r}, not integers"
    if job.timeout is not None and type(job.timeout) not in (int, float):
        return f"timeout is {job.timeout!r}, not a number"
    if type(job.args) is not dict:
        return f"args are a {type(job.args).__name__}, not a dict"
    if type(job.metadata) is not dict:
        return f"metadata is a {type(job.metadata).__name__}, not a dict"
    return None


# arguments ---------------------------------------------------------------------------------------
# Values that need no closer look: the common flat case is checked without building paths.
_PLAIN = frozenset({int, bool, type(None)})


def check_arguments(args: object) -> dict[str, Any]:
    """`args` if it is a dict of JSON values a store can hold; InvalidArguments (or its
    ArgumentsNotSerializable, for a value JSON cannot encode) naming the first bad path."""
    if not isinstance(args, dict):
        raise InvalidArguments(
            f"job arguments must be a dict of names to values, not {type(args).__name__}: "
            "pass keyword arguments, e.g. enqueue(user_id=42)"
        )
    for key, value in args.items():
        kind = type(value)
        if type(key) is not str or not key.isascii() or "\x00" in key:
            break
        if kind is str:
            if not value.isascii() or "\x00" in value:
                break
        elif kind is int:
            if not INT64_MIN <= value <= INT64_MAX:
                break
        elif kind not in _PLAIN:
            break
    else:
        return args
    problem = find_problem(args, "args", 0)
    if problem:
        text, unencodable = problem
        if unencodable:
            raise ArgumentsNotSerializable(
                f"job arguments must be JSON-encodable, but {text} is not: "
                "pass plain values (str, int, float, bool, None, lists, dicts) such as ids, or "
                "give the parameter a type hint Conveyor stores (dataclasses, Enum, datetime, "
                "UUID, Decimal, Path...: docs/typed-jobs.md)"
            )
        raise InvalidArguments(f"job arguments cannot be stored: {text}")
    return args


def result_problem(value: Any) -> str | None:
    """Why a job's return value cannot be stored (the same rules as arguments), or None. Cheap
    for the usual results (None, a number, short ASCII text)."""
    kind = type(value)
    if value is None or kind is bool or (kind is str and value.isascii() and "\x00" not in value):
        return None
    problem = find_problem(value, "result", 0)
    if problem is None:
        return None
    text, unencodable = problem
    if unencodable:
        return (
            f"the return value cannot be stored as JSON: {text} is not encodable; "
            "return plain values (str, int, float, bool, None, lists, dicts)"
        )
    return f"the return value cannot be stored: {text}"


def find_problem(value: Any, path: str, depth: int) -> tuple[str, bool] | None:
    """The first value under `path` a store cannot hold, described, and whether it is one JSON
    cannot encode at all (True) or a JSON value out of the stores' range (False); None if all
    is fine."""
    if isinstance(value, str):
        problem = text_problem(value)
        return (f"{path}: {problem}", False) if problem else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{path} is {value}, beyond 64-bit integers: pass it as a string", False
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{path} ({'NaN' if value != value else value})", True
        return None
    if isinstance(value, dict | list | tuple) and depth >= MAX_NESTING:
        return f"{path} is nested deeper than {MAX_NESTING} levels: flatten it", False
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (
                    f"{path} (key {key!r} of type {type(key).__name__}; keys must be strings)",
                    True,
                )
            problem = text_problem(key)
            if problem:
                return f"{path} key {key!r}: {problem}", False
            found = find_problem(item, f"{path}.{key}", depth + 1)
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_problem(item, f"{path}[{index}]", depth + 1)
            if found:
                return found
        return None
    return f"{path} (a {type(value).__name__})", True
