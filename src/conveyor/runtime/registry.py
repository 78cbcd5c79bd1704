"""Job definitions: what a name runs, with which options, and the arguments it accepts."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

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
    #: "process": run in a child process (plain functions only); None: as its queue says
    executor: Executor | None = None

    @staticmethod
    def build(
        name: str,
        target: Callable[..., Any],
        options: JobOptions,
        validate: bool = True,
        local_names: Mapping[str, Any] | None = None,
        executor: Executor | None = None,
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
            _check_executor(name, target, executor, is_async)
            return JobDefinition(name, target, options, is_async, True, spec, executor)
        if not callable(target):
            raise ConfigurationError(f"job {name!r} must be a function or a class")
        spec = spec_of(name, target, local_names=local_names) if validate else None
        is_async = inspect.iscoroutinefunction(target)
        _check_executor(name, target, executor, is_async)
        return JobDefinition(name, target, options, is_async, spec=spec, executor=executor)


def _check_executor(
    name: str, target: Callable[..., Any], executor: Executor | None, is_async: bool
) -> None:
    """A process job must be a plain function a child can import by its module and name."""
    if executor is None or executor == "thread":
        return
    if executor != "process":
        raise ConfigurationError(
            f"job {name!r}: executor must be 'thread' or 'process', not {executor!r}"
        )
    if is_async:
        raise ConfigurationError(
            f"job {name!r}: async jobs run on the worker's event loop; executor='process' is "
            "for plain (def) functions"
        )
    if "<locals>" in getattr(target, "__qualname__", "<locals>"):
        raise ConfigurationError(
            f"job {name!r}: a process job must be defined at the top level of a module, "
            "so that its child process can import it"
        )


Executor = Literal["thread", "process"]
Registry = dict[str, JobDefinition]
