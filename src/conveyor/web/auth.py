"""Who may do what: API tokens, the `authorize` hook, the session cookie and CSRF tokens.

Permissions are `view` (read everything) and `manage` (also change things; implies `view`).
A request's permissions are the union of what its Bearer token, its session cookie's token and
the application's `authorize(request)` hook grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import inspect
import ipaddress
import json
import secrets
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from conveyor.errors import ConfigurationError

VIEW = "view"
MANAGE = "manage"
PERMISSIONS = frozenset({VIEW, MANAGE})
OPEN_REMOTE_REFUSED = (
    "this dashboard runs in open mode, so it answers only requests from this machine: "
    "configure tokens (conveyor web --token TOKEN:manage, or create_app(app, tokens=...)) "
    "or an authorize hook to use it from elsewhere"
)
NO_CREDENTIALS = (
    "the dashboard needs credentials: give tokens (create_app(app, tokens={TOKEN: {'manage'}})), "
    "an authorize hook, or open_mode=True for this machine only (local use); `conveyor web` "
    "makes a token for you"
)
HASH_PREFIX = "sha256:"
SESSION_COOKIE = "conveyor_session"
FLASH_COOKIE = "conveyor_flash"
FLASH_LIMIT = 1000  # characters of a notice kept (a cookie holds about 4 kB)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"

Authorize = Callable[[Request], Iterable[str] | Awaitable[Iterable[str]]]


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def normalize(permissions: Iterable[str]) -> frozenset[str]:
    """Known permissions only; `manage` implies `view`."""
    granted = frozenset(permissions) & PERMISSIONS
    return granted | {VIEW} if MANAGE in granted else granted


class TokenStore:
    """API tokens kept hashed. Keys are plain tokens, or `sha256:<hex>` of a token."""

    def __init__(self, tokens: Mapping[str, Iterable[str]] | None) -> None:
        self._hashed: list[tuple[bytes, frozenset[str]]] = []
        for token, permissions in (tokens or {}).items():
            if not token:
                raise ConfigurationError("an API token must not be empty")
            unknown = set(permissions) - PERMISSIONS
            if unknown:
                raise ConfigurationError(
                    f"unknown permissions {sorted(unknown)}: use view and manage"
                )
            digest = token[len(HASH_PREFIX) :] if token.startswith(HASH_PREFIX) else None
            digest = digest.lower() if digest else hash_token(token)
            self._hashed.append((digest.encode(), normalize(permissions)))

    def __bool__(self) -> bool:
        return bool(self._hashed)

    def permissions_for_hash(self, digest: str) -> frozenset[str]:
        """What the token with this SHA-256 grants (empty if none matches)."""
        candidate = digest.encode()
        granted: frozenset[str] = frozenset()
        for stored, permissions in self._hashed:  # compare with every one: constant time
            if hmac.compare_digest(stored, candidate):
                granted = permissions
        return granted

    def permissions_for(self, token: str) -> frozenset[str]:
        """What this plain token grants (empty if it is not configured)."""
        return self.permissions_for_hash(hash_token(token))


@dataclass(frozen=True, slots=True)
class Session:
    """The dashboard session: an id that CSRF tokens are tied to, and the logged-in token."""

    sid: str
    token_hash: str | None = None


@dataclass(frozen=True, slots=True)
class Flash:
    """A notice for the next page a session opens: what its action did, or why it could not."""

    message: str
    error: bool = False
    #: A notice about one job in one state ("cancellation requested" while it runs) is not
    #: shown on that job's page once the job has left that state.
    job_id: str | None = None
    while_state: str | None = None


class Signer:
    """Signs session and flash cookies and derives CSRF tokens with one secret."""

    def __init__(self, secret: str | bytes | None) -> None:
        if secret is None:
            self._key = secrets.token_bytes(32)
        else:
            self._key = secret.encode() if isinstance(secret, str) else secret

    def _mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def _seal(self, purpose: str, data: dict[str, object]) -> str:
        payload = json.dumps(data, ensure_ascii=False).encode()
        body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
        return f"{body}.{self._mac(purpose, body)}"

    def _unseal(self, purpose: str, value: str | None) -> dict[str, object] | None:
        if not value or "." not in value:
            return None
        body, mac = value.rsplit(".", 1)
        if not hmac.compare_digest(mac.encode(), self._mac(purpose, body).encode()):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def dump(self, session: Session) -> str:
        """The cookie value for a session."""
        return self._seal("session", {"sid": session.sid, "tok": session.token_hash})

    def load(self, value: str | None) -> Session | None:
        """The session in a cookie value, or None if it is missing, forged or malformed."""
        data = self._unseal("session", value)
        if data is None:
            return None
        sid, tok = data.get("sid"), data.get("tok")
        if not isinstance(sid, str) or not (tok is None or isinstance(tok, str)):
            return None
        return Session(sid, tok)

    def dump_flash(self, session: Session, flash: Flash) -> str:
        """The cookie value carrying `flash` to the session's next page (signed, and tied to
        the session: it shows for no one else)."""
        data: dict[str, object] = {
            "sid": session.sid,
            "msg": flash.message[:FLASH_LIMIT],
            "err": flash.error,
        }
        if flash.job_id and flash.while_state:
            data["job"], data["while"] = flash.job_id, flash.while_state
        return self._seal("flash", data)

    def load_flash(self, value: str | None, session: Session | None) -> Flash | None:
        """The notice in a flash cookie, or None if it is missing, forged, malformed or for
        another session."""
        data = self._unseal("flash", value)
        if data is None or session is None or data.get("sid") != session.sid:
            return None
        message, error = data.get("msg"), data.get("err")
        job_id, while_state = data.get("job"), data.get("while")
        if not isinstance(message, str) or not isinstance(error, bool):
            return None
        if not (isinstance(job_id, str) and isinstance(while_state, str)):
            job_id = while_state = None
        return Flash(message, error, job_id, while_state)

    def csrf_token(self, session: Session) -> str:
        """The CSRF token of a session (signed, so it cannot be made up for another one)."""
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session | None, token: str | None) -> bool:
        """Whether `token` is this session's CSRF token."""
        if session is None or not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())


