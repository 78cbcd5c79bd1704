"""Flask: the `Conveyor` extension, configured from `app.config`, with `flask conveyor ...`
and the dashboard behind the Flask app's own login.

```python
jobs = Conveyor()                      # in extensions.py; jobs register on jobs.app


@jobs.job
def send_welcome(ctx: conveyor.Context, user_id: int) -> None: ...


def create_app() -> Flask:
    site = Flask(__name__)
    site.config["CONVEYOR_URL"] = "sqlite:///jobs.db"
    jobs.init_app(site)
    jobs.mount_dashboard(site, "/admin/jobs", authorize=lambda request: "manage" if ... else None)
    return site
```

Installed with the `flask` extra; the dashboard also needs the `web` extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import click
from flask import Flask, Request, Response, current_app, request
from flask.cli import with_appcontext

from conveyor.app import App
from conveyor.errors import ConfigurationError, PermissionHookError
from conveyor.integrations._asgi import (
    WEB_EXTRA_MISSING,
    Bridge,
    HostRequest,
    mount_path,
    permissions_from_host,
)
from conveyor.integrations._permissions import Granted, Permission, permissions_of
from conveyor.model.validation import queue_settings_from_config

EXTENSION = "conveyor"  # the key in flask_app.extensions
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
log = logging.getLogger("conveyor.integrations.flask")

PermissionHook: TypeAlias = Callable[[Request], Granted]
"""Your login's verdict on a dashboard request, called inside the Flask request context
(`flask_login.current_user` works): "manage", "view", a set of them, or None."""


class Conveyor:
    """The Flask extension: one conveyor App, configured from the Flask app's config.

    `Conveyor(flask_app)` configures it at once; `Conveyor()` then `init_app(flask_app)`
    in an app factory. Register jobs with `@extension.job` (the App's `job`) at import time;
    the App's store opens at its first use, once `init_app` has read the config:

    - `CONVEYOR_URL`: the store ("sqlite:///jobs.db", "postgresql://…"; default $CONVEYOR_URL,
      else sqlite:///conveyor.db)
    - `CONVEYOR_SETTINGS`: App settings by name, e.g. `{"concurrency": 8}`
    - `CONVEYOR_QUEUES`: queues and their concurrency limits, e.g. `{"reports": 1}`, or their
      settings, e.g. `{"imports": {"max_size": 10_000, "when_full": "refuse"}}`

    `init_app` also adds `flask conveyor ...`: the `conveyor` command on this App
    (`flask conveyor worker`, `flask conveyor jobs ls`, `flask conveyor migrate`).
    """

    def __init__(self, flask_app: Flask | None = None, *, app: App | None = None) -> None:
        if app is not None and not isinstance(app, App):
            raise ConfigurationError(
                f"Conveyor(app=...) takes a conveyor.App, got {type(app).__name__}"
            )
        self.app = app if app is not None else App()
        self.job = self.app.job
        self._bridges: list[Bridge] = []
        if flask_app is not None:
            self.init_app(flask_app)

    def init_app(self, flask_app: Flask) -> None:
        """Configure the App from `flask_app.config` and add the `flask conveyor` command."""
        if not isinstance(flask_app, Flask):
            raise ConfigurationError(
                f"init_app takes the Flask application, got {type(flask_app).__name__}"
            )
        config = flask_app.config
        url = config.get("CONVEYOR_URL")
        if url is not None and not isinstance(url, str):
            raise ConfigurationError(
                f"CONVEYOR_URL must be a store URL string, got {type(url).__name__}"
            )
        settings = _mapping(config.get("CONVEYOR_SETTINGS", {}), "CONVEYOR_SETTINGS")
        self.app.configure(url, **settings)
        for name, value in _mapping(config.get("CONVEYOR_QUEUES", {}), "CONVEYOR_QUEUES").items():
            queue = queue_settings_from_config(value, f"CONVEYOR_QUEUES[{name!r}]")
            self.app.queue(
                name,
                concurrency=queue.concurrency,
                max_size=queue.max_size,
                when_full=queue.when_full,
            )
        flask_app.extensions[EXTENSION] = self
        flask_app.cli.add_command(conveyor_command)

    def mount_dashboard(
        self,
        flask_app: Flask,
        path: str = "/jobs",
        *,
        authorize: PermissionHook,
        tokens: Mapping[str, Iterable[str]] | None = None,
        secret: str | bytes | None = None,
        endpoint: str = "conveyor_dashboard",
    ) -> None:
        """Serve the dashboard and REST API at `path` of `flask_app`, behind its login.

        `authorize(request)` runs in the Flask request context (sessions, Flask-Login's
        `current_user`, `g` all work) and returns "manage", "view", a set of them, or None
        (no access: 401). Any other answer is a `PermissionHookError` (500, logged), never
        access. API `tokens` may grant access too, for scripts. `secret` signs the
        dashboard's own session cookie and CSRF tokens (default: the Flask SECRET_KEY, else
        random per process). Flask-WTF's CSRFProtect must exempt the view (`endpoint`): the
        dashboard checks CSRF tokens of its own."""
        if not callable(authorize):
            raise ConfigurationError(
                f"authorize must be a function of the request, got {type(authorize).__name__}"
            )
        prefix = mount_path(path)
        try:
            from conveyor.web import create_app
        except ModuleNotFoundError as exc:
            raise ConfigurationError(WEB_EXTRA_MISSING.format(extra="flask")) from exc
        key = secret if secret is not None else flask_app.config.get("SECRET_KEY")
        asgi = create_app(
            self.app,
            tokens=tokens,
            authorize=permissions_from_host,
            secret=key,
            allowed_hosts=["*"],  # Flask answers for its own host names
        )
        bridge = Bridge(asgi)
        self._bridges.append(bridge)

        def dashboard(rest: str = "") -> Response:
            try:
                granted = permissions_of(authorize(request), authorize)
            except PermissionHookError as exc:
                log.error("conveyor dashboard: %s", exc)
                return Response("the dashboard is misconfigured: see the server's log", 500)
            reply = bridge.call(_host_request(request, prefix, granted))
            return Response(reply.body, status=reply.status, headers=reply.headers)

        dashboard.__doc__ = "The Conveyor dashboard (served through conveyor.integrations.flask)."
        flask_app.add_url_rule(f"{prefix}/", endpoint, dashboard, methods=METHODS)  # /x → /x/
        flask_app.add_url_rule(f"{prefix}/<path:rest>", endpoint, dashboard, methods=METHODS)

    def close(self) -> None:
        """Stop the dashboards' event loop threads and close the App's store."""
        for bridge in self._bridges:
            bridge.close()
        self.app.close()


def _host_request(flask_request: Request, prefix: str, granted: frozenset[str]) -> HostRequest:
    root = flask_request.script_root + prefix
    environ = flask_request.environ
    client = (flask_request.remote_addr or "", int(environ.get("REMOTE_PORT") or 0))
    server = (str(environ.get("SERVER_NAME", "")), int(environ.get("SERVER_PORT") or 0))
    return HostRequest(
        method=flask_request.method,
        scheme=flask_request.scheme,
        root_path=root,
        path=flask_request.script_root + flask_request.path,
        query_string=flask_request.query_string,
        headers=list(flask_request.headers.items()),
        body=flask_request.get_data(),
        client=client,
        server=server,
        permissions=granted,
    )


def _mapping(value: object, name: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigurationError(
            f"{name} must be a dict by name, like {{'reports': 1}}, got {value!r}"
        )
    return dict(value)


def extension() -> Conveyor:
    """The Conveyor extension of the current Flask app (inside an app or request context)."""
    found = current_app.extensions.get(EXTENSION)
    if not isinstance(found, Conveyor):
        raise ConfigurationError(
            "this Flask app has no Conveyor extension: call Conveyor(app) or "
            "extension.init_app(app) in your app factory"
        )
    return found


@click.command(
    "conveyor",
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@with_appcontext
def conveyor_command(args: tuple[str, ...]) -> None:
    """Conveyor's command on this app's jobs: worker, migrate, jobs, queues, stats…
    (`flask conveyor --help` lists them)."""
    from conveyor.cli.commands import run_with_app

    run_with_app(extension().app, args, prog_name="flask conveyor")


__all__ = ["EXTENSION", "Conveyor", "Permission", "PermissionHook", "conveyor_command", "extension"]
