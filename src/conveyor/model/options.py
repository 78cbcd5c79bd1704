"""Job options and the retry backoff policy (pure functions)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypedDict

from conveyor.errors import ConfigurationError, InvalidJobOptions
from conveyor.model.keys import KeyRule, check_key_rule
from conveyor.model.validation import (
    check_after,
    check_delay,
    check_failure_policy,
    check_key_concurrency,
    check_max_attempts,
    check_metadata,
    check_priority,
    check_queue,
    check_rate_limit,
    check_run_at,
    check_timeout,
    check_unique_key,
)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff: `base * 2**(attempt-1)` seconds, capped at `max`, with jitter.

    `jitter` is the fraction of the delay drawn at random (0.1 = up to ±10 %), so that jobs that
    failed together do not all come back in the same instant.
    """

    base: float = 1.0
    max: float = 300.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.base < 0 or self.max < 0:
            raise ConfigurationError("backoff base and max must be zero or more seconds")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError("backoff jitter must be between 0 and 1")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before the attempt after `attempt` (1-based)."""
        raw = min(self.base * 2 ** max(attempt - 1, 0), self.max)
        if self.jitter and raw:
            spread = raw * self.jitter
            raw += (rng or random).uniform(-spread, spread)
        return float(max(min(raw, self.max), 0.0))


@dataclass(frozen=True, slots=True)
class JobOptions:
    """How a job is enqueued and run; set on @app.job and overridden by with_options()."""

    queue: str = "default"
    priority: int = 0
    max_attempts: int = 3
    timeout: float | None = None
    backoff: Backoff = field(default_factory=Backoff)
    delay: float | None = None
    run_at: datetime | None = None
    unique_key: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    # jobs with the same key never run at once, fleet-wide (model/keys.py)
    concurrency_key: KeyRule | None = None
    # how many jobs of one concurrency_key may run at once (1: one at a time)
    key_concurrency: int = 1
    # at most N starts in any window ("10/s") of the jobs sharing rate_key (default: the job's
    # name), fleet-wide (model/rates.py)
    rate_limit: str | None = None
    rate_key: KeyRule | None = None
    # the jobs (ids or handles) this one waits on, and what it does when one of them fails
    after: tuple[str, ...] = ()
    on_parent_failure: str = "cancel"

    def __post_init__(self) -> None:
        check_queue(self.queue)
        check_priority(self.priority)
        check_max_attempts(self.max_attempts)
        check_timeout(self.timeout)
        check_delay(self.delay)
        check_run_at(self.run_at)
        check_unique_key(self.unique_key)
        check_metadata(self.metadata)
        check_key_rule(self.concurrency_key)
        check_key_concurrency(self.key_concurrency)
        object.__setattr__(self, "rate_limit", check_rate_limit(self.rate_limit))
        check_key_rule(self.rate_key, what="rate_key")
        if self.after:
            object.__setattr__(self, "after", check_after(self.after))
        check_failure_policy(self.on_parent_failure)
        if not isinstance(self.backoff, Backoff):
            raise InvalidJobOptions(
                f"backoff must be a conveyor.Backoff, not {type(self.backoff).__name__}"
            )
        if self.delay is not None and self.run_at is not None:
            raise InvalidJobOptions("give either delay or run_at, not both")
        if self.rate_key is not None and self.rate_limit is None:
            raise InvalidJobOptions(
                "rate_key names the window a rate_limit counts in: give a rate_limit too "
                "(e.g. rate_limit='10/s')"
            )
        if self.key_concurrency != 1 and self.concurrency_key is None:
            raise InvalidJobOptions(
                f"key_concurrency={self.key_concurrency} limits the jobs of one "
                "concurrency_key: give a concurrency_key too (e.g. "
                "concurrency_key='tenant:{tenant_id}')"
            )

    def merged(self, **changes: Any) -> JobOptions:
        """These options with `changes` applied (unknown names are refused)."""
        if not changes:
            return self  # frozen: no copy (and no second validation) needed
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise InvalidJobOptions(
                f"unknown job option(s): {', '.join(sorted(unknown))}; the options are "
                f"{', '.join(sorted(self.__dataclass_fields__))}"
            )
        # taking a job's key (or rate) away takes its limit (or window) with it
        if changes.get("concurrency_key", ...) is None and "key_concurrency" not in changes:
            changes["key_concurrency"] = 1
        if changes.get("rate_limit", ...) is None and "rate_key" not in changes:
            changes["rate_key"] = None
        return replace(self, **changes)


class EnqueueOptions(TypedDict, total=False):
    """Options an enqueue may override (for type checkers: a misspelt one is an error)."""

    queue: str
    priority: int
    max_attempts: int
    timeout: float | None
    backoff: Backoff
    delay: float | None
    run_at: datetime | None
    unique_key: str | None
    concurrency_key: KeyRule | None
    key_concurrency: int
    rate_limit: str | None
    rate_key: KeyRule | None
    after: Sequence[Any]
    on_parent_failure: str


class OptionOverrides(EnqueueOptions, total=False):
    """What `with_options(...)` and `app.request(...)` take: the enqueue options and metadata."""

    metadata: dict[str, str]
