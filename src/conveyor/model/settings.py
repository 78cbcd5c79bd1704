"""Settings shared by the stores and the worker runtime, with their defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Literal, TypedDict

from conveyor.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Settings:
    """Every tunable of Conveyor; pass overrides as keyword arguments to `App(...)`."""

    # worker
    concurrency: int = 10
    lease_seconds: float = 10.0  # a dead worker's jobs run again this soon (docs/guide.md, Leases)
    heartbeat_interval: float = 2.0  # one store call per worker process, whatever its concurrency
    poll_interval: float = 1.0  # fallback wake-up when no notification arrives
    # claimed jobs a worker may hold waiting for a free slot, so that its next claim overlaps
    # with running jobs: None = adapt (up to `concurrency`, fewer the longer jobs take), 0 = none
    prefetch: int | None = None
    ack_batch_size: int = 200
    ack_interval: float = 0.005
    progress_flush_count: int = 50
    progress_flush_interval: float = 1.0
    max_log_lines: int = 1000
    shutdown_timeout: float = 30.0
    # process executor (docs/executors.md): child processes for executor="process" jobs
    processes: int | None = None  # children per worker; None = the CPU count
    process_grace: float = 5.0  # seconds between SIGTERM and SIGKILL for a stopped job's child
    max_tasks_per_child: int = 0  # a child is replaced after this many jobs (0 = never)
    max_memory_per_child: int = 0  # MiB of resident memory above which a child is replaced
    # maintenance
    sweep_interval: float = 1.0
    prune_interval: float = 60.0
    retention_completed: float = 24 * 3600.0  # also cancelled and skipped jobs
    retention_failed: float = 7 * 24 * 3600.0
    worker_stale_after: float = 60.0
    history_retention: float = 7 * 24 * 3600.0  # per-minute history rows (docs/observability.md)
    # memory store: a cap on all its waiting jobs
    max_queue_size: int = 10_000  # 0 = unbounded
    queue_full: Literal["wait", "refuse"] = "wait"
    # every store: how long an enqueue waits for room in a full queue (the memory store's cap
    # in wait mode, or a queue's max_size with when_full="wait": docs/flow-control.md)
    queue_full_timeout: float = 5.0

    def __post_init__(self) -> None:
        self._check_types()
        if self.concurrency < 1:
            raise ConfigurationError("concurrency must be at least 1")
        if self.prefetch is not None and self.prefetch < 0:
            raise ConfigurationError("prefetch must be 0 (never) or more, or None (adapt)")
        if self.heartbeat_interval * 2 > self.lease_seconds:
            raise ConfigurationError(
                "heartbeat_interval must be at most half of lease_seconds, "
                "or live workers would lose their jobs"
            )
        if self.max_log_lines < 2:
            raise ConfigurationError("max_log_lines must be at least 2")
        if self.queue_full not in ("wait", "refuse"):
            raise ConfigurationError("queue_full must be 'wait' or 'refuse'")
        if self.processes is not None and self.processes < 1:
            raise ConfigurationError("processes must be at least 1, or None (the CPU count)")
        if self.process_grace < 0:
            raise ConfigurationError("process_grace must be 0 or more seconds")
        if self.max_tasks_per_child < 0 or self.max_memory_per_child < 0:
            raise ConfigurationError(
                "max_tasks_per_child and max_memory_per_child must be 0 (no limit) or more"
            )

    def _check_types(self) -> None:
        """Each setting is of its declared kind: an integer (not a bool), or a finite number
        of 0 or more for the durations; the enumerations are checked with their ranges."""
        for item in fields(self):
            value = getattr(self, item.name)
            kind = str(item.type)
            if value is None and kind.endswith("| None"):
                continue
            if kind.startswith("int"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigurationError(
                        f"setting {item.name} must be an integer, not {value!r}"
                    )
            elif kind == "float":
                is_number = isinstance(value, int | float) and not isinstance(value, bool)
                if not is_number or not math.isfinite(value) or value < 0:
                    raise ConfigurationError(
                        f"setting {item.name} must be a finite number of seconds, 0 or more, "
                        f"not {value!r}"
                    )

    def merged(self, **overrides: Any) -> Settings:
        """These settings with `overrides` applied; unknown names are refused."""
        names = {f.name for f in fields(self)}
        unknown = set(overrides) - names
        if unknown:
            raise ConfigurationError(
                f"unknown setting(s): {', '.join(sorted(unknown))}; "
                f"known settings are: {', '.join(sorted(names))}"
            )
        return replace(self, **overrides)


class SettingsOverrides(TypedDict, total=False):
    """The keyword arguments `App(...)` takes: any `Settings` field (for type checkers)."""

    concurrency: int
    lease_seconds: float
    heartbeat_interval: float
    poll_interval: float
    prefetch: int | None
    ack_batch_size: int
    ack_interval: float
    progress_flush_count: int
    progress_flush_interval: float
    max_log_lines: int
    shutdown_timeout: float
    processes: int | None
    process_grace: float
    max_tasks_per_child: int
    max_memory_per_child: int
    sweep_interval: float
    prune_interval: float
    retention_completed: float
    retention_failed: float
    worker_stale_after: float
    max_queue_size: int
    queue_full: Literal["wait", "refuse"]
    queue_full_timeout: float
