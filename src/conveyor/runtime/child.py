"""The loop of one child process of the process executor (runtime/processes.py): it receives
jobs over its pipe, runs each in its main thread and answers with what became of it.

A job's module is imported once per child, on its first job. Progress and log lines go back to
the parent as they are written; the parent's worker buffers them as it does for threads.
Cancellation arrives as a flag in shared memory, so a job's loop sees `ctx.cancel_requested`
without the child reading its pipe while the job runs.
"""

from __future__ import annotations

import importlib
import operator
import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

from conveyor.context import Context, call_in_scope
from conveyor.errors import Fail, InvalidArguments, InvalidResult, Retry, UsageError
from conveyor.model.hints import ANY
from conveyor.model.job import JOB_FIELDS, Job, JobState, job_from_values
from conveyor.model.options import JobOptions
from conveyor.runtime.propagation import restore_known
from conveyor.runtime.registry import JobDefinition

_PROTOCOL = pickle.HIGHEST_PROTOCOL
# A job crosses the pipe as the tuple of its fields, its times as epoch seconds and its state
# as text: an aware datetime pickles its tzinfo through copyreg, nine times slower than a float.
_TIMES = tuple(i for i, name in enumerate(JOB_FIELDS) if name.endswith("_at"))
_STATE = JOB_FIELDS.index("state")
_job_values = operator.attrgetter(*JOB_FIELDS)


def job_to_wire(job: Job) -> list[Any]:
    """The values `job_from_wire` rebuilds `job` from (plain types, cheap to pickle)."""
    values = list(_job_values(job))
    for i in _TIMES:
        if values[i] is not None:
            values[i] = values[i].timestamp()
    values[_STATE] = values[_STATE].value
    return values


def job_from_wire(values: list[Any]) -> Job:
    """The job `job_to_wire` described."""
    for i in _TIMES:
        if values[i] is not None:
            values[i] = datetime.fromtimestamp(values[i], UTC)
    values[_STATE] = JobState(values[_STATE])
    return job_from_values(values)


#: what a child answers for one job: ("ok", result) or (kind, message, traceback, retry delay)
Answer = tuple[Any, ...]


class ChildContext(Context):
    """The Context of a job in a child process: `cancel_requested` reads the flag the parent
    sets in shared memory."""

    __slots__ = ("_flag",)

    def __init__(
        self, job: Job, sink: Any, flag: Any, parents: dict[str, Any] | None = None
    ) -> None:
        self._flag = flag
        super().__init__(job, sink)
        self._parent_results = parents

    @property
    def cancel_requested(self) -> bool:
        """True once the job was cancelled (the parent stops the child after a grace period)."""
        return bool(self._flag.value)

    @cancel_requested.setter
    def cancel_requested(self, value: bool) -> None:
        self._flag.value = 1 if value else 0

    def parent_results(self) -> dict[str, Any]:
        """A workflow step's parents' results, sent with the job (the child has no store)."""
        if self._parent_results is None:
            raise UsageError(
                "ctx.parent_results() in a process job works for workflow steps only (their "
                "parents' results are sent with them): add this job to a workflow, or run "
                "it with the default executor"
            )
        return self._parent_results

    async def parent_results_async(self) -> dict[str, Any]:
        """`parent_results` (nothing to wait for in a child)."""
        return self.parent_results()


def serve(conn: Connection, cancel_flag: Any, measure_memory: bool = False) -> None:
    """Run jobs sent over `conn` until told to stop or the parent goes away; with
    `measure_memory`, each answer carries the child's resident memory."""
    # Ctrl-C reaches the whole process group: the parent decides when its children stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    definitions: dict[tuple[str, str], JobDefinition] = {}

    def report(job_id: str, pct: float | None, message: str | None, line: str | None) -> None:
        conn.send(("report", job_id, pct, message, line))

    conn.send(("ready",))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        if message[0] != "run":
            return  # "stop"
        _, values, module, qualname, parents = message
        job = job_from_wire(values)
        cancel_flag.value = 0
        answer = run_one(job, module, qualname, definitions, report, cancel_flag, parents)
        rss = _rss() if measure_memory else 0
        try:
            data = pickle.dumps(("done", job.id, answer, rss), _PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError, ValueError) as exc:
            text = "".join(traceback.format_exception(exc))
            problem = ("result", f"the result cannot be sent: {exc}", text, None)
            data = pickle.dumps(("done", job.id, problem, rss), _PROTOCOL)
        try:
            conn.send_bytes(data)
        except (BrokenPipeError, OSError):
            return


def run_one(
    job: Job,
    module: str,
    qualname: str,
    definitions: dict[tuple[str, str], JobDefinition],
    report: Callable[[str, float | None, str | None, str | None], None],
    cancel_flag: Any,
    parents: dict[str, Any] | None = None,
) -> Answer:
    """Run one job and say how it ended (never raises, but for BaseExceptions that end the
    process: SystemExit, KeyboardInterrupt)."""
    try:
        definition = definitions.get((module, qualname))
        if definition is None:
            definition = definitions[(module, qualname)] = _resolve(job.name, module, qualname)
        ctx = ChildContext(job, report, cancel_flag, parents)
        spec = definition.spec
        positional: tuple[Any, ...] = ()
        args = job.args
        if spec is not None:
            positional, args = spec.decode(args)
        target = definition.func().run if definition.is_class else definition.func
        tokens = restore_known(job.metadata)  # trace ids..., as the parent's middleware does
        try:
            value = call_in_scope(ctx, target, positional, args)
        finally:
            for var, token in reversed(tokens):
                var.reset(token)
        if spec is not None and spec.result is not ANY:
            value = spec.encode_result(value)
        return ("ok", value)
    except Retry as exc:
        return ("retry", exc.reason, _text(exc), exc.delay)
    except Fail as exc:
        return ("fail", exc.reason, _text(exc), None)
    except InvalidArguments as exc:
        return ("arguments", str(exc), _text(exc), None)
    except InvalidResult as exc:
        return ("result", str(exc), _text(exc), None)
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return ("error", message, _text(exc), None)


def _resolve(name: str, module: str, qualname: str) -> JobDefinition:
    """The job's definition, found by importing its module (once per child)."""
    found: Any = (
        sys.modules["__main__"] if module == "__main__" else importlib.import_module(module)
    )
    for part in qualname.split("."):
        found = getattr(found, part)
    definition = getattr(found, "definition", None)
    if isinstance(definition, JobDefinition):
        return definition
    return JobDefinition.build(name, found, JobOptions())  # registered by a call, unbound


def _text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _rss() -> int:
    """This process's resident memory, in bytes (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
