"""The JSON encoding of stored values (what may be stored is model/validation.py's rule)."""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def dumps(value: Any) -> str:
    """Compact JSON text for storage (one shared encoder: this is on the enqueue hot path)."""
    return _ENCODER.encode(value)


loads = json.loads
