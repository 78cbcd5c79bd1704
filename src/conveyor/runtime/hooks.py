"""Lifecycle hooks: callbacks for what happens to jobs; their errors never break a worker."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from conveyor.errors import ConfigurationError
from conveyor.model.job import AttemptError, Job

log = logging.getLogger("conveyor.hooks")

EventKind = Literal[
    "enqueued", "started", "progress", "succeeded", "failed", "retrying", "cancelled"
]
EVENT_KINDS: tuple[EventKind, ...] = (
    "enqueued",
    "started",
    "progress",
    "succeeded",
    "failed",
    "retrying",
    "cancelled",
)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """Something that happened to a job, handed to hooks."""

    kind: EventKind
    job: Job
    error: AttemptError | None = None
    result: Any = None
    progress: float | None = None
    message: str | None = None


Hook = Callable[[JobEvent], object]
ClaimHook = Callable[[int, int], object]  # (jobs claimed, slots offered)


class Hooks:
    """Callbacks by event kind. A hook that raises is logged and skipped."""

    def __init__(self) -> None:
        self._hooks: dict[str, list[Hook]] = {kind: [] for kind in EVENT_KINDS}
        self._claim_hooks: list[ClaimHook] = []

    def on_claim(self, hook: ClaimHook) -> ClaimHook:
        """Call `hook(claimed, requested)` after each claim that took jobs (e.g. for metrics)."""
        self._claim_hooks.append(hook)
        return hook

    def emit_claim(self, claimed: int, requested: int) -> None:
        """Run the claim hooks, logging (never raising) their errors."""
        for hook in self._claim_hooks:
            try:
                hook(claimed, requested)
            except Exception:
                log.exception("a claim hook raised; the worker is unaffected")

    def add(self, kind: EventKind, hook: Hook) -> Hook:
        """Call `hook(event)` on each event of `kind`."""
        if kind not in self._hooks:
            raise ConfigurationError(
                f"unknown event {kind!r}; events are: {', '.join(EVENT_KINDS)}"
            )
        self._hooks[kind].append(hook)
        return hook

    def wants(self, kind: EventKind) -> bool:
        """Whether any hook listens to `kind` (lets hot paths skip building events)."""
        return bool(self._hooks[kind])

    def emit(self, event: JobEvent) -> None:
        """Run the hooks for `event`, logging (never raising) their errors."""
        for hook in self._hooks[event.kind]:
            try:
                hook(event)
            except Exception:
                log.exception(
                    "a %s hook raised; the job is unaffected",
                    event.kind,
                    extra={"job_id": event.job.id, "job_name": event.job.name},
                )