def new_session(token_hash: str | None = None) -> Session:
    """A fresh session with a random id."""
    return Session(secrets.token_urlsafe(18), token_hash)


@dataclass(frozen=True, slots=True)
class Identity:
    """What a request may do, and how it proved it."""

    permissions: frozenset[str]
    bearer: bool  # authenticated by an Authorization header: exempt from CSRF
    session: Session | None
    authenticated: bool  # some credential or the hook granted something

    def can(self, permission: str) -> bool:
        """Whether the request holds `permission`."""
        return permission in self.permissions


class Auth:
    """Resolves a request's Identity from its token, cookie and the authorize hook."""

    def __init__(
        self,
        tokens: Mapping[str, Iterable[str]] | None,
        authorize: Authorize | None,
        secret: str | bytes | None,
        *,
        open_mode: bool = False,
    ) -> None:
        self.tokens = TokenStore(tokens)
        self.authorize = authorize
        self.signer = Signer(secret)
        credentials = bool(self.tokens) or authorize is not None
        if open_mode and credentials:
            raise ConfigurationError(
                "open_mode is for a dashboard without credentials: drop it, or drop the "
                "tokens and the authorize hook"
            )
        if not open_mode and not credentials:
            raise ConfigurationError(NO_CREDENTIALS)
        self.open = open_mode  # asked for explicitly: this machine may do everything

    async def identify(self, request: Request) -> Identity:
        """Everything the request may do. In open mode (asked for explicitly) a request from
        this machine may do everything and one from elsewhere nothing: a dashboard bound to
        0.0.0.0 by mistake exposes no job. Otherwise only credentials grant anything."""
        session = self.signer.load(request.cookies.get(SESSION_COOKIE))
        if self.open:
            if request.client is not None and is_loopback(request.client.host):
                return Identity(PERMISSIONS, False, session, True)
            return Identity(frozenset(), False, session, False)
        granted: set[str] = set()
        bearer = False
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        if scheme.lower() == "bearer" and credential.strip():
            from_token = self.tokens.permissions_for(credential.strip())
            granted |= from_token
            bearer = bool(from_token)
        if session is not None and session.token_hash:
            granted |= self.tokens.permissions_for_hash(session.token_hash)
        if self.authorize is not None:
            granted |= await _call_hook(self.authorize, request)
        permissions = normalize(granted)
        return Identity(permissions, bearer, session, bool(permissions))


def is_loopback(host: str) -> bool:
    """Whether a client address is this machine (127.0.0.0/8, ::1 or "localhost")."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _call_hook(hook: Authorize, request: Request) -> set[str]:
    """Run the authorize hook: async ones on the loop, sync ones on a thread (they may block)."""
    if inspect.iscoroutinefunction(hook):
        result = await hook(request)
    else:
        result = await run_in_threadpool(hook, request)
        if inspect.isawaitable(result):
            result = await result
    return set(result)


def set_session_cookie(response: Response, signer: Signer, session: Session, path: str) -> None:
    """Store the session in an HttpOnly, SameSite=Strict cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        signer.dump(session),
        httponly=True,
        samesite="strict",
        path=path or "/",
        secure=False,  # served over plain HTTP on localhost too; a TLS proxy may add Secure
    )


def set_flash_cookie(
    response: Response, signer: Signer, session: Session, flash: Flash, path: str
) -> None:
    """Keep `flash` for the session's next page, in an HttpOnly, SameSite=Strict cookie that
    the page deletes once shown."""
    response.set_cookie(
        FLASH_COOKIE,
        signer.dump_flash(session, flash),
        max_age=300,  # a notice nobody came back for is gone after five minutes
        httponly=True,
        samesite="strict",
        path=path or "/",
        secure=False,
    )


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def host_allowed(host_header: str, allowed: Iterable[str]) -> bool:
    """Whether a Host header names one of `allowed` (names or addresses, the port ignored;
    `*.example.com` matches its subdomains, `*` anything)."""
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    for pattern in allowed:
        pattern = pattern.lower().strip("[]")
        if pattern == "*" or host == pattern:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]):
            return True
    return False
