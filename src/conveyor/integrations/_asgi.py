"""Serving the ASGI dashboard from a synchronous (WSGI) framework's view: one request in,
one whole response out, run on an event loop thread of its own.

The host framework's view decides the permissions first, with its own login, and hands them
in the ASGI scope (`SCOPE_KEY`), a place no client can write to; the dashboard's authorize
hook reads them there (`permissions_from_host`). The dashboard sends no streaming responses,
so a response is collected whole before the view returns it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from conveyor.integrations._permissions import SCOPE_KEY

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

WEB_EXTRA_MISSING = (
    "the dashboard needs the web extra (FastAPI and Jinja2): pip install 'conveyor[{extra},web]'"
)


@dataclass(frozen=True, slots=True)
class HostRequest:
    """What the host framework's view knows of a request to the dashboard."""

    method: str
    scheme: str
    root_path: str  # where the dashboard is mounted, e.g. "/admin/jobs"
    path: str  # the whole path, starting with root_path
    query_string: bytes
    headers: Iterable[tuple[str, str]]
    body: bytes
    client: tuple[str, int] | None
    server: tuple[str, int] | None
    permissions: frozenset[str]  # what the host's login granted


@dataclass(slots=True)
class Reply:
    """The dashboard's whole response."""

    status: int = 500
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def permissions_from_host(request: Any) -> set[str]:
    """The dashboard's authorize hook behind a bridge: what the host's view granted."""
    return set(request.scope.get(SCOPE_KEY, ()))


class Bridge:
    """Calls an ASGI app from synchronous code, on an event loop run by a daemon thread
    started at the first request (concurrent requests share it); `close()` stops it."""

    def __init__(self, asgi: Any, *, timeout: float = 60.0) -> None:
        self.asgi = asgi
        self.timeout = timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, request: HostRequest) -> Reply:
        """Serve `request` and return the response (TimeoutError past `timeout` seconds)."""
        future = asyncio.run_coroutine_threadsafe(self._serve(request), self._running_loop())
        return future.result(self.timeout)

    def close(self) -> None:
        """Stop the loop thread (a later call starts another)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(self.timeout)
            loop.close()

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="conveyor-dashboard", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop

    async def _serve(self, request: HostRequest) -> Reply:
        reply = Reply()
        answered = asyncio.Event()
        body_read = False

        async def receive() -> Message:
            nonlocal body_read
            if not body_read:
                body_read = True
                return {"type": "http.request", "body": request.body, "more_body": False}
            await answered.wait()  # nothing more comes: the client "leaves" once answered
            return {"type": "http.disconnect"}

        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                reply.status = int(message["status"])
                reply.headers = [
                    (bytes(name).decode("latin-1"), bytes(value).decode("latin-1"))
                    for name, value in message.get("headers", ())
                ]
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    answered.set()

        try:
            await self.asgi(_scope(request), receive, send)
        finally:
            answered.set()
        reply.body = b"".join(chunks)
        return reply


def _scope(request: HostRequest) -> Scope:
    headers = [
        (name.lower().encode("latin-1", "replace"), value.encode("latin-1", "replace"))
        for name, value in request.headers
    ]
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": request.method.upper(),
        "scheme": request.scheme,
        "path": request.path,
        "root_path": request.root_path,
        "query_string": request.query_string,
        "headers": headers,
        "client": request.client,
        "server": request.server,
        "state": {},
        SCOPE_KEY: request.permissions,
    }


def mount_path(path: str) -> str:
    """A mount point like "/admin/jobs" (no trailing slash), or a clear error."""
    from conveyor.errors import ConfigurationError

    cleaned = path.strip()
    if not cleaned.startswith("/") or not cleaned.strip("/"):
        raise ConfigurationError(
            f"the dashboard's path must be below the site's root, like '/admin/jobs', got {path!r}"
        )
    return "/" + cleaned.strip("/")


__all__ = [
    "WEB_EXTRA_MISSING",
    "Bridge",
    "HostRequest",
    "Reply",
    "mount_path",
    "permissions_from_host",
]
