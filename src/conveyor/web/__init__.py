"""The dashboard and REST API: `create_app(app)` is an ASGI app to serve or mount.

Installed with the `web` extra (`pip install conveyor[web]`): FastAPI, Jinja2, uvicorn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from conveyor.app import App
from conveyor.errors import ConfigurationError
from conveyor.web import errors
from conveyor.web.api import api_router
from conveyor.web.auth import LOOPBACK_HOSTS, VIEW, Auth, Authorize, hash_token, host_allowed
from conveyor.web.dashboard import Dashboard
from conveyor.web.metrics_route import install_metrics
from conveyor.web.pages import install_pages

__all__ = ["create_app", "hash_token", "parse_token_option", "serve"]

log = logging.getLogger("conveyor.web")
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


class _SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response


class _Static(StaticFiles):
    """The dashboard's assets; a missing one is a plain 404, never a page (the error pages
    are for what a person opens)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)


class _Api(FastAPI):
    """FastAPI whose schema lists the job names the app knows (enqueue refuses others)."""

    job_names: Callable[[], list[str]] = staticmethod(list)

    def openapi(self) -> dict[str, Any]:
        schema = super().openapi()
        names = self.job_names()
        enqueue = schema.get("components", {}).get("schemas", {}).get("EnqueueIn")
        if enqueue and names:
            enqueue["properties"]["name"]["enum"] = names
        return schema


def create_app(
    app: App,
    *,
    tokens: Mapping[str, Iterable[str]] | None = None,
    authorize: Authorize | None = None,
    prefix: str = "",
    secret: str | bytes | None = None,
    open_mode: bool = False,
    allowed_hosts: Iterable[str] | None = None,
) -> FastAPI:
    """The dashboard and REST API for `app`, as a FastAPI (ASGI) application.

    `tokens` maps API tokens (plain, or `sha256:<hex>` of the token) to their permissions,
    `{"view"}` or `{"manage"}` (manage implies view). `authorize(request)` may grant
    permissions too (sync or async), so an application can use its own login. One of them is
    required, or `open_mode=True`: then requests from this machine may do everything and all
    others are refused (local use only). `allowed_hosts`: the host names (or addresses) the
    dashboard answers to, by the Host header (default: localhost, 127.0.0.1 and ::1;
    `*.example.com` for subdomains; `["*"]` when the host application checks them itself), so
    a DNS-rebinding page cannot reach it. `prefix` serves every route under a path (e.g.
    "/admin/jobs"); mounting it with `host.mount(path, ...)` works too. `secret` signs session
    cookies and CSRF tokens (default: random per process).
    """
    prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
    auth = Auth(tokens, authorize, secret, open_mode=open_mode)
    hosts = tuple(LOOPBACK_HOSTS if allowed_hosts is None else allowed_hosts)
    if not hosts:
        raise ConfigurationError("allowed_hosts is empty: no request could be answered")
    if auth.open:
        log.warning(
            "conveyor.web: open mode: requests from this machine may manage jobs, all others "
            "are refused"
        )
    dash = Dashboard(app, auth, prefix)
    api = _Api(
        title="Conveyor",
        summary="See and steer background jobs.",
        version="1",
        openapi_url=None,  # served below, to viewers only
        docs_url=None,  # the interactive docs load assets from a CDN: not shipped
        redoc_url=None,
    )
    api.job_names = lambda: app.job_names
    api.add_middleware(_SecurityHeaders)
    api.add_middleware(_TrustedHosts, allowed=hosts)
    api.include_router(api_router(dash), prefix=prefix)
    api.add_api_route(
        f"{prefix}/api/openapi.json",
        _openapi_route(api),
        methods=["GET"],
        include_in_schema=False,
        dependencies=[Depends(dash.requires(VIEW))],
    )
    api.mount(f"{prefix}/static", _Static(directory=STATIC), name="static")
    pages = install_pages(api, dash)
    errors.install(api, pages=pages.error_for)
    install_metrics(api, dash, prefix)
    return api


def _openapi_route(api: FastAPI) -> Callable[[], JSONResponse]:
    def openapi() -> JSONResponse:
        """The API's OpenAPI schema (view permission, like every other route)."""
        return JSONResponse(api.openapi())

    return openapi


class _TrustedHosts:
    """Refuse a request whose Host header is not one of the allowed names, with 400 and a
    message saying how to allow it (before any route runs)."""

    def __init__(self, app: ASGIApp, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host", "")
        if host_allowed(host, self.allowed):
            await self.app(scope, receive, send)
            return
        response = JSONResponse(
            {
                "error": f"host {host!r} is not one this dashboard answers to: serve it with "
                f"conveyor web --allowed-host NAME, or create_app(..., allowed_hosts=[...]) "
                f"(allowed now: {', '.join(self.allowed)})"
            },
            status_code=400,
        )
        await response(scope, receive, send)


def parse_token_option(value: str) -> tuple[str, set[str]]:
    """ "TOKEN:view,manage" -> ("TOKEN", {"view", "manage"}); for a command-line option."""
    token, sep, permissions = value.rpartition(":")
    granted = {p.strip() for p in permissions.split(",") if p.strip()}
    if not sep or not token or not granted:
        raise ConfigurationError(f"expected TOKEN:PERMISSION[,PERMISSION], got {value!r}")
    return token, granted


def serve(
    app: App,
    host: str = "127.0.0.1",
    port: int = 8000,
    tokens: Mapping[str, Iterable[str]] | None = None,
    *,
    authorize: Authorize | None = None,
    prefix: str = "",
    open_mode: bool = False,
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Serve the dashboard with uvicorn until interrupted; it answers to the loopback names,
    the bound address and `allowed_hosts`."""
    import uvicorn

    hosts = [*LOOPBACK_HOSTS, *allowed_hosts]
    if host not in ("0.0.0.0", "::", ""):
        hosts.append(host)
    web = create_app(
        app,
        tokens=tokens,
        authorize=authorize,
        prefix=prefix,
        open_mode=open_mode,
        allowed_hosts=hosts,
    )
    uvicorn.run(web, host=host, port=port, log_level="info")
