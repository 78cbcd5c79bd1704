"""Rate limits: at most N jobs started in any window of a second, a minute or an hour,
fleet-wide (`app.queue("partner-api", rate_limit="100/m")`, `@app.job(rate_limit="10/s",
rate_key="tenant:{tenant_id}")`).

A rate's state is its window: the start times of its latest N starts, kept in the store (one
row per queue or key) and changed only inside a claim, under the claim's lock. The rules are
here, pure, and every store calls them:

- `room`: how many more starts the window allows at `now`: N less the kept starts after
  `now - window`. Counting every kept start after that instant, also those a worker with a
  clock slightly ahead recorded "later", keeps the promise for any order of claims: of N+1
  starts inside one window, the last one admitted would have seen the N others.
- `record`: the window after `n` starts at `now`: the N latest starts are all it needs (if N
  starts fall after an instant, the N latest do).
- `full_until`: when a full window next allows a start (its oldest kept start plus the
  window), which the claim hands back as the worker's wake-up time, like a scheduled job's
  `run_at`: a job over the limit stays pending and is claimed when the window allows, with no
  polling in between.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from conveyor.model.validation import parse_rate_limit

__all__ = [
    "Bucket",
    "Rate",
    "full_until",
    "held_back",
    "key_bucket",
    "queue_bucket",
    "record",
    "room",
    "rooms",
]

#: a window's identity in the store: ("queue", name) for a queue's rate, ("key", rate_key)
#: for a job's
Bucket = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Rate:
    """A parsed rate limit: at most `count` starts in any `window` seconds."""

    count: int
    window: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """The rate a (checked) "N/s|m|h" text says; InvalidJobOptions when it is not one."""
        count, window = parse_rate_limit(text)
        return cls(count, window)


def queue_bucket(queue: str) -> Bucket:
    """The window of a queue's rate limit."""
    return ("queue", queue)


def key_bucket(rate_key: str) -> Bucket:
    """The window of the jobs sharing a `rate_key`."""
    return ("key", rate_key)


def room(starts: Sequence[float], rate: Rate, now: float) -> int:
    """How many more jobs may start at `now` (epoch seconds) under `rate`, given the kept
    start times of its window."""
    since = now - rate.window
    return max(rate.count - sum(1 for started in starts if started > since), 0)


def record(starts: Iterable[float], rate: Rate, now: float, n: int) -> tuple[float, ...]:
    """The window after `n` more starts at `now`: the `rate.count` latest starts, oldest
    first."""
    kept = sorted([*starts, *([now] * n)])
    return tuple(kept[-rate.count :])


def full_until(starts: Sequence[float], rate: Rate) -> float | None:
    """Until when a window allows no start (None: it has room at any time from now on): the
    window is full while its `rate.count`-th latest start is inside it. `starts` oldest first,
    as `record` leaves them (more than `rate.count` when an operator lowered the rate)."""
    if len(starts) < rate.count:
        return None
    return starts[-rate.count] + rate.window


def rooms(
    windows: Mapping[Bucket, Sequence[float]], rates: Mapping[Bucket, Rate], now: float
) -> dict[Bucket, int]:
    """The room of each rate-limited bucket at `now` (a bucket with no window yet: its whole
    rate)."""
    return {bucket: room(windows.get(bucket, ()), rate, now) for bucket, rate in rates.items()}


def held_back(due: int, by_key: int, by_own_rate: int, queue_spent: bool) -> tuple[int, int]:
    """How many of a queue's `due` jobs a key's limit and a rate hold back now: (by key, by
    rate). `by_key`: due jobs whose key runs as many as its limit; `by_own_rate`: due jobs
    whose own rate window is spent; a spent queue window holds every due job. A job held by
    both is counted in both."""
    return by_key, due if queue_spent else by_own_rate
