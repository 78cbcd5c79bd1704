"""The worker's live status line on a terminal: processed, failed, rate, in flight."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from rich.text import Text

from conveyor.runtime.worker import WorkerStats

RATE_WINDOW = 10.0  # seconds the rate is averaged over


class StatusLine:
    """Renders a worker's WorkerStats as one line; rich's Live calls it a few times a second."""

    def __init__(
        self,
        stats: WorkerStats,
        clock: Callable[[], float] = time.monotonic,
        window: float = RATE_WINDOW,
    ) -> None:
        self.stats = stats
        self._clock = clock
        self._window = window
        self._samples: deque[tuple[float, int]] = deque()

    def processed(self) -> int:
        """Attempts that ended here: succeeded, failed, retried or cancelled."""
        s = self.stats
        return s.succeeded + s.failed + s.retried + s.cancelled

    def rate(self) -> float:
        """Attempts ended per second over the last `window` seconds (0 at first)."""
        now, processed = self._clock(), self.processed()
        self._samples.append((now, processed))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        first_at, first = self._samples[0]
        elapsed = now - first_at
        return (processed - first) / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        """'processed 120 · succeeded 115 · failed 3 · retried 2 · 4.2/s · in flight 4'."""
        s = self.stats
        in_flight = s.claimed - self.processed() - s.released - s.lost
        return (
            f"processed {self.processed()} · succeeded {s.succeeded} · failed {s.failed} · "
            f"retried {s.retried} · {self.rate():.1f}/s · in flight {max(in_flight, 0)}"
        )

    def __rich__(self) -> Text:
        """The line for rich."""
        return Text(self.text(), style="bold")


__all__ = ["StatusLine"]
