"""A dependency scope: resources opened lazily for one unit of work and closed after it.

A resource factory is any callable returning a context manager or an async context manager, for
example a function decorated with `contextlib.contextmanager`. It is declared once, as a plain
function, and asked for by the work that needs it:

    @contextlib.contextmanager
    def db_session() -> Iterator[Session]:
        with Session() as session:
            yield session

    session = scope.resource(db_session)           # sync code: sync context managers
    session = await scope.aresource(db_session)    # async code: both kinds

Each factory is entered at most once per scope (later calls return the same instance) and every
entered resource is closed when the scope closes, in reverse order, whatever the outcome. An error
while closing one resource does not stop the others: it is passed to `on_close_error` (and logged
when none is given), never raised, so it cannot turn a finished piece of work into a lost one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar, cast

from conveyor.errors import ConfigurationError, ScopeClosed

log = logging.getLogger("conveyor.scope")
T = TypeVar("T")

#: A factory of a resource: returns a (async) context manager whose `__enter__` value is used.
ResourceFactory = Callable[[], "AbstractContextManager[T] | AbstractAsyncContextManager[T]"]
#: Called with the factory and the exception when a resource fails to close.
CloseErrorHandler = Callable[[Callable[..., Any], BaseException], None]
_ExcInfo = tuple[type[BaseException] | None, BaseException | None, TracebackType | None]


@dataclass(slots=True)
class _Entry:
    factory: Callable[..., Any]
    manager: Any
    value: Any
    is_async: bool
    opened_async: bool


class Scope:
    """Resources for one unit of work (a job attempt, a bridge work item).

    Thread-safe: a sync job's thread and the event loop running its middleware may share one.
    """

    __slots__ = ("_closed", "_entries", "_lock", "_on_close_error", "_overrides", "failure")

    def __init__(
        self,
        on_close_error: CloseErrorHandler | None = None,
        overrides: Mapping[Callable[..., Any], Callable[..., Any]] | None = None,
    ) -> None:
        #: what ended the work, when it failed: passed to each `__exit__` unless close() gets one
        self.failure: BaseException | None = None
        self._entries: list[_Entry] = []
        self._lock = threading.RLock()
        self._closed = False
        self._on_close_error = on_close_error
        # factory -> stand-in (tests): the stand-in makes the resource, the factory names it
        self._overrides = overrides

    @property
    def closed(self) -> bool:
        """True once `close()` or `aclose()` has run."""
        return self._closed

    def __len__(self) -> int:
        return len(self._entries)

    def _make(self, factory: Callable[..., Any]) -> Any:
        if self._overrides:
            return self._overrides.get(factory, factory)()
        return factory()

    def _find(self, factory: Callable[..., Any]) -> _Entry | None:
        if self._closed:
            raise ScopeClosed(f"cannot open {_name(factory)}: {ScopeClosed.__doc__}")
        for entry in self._entries:
            if entry.factory is factory:
                return entry
        return None

    def resource(self, factory: Callable[[], AbstractContextManager[T]]) -> T:
        """The value of `factory()`'s context manager, entered on first use in this scope.

        For sync code (a sync job's thread): the factory must return a sync context manager;
        use `aresource` for async ones.
        """
        with self._lock:
            entry = self._find(factory)
            if entry is not None:
                return cast(T, entry.value)
            manager: Any = self._make(factory)
            if not hasattr(manager, "__enter__"):
                if hasattr(manager, "__aenter__"):
                    raise ConfigurationError(
                        f"{_name(factory)} returns an async context manager: "
                        "use `await ctx.aresource(...)` from async code"
                    )
                raise ConfigurationError(
                    f"{_name(factory)} must return a context manager (e.g. decorate it with "
                    f"@contextlib.contextmanager), not {type(manager).__name__}"
                )
            value = manager.__enter__()
            self._entries.append(_Entry(factory, manager, value, False, False))
            return cast(T, value)

    async def aresource(
        self,
        factory: Callable[[], AbstractAsyncContextManager[T] | AbstractContextManager[T]],
    ) -> T:
        """`resource` for async code: accepts sync and async context manager factories."""
        with self._lock:
            entry = self._find(factory)
            if entry is not None:
                return cast(T, entry.value)
        manager: Any = self._make(factory)
        if hasattr(manager, "__aenter__"):
            value = await manager.__aenter__()
            is_async = True
        elif hasattr(manager, "__enter__"):
            value = manager.__enter__()
            is_async = False
        else:
            raise ConfigurationError(
                f"{_name(factory)} must return a context manager or an async context manager, "
                f"not {type(manager).__name__}"
            )
        with self._lock:
            existing = None if self._closed else self._find(factory)
            if existing is None and not self._closed:
                self._entries.append(_Entry(factory, manager, value, is_async, True))
                return cast(T, value)
        # lost a race with another opener (or the scope closed meanwhile): undo ours
        await self._exit_one(_Entry(factory, manager, value, is_async, True), (None, None, None))
        if existing is None:
            raise ScopeClosed(f"cannot open {_name(factory)}: {ScopeClosed.__doc__}")
        return cast(T, existing.value)

    def _take(self, which: str) -> list[_Entry]:
        with self._lock:
            if which == "all":
                taken, self._entries = self._entries, []
                self._closed = True
            else:
                want_async = which == "async-opened"
                taken = [e for e in self._entries if e.opened_async is want_async]
                self._entries = [e for e in self._entries if e.opened_async is not want_async]
        taken.reverse()
        return taken

    def close(self, exc: BaseException | None = None, *, only_sync_opened: bool = False) -> None:
        """Close every resource in reverse order, passing `exc` (what ended the work, if it
        failed) to each `__exit__`. Never raises for a resource that fails to close.

        With `only_sync_opened`, close just the resources opened through `resource()` and keep
        the scope open: a sync job's thread does this so its resources close on its own thread.
        """
        info = _info(exc if exc is not None else self.failure)
        for entry in self._take("sync-opened" if only_sync_opened else "all"):
            if entry.is_async:
                self._report(
                    entry.factory,
                    RuntimeError(
                        f"{_name(entry.factory)} is an async resource and cannot be closed "
                        "from sync code: close the scope with `await scope.aclose()`"
                    ),
                )
                continue
            try:
                entry.manager.__exit__(*info)
            except Exception as error:
                self._report(entry.factory, error)

    async def aclose(
        self, exc: BaseException | None = None, *, only_async_opened: bool = False
    ) -> None:
        """`close` for async code: closes async and sync resources, in reverse order.

        With `only_async_opened`, close just the resources opened through `aresource()` and keep
        the scope open (the executor does this for sync jobs, whose thread closes its own).
        """
        info = _info(exc if exc is not None else self.failure)
        for entry in self._take("async-opened" if only_async_opened else "all"):
            await self._exit_one(entry, info)

    async def _exit_one(self, entry: _Entry, info: _ExcInfo) -> None:
        try:
            if entry.is_async:
                await entry.manager.__aexit__(*info)
            else:
                entry.manager.__exit__(*info)
        except Exception as error:
            self._report(entry.factory, error)

    def _report(self, factory: Callable[..., Any], error: BaseException) -> None:
        handler = self._on_close_error
        if handler is not None:
            try:
                handler(factory, error)
                return
            except Exception:
                log.exception("the close-error handler of a scope failed")
        log.error("resource %s failed to close", _name(factory), exc_info=error)

    def __repr__(self) -> str:
        names = ", ".join(_name(e.factory) for e in self._entries)
        return f"<Scope {'closed' if self._closed else 'open'} [{names}]>"


def _info(exc: BaseException | None) -> _ExcInfo:
    if exc is None:
        return (None, None, None)
    return (type(exc), exc, exc.__traceback__)


def _name(factory: Callable[..., Any]) -> str:
    return (
        getattr(factory, "__qualname__", None)
        or getattr(factory, "__name__", None)
        or repr(factory)
    )


def describe_close_error(factory: Callable[..., Any], error: BaseException) -> str:
    """A one-line description of a failed close, for a job's log."""
    return f"resource {_name(factory)} failed to close: {type(error).__name__}: {error}"


__all__ = ["CloseErrorHandler", "ResourceFactory", "Scope", "ScopeClosed", "describe_close_error"]
