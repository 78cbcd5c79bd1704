"""`conveyor web`: serve the dashboard and REST API (needs the `web` extra)."""

from __future__ import annotations

import secrets

import click

from conveyor.app import App
from conveyor.cli.base import common, fail, load
from conveyor.cli.loading import USAGE
from conveyor.errors import ConfigurationError


@click.command(short_help="Serve the dashboard and REST API.")
@click.argument("app_arg", metavar="[MODULE:APP]", required=False)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--token",
    "tokens",
    multiple=True,
    metavar="TOKEN:PERM[,PERM]",
    help="An API token and its permissions (view, manage); repeat for more. "
    "TOKEN may be sha256:<hex> of the token.",
)
@click.option("--url", help="Serve a store without importing job code, e.g. sqlite:///demo.db")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="A host name the dashboard answers to besides localhost and the bound address "
    "(e.g. jobs.example.com, *.example.com); repeat for more.",
)
@click.option(
    "--open",
    "open_mode",
    is_flag=True,
    help="No credentials: every request from this machine may manage jobs (bound to "
    "loopback only). Without it and without --token, a manage token is made at start.",
)
@common
def web(
    app_arg: str | None,
    host: str,
    port: int,
    tokens: tuple[str, ...],
    url: str | None,
    allowed_hosts: tuple[str, ...],
    open_mode: bool,
    app_ref: str | None,
    as_json: bool,
) -> None:
    """Serve the dashboard and REST API of the App at MODULE:APP (or of the store at --url).

    Without --token, a manage token is made at start and the link that signs in with it is
    printed (the page keeps it in its session cookie); every request without a credential is
    refused, from this machine too. --open serves without credentials, to this machine only.

    \b
    Examples:
      conveyor web myjobs:app --port 8000 --token "$ADMIN_TOKEN:manage" --token "$OPS:view"
      conveyor web --url sqlite:///demo.db
    """
    try:
        from conveyor.web import parse_token_option, serve
        from conveyor.web.auth import is_loopback
    except ImportError:
        fail("the dashboard needs the web extra: pip install 'conveyor[web]'")
    granted: dict[str, set[str]] = {}
    for option in tokens:
        try:
            token, permissions = parse_token_option(option)
        except ConfigurationError as exc:
            fail(f"--token: {exc}", USAGE)
        granted[token] = permissions
    if open_mode and granted:
        fail("--open serves without credentials: drop it, or drop --token", USAGE)
    if open_mode and not is_loopback(host):
        fail(f"--open answers only this machine: bind it to 127.0.0.1, not {host}", USAGE)
    app = App(url) if url else load(app_arg or app_ref)
    app.backend.open()  # a store that cannot be opened fails here, not on every page
    shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host in ("0.0.0.0", "") else host)
    if open_mode:
        click.echo(
            "Warning: open mode: anyone on this machine (any user, any local program) may "
            "manage jobs; use --token for anything else.",
            err=True,
        )
    elif not granted:
        made = secrets.token_urlsafe(24)
        granted[made] = {"manage"}
        click.echo(
            f"Dashboard: http://{shown}:{port}/login?token={made}\n"
            f"API: Authorization: Bearer {made}  (a manage token made for this run; "
            "give --token to choose your own)",
            err=True,
        )
    try:
        serve(app, host, port, granted or None, open_mode=open_mode, allowed_hosts=allowed_hosts)
    except ConfigurationError as exc:  # an unknown permission
        fail(f"--token: {exc}", USAGE)
