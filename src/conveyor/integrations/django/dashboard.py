"""The dashboard in a Django project's `urls.py`, behind Django's authentication:

```python
from conveyor.integrations.django.dashboard import dashboard_urls

urlpatterns = [path("admin/jobs/", include(dashboard_urls())), ...]
```

By default staff users may manage, other signed-in users may view, everyone else gets 401.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from http.cookies import SimpleCookie
from typing import Any, TypeAlias

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern, re_path
from django.views.decorators.csrf import csrf_exempt

from conveyor.errors import ConfigurationError, PermissionHookError
from conveyor.integrations._asgi import (
    WEB_EXTRA_MISSING,
    Bridge,
    HostRequest,
    permissions_from_host,
)
from conveyor.integrations._permissions import Granted, Permission, permissions_of
from conveyor.integrations.django.core import get_app

log = logging.getLogger("conveyor.integrations.django")

PermissionHook: TypeAlias = Callable[[HttpRequest], Granted]
"""Your verdict on a dashboard request (after Django's middleware ran): "manage", "view", a
set of them, or None."""


def staff_manage(request: HttpRequest) -> Permission | None:
    """The default: active staff users manage, other signed-in users view, nobody else."""
    user = getattr(request, "user", None)
    if user is None:
        raise PermissionHookError(
            "request.user is missing: the dashboard needs "
            "django.contrib.auth.middleware.AuthenticationMiddleware in MIDDLEWARE"
        )
    if not user.is_authenticated or not user.is_active:
        return None
    return "manage" if user.is_staff else "view"


def dashboard_urls(
    *,
    authorize: PermissionHook = staff_manage,
    tokens: Mapping[str, Iterable[str]] | None = None,
    secret: str | bytes | None = None,
    name: str = "conveyor-dashboard",
) -> list[URLPattern]:
    """URL patterns serving the dashboard and REST API wherever they are included.

    `authorize(request)` sees the request after Django's middleware (`request.user`,
    `request.session`) and returns "manage", "view", a set of them, or None (401). Any other
    answer is a `PermissionHookError`: 500, logged, never access. API `tokens` may grant
    access too, for scripts. `secret` signs the dashboard's session cookie and CSRF tokens
    (default: settings.SECRET_KEY). The view is exempt from Django's CSRF middleware: the
    dashboard checks CSRF tokens of its own on every change."""
    if not callable(authorize):
        raise ConfigurationError(
            f"authorize must be a function of the request, got {type(authorize).__name__}"
        )
    view = _DashboardView(authorize, tokens, secret)
    return [re_path(r"^(?P<rest>.*)$", csrf_exempt(view), name=name)]


class _DashboardView:
    """The Django view in front of the ASGI dashboard, built at its first request."""

    def __init__(
        self,
        authorize: PermissionHook,
        tokens: Mapping[str, Iterable[str]] | None,
        secret: str | bytes | None,
    ) -> None:
        self.authorize = authorize
        self.tokens = tokens
        self.secret = secret
        self._bridge: Bridge | None = None
        self._lock = threading.Lock()

    def __call__(self, request: HttpRequest, rest: str = "") -> HttpResponse:
        try:
            granted = permissions_of(self.authorize(request), self.authorize)
        except PermissionHookError as exc:
            log.error("conveyor dashboard: %s", exc)
            return HttpResponse(
                "the dashboard is misconfigured: see the server's log",
                status=500,
                content_type="text/plain",
            )
        reply = self.bridge().call(_host_request(request, rest, granted))
        response = HttpResponse(reply.body, status=reply.status)
        for header, value in reply.headers:
            lowered = header.lower()
            if lowered == "set-cookie":
                cookie: SimpleCookie = SimpleCookie()
                cookie.load(value)
                for key, morsel in cookie.items():
                    response.cookies[key] = morsel
            elif lowered != "content-length":
                response[header] = value
        return response

    def bridge(self) -> Bridge:
        with self._lock:
            if self._bridge is None:
                try:
                    from conveyor.web import create_app
                except ModuleNotFoundError as exc:
                    raise ConfigurationError(WEB_EXTRA_MISSING.format(extra="django")) from exc
                asgi = create_app(
                    get_app(),
                    tokens=self.tokens,
                    authorize=permissions_from_host,
                    secret=self.secret if self.secret is not None else settings.SECRET_KEY,
                    allowed_hosts=["*"],  # Django checks ALLOWED_HOSTS itself
                )
                self._bridge = Bridge(asgi)
            return self._bridge


def _host_request(request: HttpRequest, rest: str, granted: frozenset[str]) -> HostRequest:
    path = request.path
    root = path[: len(path) - len(rest)] if rest and path.endswith(rest) else path
    meta: dict[str, Any] = request.META
    server_port = str(meta.get("SERVER_PORT") or "0")
    return HostRequest(
        method=request.method or "GET",
        scheme=request.scheme or "http",
        root_path=root.rstrip("/"),
        path=path,
        query_string=str(meta.get("QUERY_STRING", "")).encode("latin-1", "replace"),
        headers=[(key, str(value)) for key, value in request.headers.items()],
        body=request.body,
        client=(str(meta.get("REMOTE_ADDR", "")), int(meta.get("REMOTE_PORT") or 0)),
        server=(str(meta.get("SERVER_NAME", "")), int(server_port) if server_port.isdigit() else 0),
        permissions=granted,
    )


__all__ = ["PermissionHook", "dashboard_urls", "staff_manage"]
