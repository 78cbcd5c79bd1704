"""Job definitions: what a name runs, with which options, and the arguments it accepts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigurationError
from conveyor.model.options import JobOptions
from conveyor.model.signature import ArgumentSpec, spec_of


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A registered job: its name, the callable and its default options.

    `func` is called as `func(ctx, **args)`; for a class-based handler it is the class, and the
    worker makes one instance per job and calls its `run(ctx, **args)`. `spec` checks the
    arguments at enqueue and rebuilds them before a run (None: passed through unchecked).
    """

    name: str
    func: Callable[..., Any]
    options: JobOptions
    is_async: bool
    is_class: bool = False
    spec: ArgumentSpec | None = None

    @staticmethod
    def build(
        name: str,
        target: Callable[..., Any],
        options: JobOptions,
        validate: bool = True,
        local_names: Mapping[str, Any] | None = None,
    ) -> JobDefinition:
        """Inspect `target` (a function or a class with a `run` method) into a definition;
        `local_names` resolve hints that name classes of the scope it was defined in."""
        if inspect.isclass(target):
            run = getattr(target, "run", None)
            if run is None or not callable(run):
                raise ConfigurationError(
                    f"class-based job {name!r} needs a method run(self, ctx, **args)"
                )
            spec = spec_of(name, run, method=True, local_names=local_names) if validate else None
            is_async = inspect.iscoroutinefunction(run)
            return JobDefinition(name, target, options, is_async, True, spec)
        if not callable(target):
            raise ConfigurationError(f"job {name!r} must be a function or a class")
        spec = spec_of(name, target, local_names=local_names) if validate else None
        return JobDefinition(name, target, options, inspect.iscoroutinefunction(target), spec=spec)


Registry = dict[str, JobDefinition]
