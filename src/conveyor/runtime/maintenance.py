"""Housekeeping every worker does: rescue jobs of dead workers, promote due jobs, roll up the
history, prune."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from conveyor.model.history import ROLL_UP_DELAY, floor_to
from conveyor.model.validation import RATE_UNITS
from conveyor.runtime.environment import Environment

log = logging.getLogger("conveyor.maintenance")
LONGEST_WINDOW = max(RATE_UNITS.values())  # seconds: a rate's longest window (an hour)
MINUTE = timedelta(minutes=1)


class Sweeper:
    """One sweep: rescue expired leases and promote due scheduled jobs, roll up the minutes
    closed since the last roll-up (once a minute); prune now and then.

    Every worker sweeps; each step is one idempotent store statement (the roll-up one
    transaction that moves the store's watermark), so several sweepers at once are harmless.
    Finished jobs are pruned only up to the watermark, so a job is always rolled up into the
    history before it can be deleted, whatever the retention.
    """

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._last_prune: float | None = None
        self._rolled_until: datetime | None = None  # the store's watermark, as last seen

    def sweep(self, monotonic_now: float) -> int:
        """Run one sweep; returns how many jobs became runnable again."""
        env, now = self._env, self._env.clock()
        rescued = env.backend.rescue_expired(now)
        for job_id in rescued:
            log.warning(
                "job %s was rescued: its worker stopped renewing the lease", job_id,
                extra={"job_id": job_id},
            )  # fmt: skip
        promoted = env.backend.promote_scheduled(now)
        mark = self.roll_up(now)
        if (
            self._last_prune is None
            or monotonic_now - self._last_prune >= env.settings.prune_interval
        ):
            self._last_prune = monotonic_now
            settings = env.settings
            pruned = env.backend.prune(
                min(now - timedelta(seconds=settings.retention_completed), mark),
                min(now - timedelta(seconds=settings.retention_failed), mark),
            )
            env.backend.prune_history(now - timedelta(seconds=settings.history_retention))
            env.backend.prune_workers(now - timedelta(seconds=settings.worker_stale_after))
            # a window older than the longest (an hour) allows its whole rate, as none does
            env.backend.prune_rate_windows(now - timedelta(seconds=LONGEST_WINDOW))
            if pruned:
                log.info("pruned %d finished jobs past their retention", pruned)
        return len(rescued) + promoted

    def roll_up(self, now: datetime) -> datetime:
        """Roll up the minutes closed `ROLL_UP_DELAY` ago, if one closed since the last time;
        returns the store's watermark (every job finished before it is in the history)."""
        until = floor_to(now - ROLL_UP_DELAY, MINUTE)
        if self._rolled_until is None or until > self._rolled_until:
            self._rolled_until = self._env.backend.roll_up_history(until) or until
        return self._rolled_until
