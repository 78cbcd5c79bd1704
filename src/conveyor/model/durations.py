"""Durations as people read them, the same on the dashboard and in the CLI."""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    """A duration as the pages (and app.js) write it: 450 ms, 3.4 s, 42 s, 2 min 5 s,
    3 h 10 min, 2 d 4 h; None is a dash."""
    if seconds is None:
        return "—"
    seconds = max(0.0, seconds)
    if seconds < 0.9995:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 9.95:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
