"""Job options and the retry backoff policy (pure functions)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from conveyor.errors import ConfigurationError


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

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigurationError("max_attempts must be at least 1")
        if self.timeout is not None and self.timeout <= 0:
            raise ConfigurationError("timeout must be a positive number of seconds, or None")
        if self.delay is not None and self.run_at is not None:
            raise ConfigurationError("give either delay or run_at, not both")
        if self.run_at is not None and self.run_at.tzinfo is None:
            raise ConfigurationError(
                "run_at must be timezone-aware, e.g. datetime.now(UTC) + timedelta(minutes=5)"
            )
        if not self.queue:
            raise ConfigurationError("queue must be a non-empty name")

    def merged(self, **changes: Any) -> JobOptions:
        """These options with `changes` applied (unknown names are refused)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ConfigurationError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)
