"""JSON encoding that names the offending value's path when it fails."""

from __future__ import annotations

import json
from typing import Any

from conveyor.errors import ArgumentsNotSerializable

_SCALARS = (str, int, float, bool, type(None))


def find_unencodable(value: Any, path: str = "$") -> str | None:
    """The path of the first value JSON cannot hold, with its type, or None if all is fine."""
    if isinstance(value, _SCALARS):
        if isinstance(value, float) and value - value != 0:  # NaN and ±inf are not JSON
            return f"{path} ({'NaN' if value != value else value})"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} (key {key!r} of type {type(key).__name__}; keys must be strings)"
            found = find_unencodable(item, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = find_unencodable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    return f"{path} (a {type(value).__name__})"


# Values that never need a closer look: the common flat case is checked without building paths.
_PLAIN = frozenset({str, int, bool, type(None)})


def check_arguments(args: dict[str, Any]) -> None:
    """Refuse job arguments that JSON cannot hold, naming the first offending path."""
    for key, value in args.items():
        if type(key) is not str or type(value) not in _PLAIN:
            break
    else:
        return
    found = find_unencodable(args, "args")
    if found:
        raise ArgumentsNotSerializable(
            f"job arguments must be JSON-encodable, but {found} is not: "
            "pass plain values (str, int, float, bool, None, lists, dicts) such as ids"
        )


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text for storage (one shared encoder: this is on the enqueue hot path)."""
    return _ENCODER.encode(value)


loads = json.loads
