"""Fixtures for the bridge tests (helpers live in support.py)."""

from __future__ import annotations

from .support import bridge, clock, errors

__all__ = ["bridge", "clock", "errors"]
