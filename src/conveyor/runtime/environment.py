"""What a worker needs from its application, without importing the application layer."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from conveyor.backends.protocol import Backend
from conveyor.model.job import utcnow
from conveyor.model.recurring import RecurringJob
from conveyor.model.settings import Settings
from conveyor.runtime.hooks import Hooks
from conveyor.runtime.middleware import Middleware
from conveyor.runtime.registry import Registry


@dataclass(slots=True)
class Environment:
    """The store, job registry, settings and callbacks a worker runs with."""

    backend: Backend
    registry: Registry
    settings: Settings
    hooks: Hooks = field(default_factory=Hooks)
    middleware: Sequence[Middleware] = ()
    clock: Callable[[], datetime] = utcnow
    recurring: Sequence[RecurringJob] = ()  # definitions made in code, synced at worker start
    # resource factory -> stand-in, set by app.testing.override_resource (a live mapping)
    resource_overrides: Mapping[Callable[..., Any], Callable[..., Any]] = field(
        default_factory=dict
    )
    queue_executors: Mapping[str, str] = field(default_factory=dict)  # queue -> "process"
    # context-manager factories entered on a plain job's thread around it (app.around_sync_jobs)
    sync_wrappers: Sequence[Callable[[], AbstractContextManager[Any]]] = ()
