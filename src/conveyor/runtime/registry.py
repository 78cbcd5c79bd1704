"""Job definitions: what a name runs, and with which options."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from conveyor.errors import ConfigurationError
from conveyor.model.options import JobOptions


@dataclass(frozen=True, slots=True)
class JobDefinition:
    """A registered job: its name, the callable and its default options.

    `func` is called as `func(ctx, **args)`; for a class-based handler it is the class, and the
    worker makes one instance per job and calls its `run(ctx, **args)`.
    """

    name: str
    func: Callable[..., Any]
    options: JobOptions
    is_async: bool
    is_class: bool = False

    @staticmethod
    def build(name: str, target: Callable[..., Any], options: JobOptions) -> JobDefinition:
        """Inspect `target` (a function or a class with a `run` method) into a definition."""
        if inspect.isclass(target):
            run = getattr(target, "run", None)
            if run is None or not callable(run):
                raise ConfigurationError(
                    f"class-based job {name!r} needs a method run(self, ctx, **args)"
                )
            return JobDefinition(name, target, options, inspect.iscoroutinefunction(run), True)
        if not callable(target):
            raise ConfigurationError(f"job {name!r} must be a function or a class")
        return JobDefinition(name, target, options, inspect.iscoroutinefunction(target))


Registry = dict[str, JobDefinition]
