"""One error root: everything Conveyor raises derives from ConveyorError."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest

import conveyor
from conveyor import errors
from conveyor.errors import ConveyorError, JobStateConflict

SOURCE = Path(conveyor.__file__).parent

#: Built-in exceptions raised on purpose where Conveyor's own tree does not apply, and why.
ALLOWED = {
    # pydantic turns a validator's ValueError into a 422 body; it never reaches a caller
    ("web/schemas.py", "ValueError"),
    # a job's own StopIteration, re-raised as what it is so the attempt records it
    ("runtime/executor.py", "RuntimeError"),
    # the demo's sample jobs fail on purpose, as a user's jobs would
    ("cli/demo_jobs.py", "RuntimeError"),
    ("cli/demo_jobs.py", "ConnectionError"),
    # parse_duration's refusal, which Duration.convert turns into click's usage error
    ("cli/base.py", "ValueError"),
    # app.testing's assertions fail the user's test, as assert would
    ("testing.py", "AssertionError"),
    # a module's __getattr__ must raise AttributeError for the names it does not provide
    ("integrations/django/__init__.py", "AttributeError"),
}
#: Raised anywhere: a method a mixin's host class must provide.
ALLOWED_ANYWHERE = {"NotImplementedError"}

BUILTIN_ERRORS = {name for name in dir(builtins) if name.endswith("Error")} | {"Exception"}


def _raised_builtins() -> set[tuple[str, str]]:
    found = set()
    for path in SOURCE.rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and node.exc is not None:
                target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
                if isinstance(target, ast.Name) and target.id in BUILTIN_ERRORS - ALLOWED_ANYWHERE:
                    found.add((path.relative_to(SOURCE).as_posix(), target.id))
    return found


def test_conveyor_raises_no_bare_builtin_error() -> None:
    assert _raised_builtins() - ALLOWED == set()


def test_every_error_class_derives_from_the_root_and_has_a_default_message() -> None:
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    ours = [c for c in classes if c not in (errors.Retry, errors.Fail)]
    assert len(ours) > 10
    for cls in ours:
        assert issubclass(cls, ConveyorError), cls
        assert str(cls()) == (cls.__doc__ or "").strip() != "", cls


def test_the_bridge_and_scope_errors_are_the_ones_in_the_tree() -> None:
    from conveyor.bridge import BridgeClosed
    from conveyor.scope import ScopeClosed

    assert BridgeClosed is errors.BridgeClosed and ScopeClosed is errors.ScopeClosed


@pytest.mark.parametrize("finished", ["completed", "cancel"])
def test_state_conflicts_are_named(finished: str) -> None:
    app = conveyor.App("memory://")

    @app.job()
    def noop(ctx: conveyor.Context) -> None:
        pass

    job = noop.enqueue()
    if finished == "cancel":
        app.jobs.cancel(job.id)
    else:
        app.testing.drain()
    verb = app.jobs.cancel if finished == "cancel" else app.jobs.retry
    with pytest.raises(JobStateConflict, match=r"only failed or cancelled|nothing to cancel"):
        verb(job.id)
