"""What a host application's permission hook may return, checked the same way for every
framework: a permission name, a collection of them, or None (nothing)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from conveyor.errors import PermissionHookError

VIEW = "view"
MANAGE = "manage"
KNOWN = frozenset({VIEW, MANAGE})
SCOPE_KEY = "conveyor.permissions"  # where a WSGI host's verdict travels in the ASGI scope

Permission: TypeAlias = Literal["view", "manage"]
Granted: TypeAlias = Permission | Iterable[str] | None


def permissions_of(granted: object, hook: object) -> frozenset[str]:
    """The permissions a hook's answer grants (`manage` implies `view`); anything else than
    "view", "manage", a collection of them, None or False is refused with an error naming the
    hook, so a typo can never open the dashboard (nor silently close it)."""
    if granted is None or granted is False:
        return frozenset()
    if isinstance(granted, str):
        names: frozenset[object] = frozenset([granted])
    elif isinstance(granted, Iterable) and not isinstance(granted, bytes):
        names = frozenset(granted)
    else:
        raise PermissionHookError(
            f"the permission hook {_name(hook)} returned {granted!r}: return 'view', 'manage', "
            "a set of them, or None for no access"
        )
    unknown = names - KNOWN
    if unknown:
        shown = ", ".join(sorted(repr(name) for name in unknown))
        raise PermissionHookError(
            f"the permission hook {_name(hook)} returned {shown}: the permissions are 'view' "
            "and 'manage' (return None for no access)"
        )
    permissions = frozenset(str(name) for name in names)
    return permissions | {VIEW} if MANAGE in permissions else permissions


def _name(hook: object) -> str:
    return getattr(hook, "__qualname__", None) or repr(hook)


__all__ = ["KNOWN", "MANAGE", "SCOPE_KEY", "VIEW", "Granted", "Permission", "permissions_of"]
