"""Queue settings kept in the store, and the rule that merges code's and operators' changes.

A queue's settings (`QueueSettings`: its fleet-wide concurrency limit, its bound on waiting
jobs and what an enqueue past the bound does, its rate limit) live in the store, so every
worker and producer of the fleet honours the same ones, whether or not its code declared the
queue. A queue with no stored settings runs with the defaults: unlimited, unbounded.

Two kinds of writer change them, and `merge` is the one rule every store applies:

- code (`app.queue(name, ...)`, written when the app's store opens, or at once when the store
  is open already) sets every field it declares, except the fields an operator set;
- an operator (`conveyor queues set`, the REST API, the dashboard) sets the fields named, and
  marks them operator-set: later code syncs leave them alone (as an operator's toggle of a
  recurring job survives a deploy, `model/recurring.py`);
- a reset (`conveyor queues set NAME --reset`) hands every field back to code: the values given
  (the resetting app's declaration, or the defaults) are written and the marks cleared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from conveyor.errors import InvalidQueueSettings

__all__ = [
    "DEFAULTS",
    "SETTING_FIELDS",
    "BoundExceeded",
    "QueueChange",
    "QueueSettings",
    "StoredQueue",
    "WhenFull",
    "full_message",
    "merge",
]

WhenFull = Literal["wait", "refuse"]


@dataclass(frozen=True, slots=True)
class QueueSettings:
    """What a queue runs with, fleet-wide.

    `concurrency`: at most this many of its jobs run at once across all workers (None: only the
    workers' slots limit it). `max_size`: at most this many of its jobs wait (scheduled and
    pending; None: no bound); an enqueue past it waits up to the producer's
    `queue_full_timeout` for room (`when_full="wait"`) or raises QueueFull at once ("refuse").
    Retries and rescued jobs are never refused: the bound applies to new jobs only.
    `rate_limit` ("100/m"): at most N of its jobs start in any window of a second, minute or
    hour, across all workers (None: no rate; `model/rates.py`).
    """

    concurrency: int | None = None
    max_size: int | None = None
    when_full: WhenFull = "wait"
    rate_limit: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The settings by field name (for JSON answers)."""
        return {name: getattr(self, name) for name in SETTING_FIELDS}


#: The names of the settings, in display order.
SETTING_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(QueueSettings))
DEFAULTS = QueueSettings()


@dataclass(frozen=True, slots=True)
class StoredQueue:
    """A queue's settings as the store holds them, and which of them an operator set."""

    name: str
    settings: QueueSettings = DEFAULTS
    operator_set: frozenset[str] = frozenset()

    @property
    def is_default(self) -> bool:
        """Whether the queue runs with the defaults and no operator set any of them: such a
        queue is listed only while it has jobs or is paused."""
        return self.settings == DEFAULTS and not self.operator_set


@dataclass(frozen=True, slots=True)
class QueueChange:
    """A change of a queue's settings, and who makes it (see the module's docstring).

    `values` holds the fields to change: a code declaration and a reset give every field, an
    operator only those changed.
    """

    source: Literal["code", "operator", "reset"]
    values: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_code(cls, settings: QueueSettings) -> QueueChange:
        """What `app.queue(...)` declares: every field."""
        return cls("code", settings.as_dict())

    @classmethod
    def by_operator(cls, **values: Any) -> QueueChange:
        """An operator's change of the fields given."""
        unknown = set(values) - set(SETTING_FIELDS)
        if unknown:
            raise InvalidQueueSettings(
                f"unknown queue setting(s): {', '.join(sorted(unknown))}; "
                f"the settings are {', '.join(SETTING_FIELDS)}"
            )
        return cls("operator", values)

    @classmethod
    def reset(cls, settings: QueueSettings = DEFAULTS) -> QueueChange:
        """Hand every field back to code, starting from `settings`."""
        return cls("reset", settings.as_dict())


def merge(stored: StoredQueue | None, name: str, change: QueueChange) -> StoredQueue:
    """The queue after `change`, from what the store holds (None: nothing yet). Every store
    calls this inside the transaction that writes the result, so they cannot drift."""
    current = stored or StoredQueue(name)
    if change.source == "reset":
        return StoredQueue(name, replace(DEFAULTS, **change.values), frozenset())
    if change.source == "code":
        kept = {k: v for k, v in change.values.items() if k not in current.operator_set}
        return StoredQueue(name, replace(current.settings, **kept), current.operator_set)
    settings = replace(current.settings, **change.values)
    return StoredQueue(name, settings, current.operator_set | frozenset(change.values))


def full_message(
    queue: str, max_size: int, waiting: int, asked: int, *, waited: float | None
) -> str:
    """What QueueFull says when a queue's bound refuses new jobs, in every store: the queue, its
    bound, how many wait and how many more were asked; `waited` is how long the enqueue waited
    for room (None: refused at once)."""
    if asked > max_size:
        return (
            f"queue {queue!r} is bounded to max_size={max_size} waiting jobs: a batch of {asked} "
            f"new jobs for it can never fit; enqueue smaller batches or raise its max_size "
            f"(conveyor queues set {queue} --max-size N)"
        )
    state = f"{waiting} of max_size={max_size} jobs are waiting, {asked} more asked"
    if waited is not None:
        return (
            f"queue {queue!r} is still full after waiting {waited:g}s ({state}): add workers, "
            "raise its max_size, or raise queue_full_timeout"
        )
    return (
        f"queue {queue!r} is full ({state}): retry later, add workers, or raise its max_size "
        f"(conveyor queues set {queue} --max-size N)"
    )


class BoundExceeded(Exception):
    """A queue's bound refused a batch: a store raises it inside its transaction (rolling
    the batch back) and turns it into QueueFull, or waits for room, by `when_full`."""

    def __init__(self, queue: str, max_size: int, waiting: int, asked: int, when_full: str):
        super().__init__(queue)
        self.queue, self.max_size, self.waiting = queue, max_size, waiting
        self.asked, self.when_full = asked, when_full

    def message(self, waited: float | None) -> str:
        """QueueFull's message; `waited`: how long the enqueue waited (None: not at all)."""
        return full_message(self.queue, self.max_size, self.waiting, self.asked, waited=waited)
