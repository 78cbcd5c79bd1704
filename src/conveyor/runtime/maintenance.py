"""Housekeeping every worker does: rescue jobs of dead workers, promote due jobs, prune."""

from __future__ import annotations

import logging
from datetime import timedelta

from conveyor.model.validation import RATE_UNITS
from conveyor.runtime.environment import Environment

log = logging.getLogger("conveyor.maintenance")
LONGEST_WINDOW = max(RATE_UNITS.values())  # seconds: a rate's longest window (an hour)


class Sweeper:
    """One sweep: rescue expired leases and promote due scheduled jobs; prune now and then.

    Every worker sweeps; each step is one idempotent store statement, so several sweepers at once
    are harmless.
    """

    def __init__(self, env: Environment) -> None:
        self._env = env
        self._last_prune: float | None = None

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
        if (
            self._last_prune is None
            or monotonic_now - self._last_prune >= env.settings.prune_interval
        ):
            self._last_prune = monotonic_now
            settings = env.settings
            pruned = env.backend.prune(
                now - timedelta(seconds=settings.retention_completed),
                now - timedelta(seconds=settings.retention_failed),
            )
            env.backend.prune_workers(now - timedelta(seconds=settings.worker_stale_after))
            # a window older than the longest (an hour) allows its whole rate, as none does
            env.backend.prune_rate_windows(now - timedelta(seconds=LONGEST_WINDOW))
            if pruned:
                log.info("pruned %d finished jobs past their retention", pruned)
        return len(rescued) + promoted
