"""`conveyor web`: serve the dashboard and REST API (needs the `web` extra)."""

from __future__ import annotations

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
@common
def web(
    app_arg: str | None,
    host: str,
    port: int,
    tokens: tuple[str, ...],
    url: str | None,
    app_ref: str | None,
    as_json: bool,
) -> None:
    """Serve the dashboard and REST API of the App at MODULE:APP (or of the store at --url).

    Without --token the dashboard answers only requests from this machine (open to them).

    \b
    Examples:
      conveyor web myjobs:app --port 8000 --token "$ADMIN_TOKEN:manage" --token "$OPS:view"
      conveyor web --url sqlite:///demo.db
    """
    try:
        from conveyor.web import parse_token_option, serve
    except ImportError:
        fail("the dashboard needs the web extra: pip install 'conveyor[web]'")
    granted: dict[str, set[str]] = {}
    for option in tokens:
        try:
            token, permissions = parse_token_option(option)
        except ConfigurationError as exc:
            fail(f"--token: {exc}", USAGE)
        granted[token] = permissions
    app = App(url) if url else load(app_arg or app_ref)
    try:
        serve(app, host, port, granted or None)
    except ConfigurationError as exc:  # an unknown permission
        fail(f"--token: {exc}", USAGE)
