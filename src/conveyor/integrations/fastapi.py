"""FastAPI and Starlette: the App for the site's life, handlers given the App, the dashboard
under a prefix behind the site's own authentication.

```python
site = FastAPI(lifespan=conveyor_lifespan(jobs, worker=True))
mount_dashboard(site, jobs, path="/admin/jobs", authorize=permission_of)


@site.post("/reports")
async def start(month: str, app: ConveyorApp) -> dict[str, str]:
    handle = await app.enqueue_async("build_report", {"month": month})
    return {"id": handle.id}
```

Installed with the `fastapi` extra (FastAPI, and Jinja2 for the dashboard's pages).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Annotated, Any, TypeAlias

from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request

from conveyor.app import App
from conveyor.errors import ConfigurationError, PermissionHookError
from conveyor.integrations._asgi import mount_path
from conveyor.integrations._permissions import Granted, Permission, permissions_of

STATE_KEY = "conveyor"  # the App's name in the lifespan state (request.state.conveyor)

Lifespan: TypeAlias = Callable[[Any], AbstractAsyncContextManager[Mapping[str, Any] | None]]
"""A Starlette lifespan: called with the site, an async context manager that may yield state."""

PermissionHook: TypeAlias = Callable[[Request], Granted | Awaitable[Granted]]
"""Your login's verdict on a dashboard request: "manage", "view", a set of them, or None."""


def conveyor_lifespan(
    app: App,
    *,
    worker: bool = False,
    queues: Iterable[str] | None = None,
    concurrency: int | None = None,
    lifespan: Lifespan | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[dict[str, Any]]]:
    """A lifespan for `FastAPI(lifespan=...)` or `Starlette(lifespan=...)`: the App's store is
    opened (and migrated) before the site answers and closed after it stopped.

    `worker=True` also runs an embedded worker for the site's life (of `queues`, default all,
    with `concurrency` slots, default the app's setting); it stops gracefully at shutdown,
    after the site's own `lifespan`, which runs inside this one (so its startup may enqueue
    and its shutdown still can). The state it yields is merged with the App's, which handlers
    reach through `ConveyorApp` (or `request.state.conveyor`).

    Keep `worker=False` for a web tier served by several processes that should only enqueue;
    on the memory store (`memory://`) the jobs live in the process, so run the worker here.
    """
    if not isinstance(app, App):
        raise ConfigurationError(
            f"conveyor_lifespan needs a conveyor.App, got {type(app).__name__}: "
            "conveyor_lifespan(conveyor.App(...), worker=True)"
        )
    if lifespan is not None and not callable(lifespan):
        raise ConfigurationError(
            f"lifespan must be your site's lifespan function (site -> async context manager), "
            f"got {type(lifespan).__name__}"
        )
    chosen = None if queues is None else list(queues)

    @asynccontextmanager
    async def run(site: Any) -> AsyncIterator[dict[str, Any]]:
        await asyncio.to_thread(lambda: app.backend)  # open the store off the event loop
        try:
            async with AsyncExitStack() as stack:
                if worker:
                    embedded = app.worker(queues=chosen, concurrency=concurrency)
                    await stack.enter_async_context(embedded)
                state: dict[str, Any] = {}
                if lifespan is not None:
                    own: Mapping[str, Any] | None
                    own = await stack.enter_async_context(lifespan(site))
                    state.update(own or {})
                if STATE_KEY in state:
                    raise ConfigurationError(
                        f"your lifespan's state has a {STATE_KEY!r} key, which holds the "
                        "conveyor App: rename yours"
                    )
                state[STATE_KEY] = app
                yield state
        finally:
            await asyncio.to_thread(app.close)

    return run


def get_conveyor(connection: HTTPConnection) -> App:
    """The dependency giving a handler the App of `conveyor_lifespan` (see `ConveyorApp`)."""
    app = connection.scope.get("state", {}).get(STATE_KEY)
    if not isinstance(app, App):
        raise ConfigurationError(
            "no conveyor App on this request: create the site with "
            "FastAPI(lifespan=conveyor_lifespan(app)) (and serve it with lifespan on)"
        )
    return app


ConveyorApp: TypeAlias = Annotated[App, Depends(get_conveyor)]
"""A handler parameter annotated `app: ConveyorApp` receives the App of `conveyor_lifespan`."""


def dashboard(
    app: App,
    *,
    authorize: PermissionHook | None = None,
    tokens: Mapping[str, Iterable[str]] | None = None,
    secret: str | bytes | None = None,
    allowed_hosts: Iterable[str] = ("*",),
) -> FastAPI:
    """The dashboard and REST API of `app` as an ASGI app to mount, behind `authorize`.

    `authorize(request)` (sync or async; sync ones run on a thread) receives the Starlette
    request, which carries what the site's middleware set (`request.user`, `request.session`,
    `request.scope[...]`), and returns "manage", "view", a set of them, or None: no access.
    Anything else is an error, never access. API `tokens` may grant access too (for scripts).
    `allowed_hosts` defaults to any: the site checks its Host header itself."""
    if authorize is None and not tokens:
        raise ConfigurationError(
            "the dashboard needs your authentication: pass authorize=hook (request -> 'manage',"
            " 'view' or None), or tokens={TOKEN: {'manage'}}"
        )
    if authorize is not None and not callable(authorize):
        raise ConfigurationError(
            f"authorize must be a function of the request, got {type(authorize).__name__}"
        )
    from conveyor.web import create_app

    hook = None if authorize is None else _checked(authorize)
    return create_app(
        app, tokens=tokens, authorize=hook, secret=secret, allowed_hosts=list(allowed_hosts)
    )


def mount_dashboard(
    site: Starlette,
    app: App,
    *,
    path: str = "/jobs",
    authorize: PermissionHook | None = None,
    tokens: Mapping[str, Iterable[str]] | None = None,
    secret: str | bytes | None = None,
    allowed_hosts: Iterable[str] = ("*",),
    name: str = "conveyor",
) -> FastAPI:
    """Mount the dashboard of `app` on `site` (FastAPI or Starlette) at `path`, behind the
    site's authentication: see `dashboard` for `authorize`. Returns the mounted app. Links,
    assets and the dashboard's session cookie follow `path`."""
    prefix = mount_path(path)
    mounted = dashboard(
        app, authorize=authorize, tokens=tokens, secret=secret, allowed_hosts=allowed_hosts
    )
    site.mount(prefix, mounted, name=name)
    return mounted


def _checked(hook: PermissionHook) -> Callable[[Request], Any]:
    """`hook` with its answer checked: the dashboard gets a set of known permissions."""
    if inspect.iscoroutinefunction(hook):

        async def check_async(request: Request) -> frozenset[str]:
            return permissions_of(await hook(request), hook)

        return check_async

    def check(request: Request) -> frozenset[str]:
        granted = hook(request)
        if inspect.isawaitable(granted):
            if inspect.iscoroutine(granted):
                granted.close()  # never awaited: say so here, not in a warning later
            raise PermissionHookError(
                f"the permission hook {getattr(hook, '__qualname__', hook)!r} returned an "
                "awaitable: define it with async def"
            )
        return permissions_of(granted, hook)

    return check


__all__ = [
    "STATE_KEY",
    "ConveyorApp",
    "Lifespan",
    "Permission",
    "PermissionHook",
    "conveyor_lifespan",
    "dashboard",
    "get_conveyor",
    "mount_dashboard",
]
