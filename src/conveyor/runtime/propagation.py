"""Context propagation: chosen contextvars travel with a job and are set again while it runs.

`app.propagate(request_id, tenant)` registers the variables (by their `name`). At enqueue time the
current value of each one that is set is stored, JSON-encoded, in the job's metadata under the key
`ctx:<name>`; a worker process that registers the same variables (it imports the same app) sets
them around the job's execution, for async jobs and for sync jobs' threads alike. Plain metadata
strings work in every store and across processes, and can be read by operators.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar, Token
from typing import Any

from conveyor.context import Context
from conveyor.errors import ArgumentsNotSerializable, ConfigurationError
from conveyor.runtime.middleware import Call

log = logging.getLogger("conveyor.propagation")
#: Metadata keys starting with this prefix hold propagated context values.
PREFIX = "ctx:"
_MISSING: Any = object()
#: every propagated variable of this process, by name: a child process of the process executor
#: restores a job's values from them (its job module registered them on import)
_KNOWN: dict[str, ContextVar[Any]] = {}


class Propagation:
    """The registered variables of one app; `capture` at enqueue, `middleware` at run time."""

    def __init__(self) -> None:
        self._vars: dict[str, ContextVar[Any]] = {}

    @property
    def names(self) -> list[str]:
        """The registered variables' names."""
        return list(self._vars)

    def add(self, *variables: ContextVar[Any]) -> None:
        """Register variables; two different variables may not share a name."""
        for var in variables:
            if not isinstance(var, ContextVar):
                raise ConfigurationError(
                    f"propagate() takes contextvars.ContextVar objects, not {type(var).__name__}"
                )
            known = self._vars.get(var.name)
            if known is not None and known is not var:
                raise ConfigurationError(
                    f"another contextvar named {var.name!r} is already propagated: names identify "
                    "the variables across processes, so give each one a distinct name"
                )
            self._vars[var.name] = var
            _KNOWN.setdefault(var.name, var)

    def capture(self) -> dict[str, str]:
        """The metadata entries for the variables set in the current context."""
        captured: dict[str, str] = {}
        for name, var in self._vars.items():
            value = var.get(_MISSING)
            if value is _MISSING:
                continue
            try:
                text = json.dumps(value, allow_nan=False, separators=(",", ":"))
            except (TypeError, ValueError) as exc:
                raise ArgumentsNotSerializable(
                    f"the propagated contextvar {name!r} holds a {type(value).__name__} that is "
                    f"not JSON-encodable ({exc}): propagate plain values (str, int, float, bool, "
                    "None, lists, dicts), e.g. an id rather than an object"
                ) from exc
            captured[PREFIX + name] = text
        return captured

    def restore(self, metadata: dict[str, str]) -> list[tuple[ContextVar[Any], Token[Any]]]:
        """Set the registered variables found in `metadata`; returns the tokens to reset."""
        tokens: list[tuple[ContextVar[Any], Token[Any]]] = []
        for key, text in metadata.items():
            if not key.startswith(PREFIX):
                continue
            var = self._vars.get(key[len(PREFIX) :])
            if var is None:
                continue  # propagated by a producer, not registered in this worker
            try:
                value = json.loads(text)
            except ValueError:
                log.warning("metadata %r is not JSON: the contextvar is left unset", key)
                continue
            tokens.append((var, var.set(value)))
        return tokens

    async def middleware(self, ctx: Context, call_next: Call) -> Any:
        """Set the job's propagated values around its execution (the outermost middleware)."""
        tokens = self.restore(ctx.job.metadata)
        if not tokens:
            return await call_next()
        try:
            return await call_next()
        finally:
            for var, token in reversed(tokens):
                var.reset(token)


def restore_known(metadata: dict[str, str]) -> list[tuple[ContextVar[Any], Token[Any]]]:
    """Set every variable any app of this process propagates, from a job's metadata."""
    known = Propagation()
    known._vars = dict(_KNOWN)
    return known.restore(metadata)


__all__ = ["PREFIX", "Propagation", "restore_known"]
