"""JSON encoding that names the offending value's path when it fails."""

from __future__ import annotations

import json
from typing import Any

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


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text for storage (one shared encoder: this is on the enqueue hot path)."""
    return _ENCODER.encode(value)


loads = json.loads
