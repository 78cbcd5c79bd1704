"""The worker: claim due jobs into free slots, run them, acknowledge outcomes in batches."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from conveyor.backends.records import Claimed, ClaimRequest, Outcome, WorkerInfo
from conveyor.errors import ConfigurationError, UsageError
from conveyor.model.job import Job, JobState
from conveyor.model.workers import WorkerMode, WorkerRequest, mode_asked
from conveyor.runtime.attempt import Attempts
from conveyor.runtime.environment import Environment
from conveyor.runtime.executor import RunningJob, StopReason
from conveyor.runtime.maintenance import Sweeper
from conveyor.runtime.prefetch import RELEASE_AFTER, PrefetchPlan, ReadyJobs
from conveyor.runtime.processes import ChildLimits, ProcessPool
from conveyor.runtime.reporting import ReportBuffer
from conveyor.runtime.scheduler import Scheduler
from conveyor.runtime.threads import DaemonThreadPool

log = logging.getLogger("conveyor.worker")
SCHEDULER_MAX_SLEEP = 1.0
T = TypeVar("T")


@dataclass(slots=True)
class WorkerStats:
    """What this worker has done since it started."""

    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0  # outcomes dropped because the lease was lost


class Worker:
    """Runs jobs from the store until stopped.

    Use `async with worker:` (or `await worker.start()` / `await worker.stop()`) inside an
    application, or `worker.run_forever()` as a process's main function. An operator can
    quiet it (it claims nothing new, finishes what runs, stays up) or stop it (as SIGTERM
    does) from the dashboard or the CLI; it reads the request in its next heartbeat.
    """

    def __init__(
        self,
        env: Environment,
        *,
        queues: Iterable[str] | None = None,
        concurrency: int | None = None,
        processes: int | None = None,
        maintenance: bool = True,
        scheduler: bool = True,
    ) -> None:
        self.env = env
        self.queues = frozenset(queues) if queues else None
        self.concurrency = concurrency or env.settings.concurrency
        if processes is not None and processes < 1:
            raise ConfigurationError("processes must be at least 1 (children for process jobs)")
        self._process_count = processes or env.settings.processes or os.cpu_count() or 1
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stats = WorkerStats()
        self._maintenance = maintenance
        self._scheduler = scheduler
        self._running: dict[str, RunningJob] = {}
        self._ready = ReadyJobs()  # claimed ahead, waiting for a slot (see runtime/prefetch.py)
        self._prefetch = PrefetchPlan(self.concurrency, env.settings.prefetch)
        # by (id, attempt): a retry's next attempt can finish before the previous one's
        # acknowledgement is processed, and must not take its entry
        self._unacked: dict[tuple[str, int], Job] = {}
        self._outcomes: list[Outcome] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._quiet = False  # an operator asked it to claim nothing new (model/workers.py)
        self._operator_stop: asyncio.Task[None] | None = None
        self._writer_done = False  # set by stop(): the writer loop ends after its current write
        self._stopped = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._io_pool: ThreadPoolExecutor | None = None
        self._claim_pool: ThreadPoolExecutor | None = None
        self._job_threads = DaemonThreadPool(self.concurrency + 8)
        self._processes: ProcessPool | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._waiter: threading.Thread | None = None
        self._started_at = env.clock()

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start claiming and running jobs in the current event loop."""
        if self._loop is not None:
            raise UsageError("this worker has already been started")
        self._loop = loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._unquiet = asyncio.Event()  # set when claiming may go on: resumed, or stopping
        self._beat_now = asyncio.Event()  # the mode changed: report it without waiting
        self._stop_done = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._flush_needed = asyncio.Event()
        self._reports = ReportBuffer(self.env.settings.progress_flush_count, self._request_flush)
        self._processes = self._process_pool()
        self._attempts = Attempts(
            self.env, self.id, self._job_threads, self._reports, processes=self._processes
        )
        if self._processes is not None:
            await self._processes.warm_up()
        if self.env.backend.blocking:
            # Claims get a thread of their own so that they overlap with the writes of
            # outcomes, reports and heartbeats instead of queueing behind them.
            self._io_pool = ThreadPoolExecutor(1, thread_name_prefix="conveyor-io")
            self._claim_pool = ThreadPoolExecutor(1, thread_name_prefix="conveyor-claim")
        self._unsubscribe = self.env.backend.subscribe(self._wake_threadsafe)
        await self._heartbeat()
        self._tasks = [
            loop.create_task(self._fetch_loop(), name="conveyor-fetch"),
            loop.create_task(self._writer_loop(), name="conveyor-writer"),
            loop.create_task(self._heartbeat_loop(), name="conveyor-heartbeat"),
        ]
        if self._maintenance:
            self._tasks.append(loop.create_task(self._maintenance_loop(), name="conveyor-sweep"))
        if self._scheduler:
            scheduler = Scheduler(
                self.env.backend, self.env.registry, self.env.clock, self.env.recurring
            )
            await self._io(scheduler.sync)
            self._tasks.append(
                loop.create_task(self._scheduler_loop(scheduler), name="conveyor-scheduler")
            )
        if self.env.backend.blocking:
            self._waiter = threading.Thread(
                target=self._wait_for_jobs, name="conveyor-wait", daemon=True
            )
            self._waiter.start()
        log.info(
            "worker %s started: queues=%s concurrency=%d",
            self.id, ",".join(sorted(self.queues)) if self.queues else "all", self.concurrency,
        )  # fmt: skip

    async def stop(self, timeout: float | None = None) -> None:
        """Stop claiming, wait up to `timeout` (default: shutdown_timeout) for running jobs,
        return the rest to pending without counting their attempt, and flush every outcome."""
        if self._loop is None:
            return
        if self._stopping:
            await self._stop_done.wait()  # another caller (an operator's stop) is stopping it
            return
        self._stopping = True
        self._wake.set()
        self._unquiet.set()
        self._beat_now.set()
        self._slot_freed.set()
        fetch = self._tasks[0]
        await asyncio.gather(fetch, return_exceptions=True)
        self._release_ready("shutdown")
        grace = self.env.settings.shutdown_timeout if timeout is None else timeout
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            log.info("waiting up to %g s for %d running job(s)", grace, len(tasks))
            await asyncio.wait(tasks, timeout=grace)
        leftover = list(self._running.values())
        for running in leftover:
            self._stop_job(running, "shutdown")
        if leftover:
            log.warning("returned %d unfinished job(s) to the queue", len(leftover))
            await asyncio.wait([r.task for r in leftover if r.task], timeout=5)
        # The writer is not cancelled: a write in flight would be cut off from its
        # acknowledgement (stats, hooks) or, not yet started, skipped. It ends after it.
        writer, others = self._tasks[1], self._tasks[2:]
        self._writer_done = True
        self._flush_needed.set()
        for task in others:
            task.cancel()
        await asyncio.gather(writer, *others, return_exceptions=True)
        await self._flush(final=True)
        if self._unsubscribe:
            self._unsubscribe()
        try:
            await self._io(self.env.backend.unregister_worker, self.id)
        except Exception:
            log.exception("could not unregister worker %s; it will be pruned as stale", self.id)
        self._job_threads.shutdown(wait=False)
        if self._processes is not None:
            await self._processes.close()
        if self._waiter is not None:
            # the app may close the store right after stop(): let the waiter leave it first
            await asyncio.to_thread(self._waiter.join, 2.0)
        for pool in (self._claim_pool, self._io_pool):
            if pool:
                pool.shutdown(wait=True)
        self._stopped = True
        self._stop_done.set()
        log.info("worker %s stopped", self.id)

    async def wait_stopped(self) -> None:
        """Wait until the worker has stopped: by `stop()`, or by an operator's stop request
        (`conveyor workers stop ID`), after which it stops itself."""
        if self._loop is None:
            raise UsageError("this worker has not been started")
        await self._stop_done.wait()

    @property
    def mode(self) -> WorkerMode:
        """What the worker is doing: running, quiet (claims nothing new) or stopping."""
        if self._stopping:
            return "stopping"
        return "quiet" if self._quiet else "running"

    def _process_pool(self) -> ProcessPool | None:
        """Child processes, when a job or a queue of this worker asks for them."""
        env = self.env
        wanted = any(d.executor == "process" for d in env.registry.values()) or any(
            executor == "process" for executor in env.queue_executors.values()
        )
        if not wanted:
            return None
        settings = env.settings
        limits = ChildLimits(
            settings.process_grace,
            settings.max_tasks_per_child,
            settings.max_memory_per_child * 2**20,
        )
        return ProcessPool(self._process_count, limits)

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def run_forever(self) -> None:
        """Run until SIGINT/SIGTERM: the first signal stops gracefully, a second exits at once
        (the jobs' leases then bring them back after they expire)."""

        async def main() -> None:
            loop = asyncio.get_running_loop()
            done = asyncio.Event()
            signals = 0

            def on_signal() -> None:
                nonlocal signals
                signals += 1
                if signals > 1:
                    log.warning("second signal: exiting now; leases will return running jobs")
                    os._exit(1)
                log.info("stopping: finishing running jobs (send the signal again to exit now)")
                done.set()

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, on_signal)
            async with self:
                waits = [loop.create_task(done.wait()), loop.create_task(self.wait_stopped())]
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                for waiting in waits:
                    waiting.cancel()

        asyncio.run(main())

    def beat_now(self) -> None:
        """Send the next heartbeat now, not at its interval (thread-safe): an operator's
        request of this worker, made in this process, then applies at once."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed since the check
                loop.call_soon_threadsafe(self._beat_now.set)

    # cancellation ----------------------------------------------------------------------------
    def request_cancel(self, job_id: str) -> bool:
        """Cancel a job running here (thread-safe); returns False if it does not run here."""
        loop = self._loop
        if loop is None or (job_id not in self._running and job_id not in self._ready):
            return False
        loop.call_soon_threadsafe(self._cancel_now, job_id)
        return True

    def _cancel_now(self, job_id: str) -> None:
        running = self._running.get(job_id)
        if running is not None:
            self._stop_job(running, "cancelled")
            return
        waiting = self._ready.remove(job_id)
        if waiting is not None:
            self._record(waiting, self._attempts.executor.stopped(waiting, "cancelled"))

    def _stop_job(self, running: RunningJob, reason: str) -> None:
        if running.stop_reason is None and running.task is not None:
            running.stop_reason = "shutdown" if reason == "shutdown" else "cancelled"
            running.ctx.cancel_requested = True
            running.task.cancel()

    # the hot path ----------------------------------------------------------------------------
    async def _fetch_loop(self) -> None:
        settings = self.env.settings
        lease = timedelta(seconds=settings.lease_seconds)
        failures = 0
        while not self._stopping:
            if self._quiet:
                self._release_ready("shutdown")
                self._unquiet.clear()
                await self._unquiet.wait()
                continue
            self._hand_back_stale_ready()
            room = self._claim_room()
            if room <= 0:
                await self._wait_for_slot()
                continue
            self._wake.clear()
            now = self.env.clock()
            # the store applies the queues' stored limits (their settings, model/queues.py)
            request = ClaimRequest(self.id, room, now, now + lease, self.queues)
            began = time.monotonic()
            try:
                claimed = await self._claim(request)
                failures = 0
            except Exception as exc:
                failures += 1
                delay = min(0.1 * 2**failures, 10.0)
                log.error("claiming jobs failed (%s); retrying in %.1f s", exc, delay)
                await self._sleep_or_wake(delay)
                continue
            self._prefetch.claimed(time.monotonic() - began)
            self._attempts.claimed(claimed.jobs, room)
            if self._quiet:  # quieted while this claim was in flight: none of them starts
                for job in claimed.jobs:
                    self._record(job, self._attempts.executor.stopped(job, "shutdown"))
                continue
            for job in claimed.jobs:
                if len(self._running) < self.concurrency:
                    self._start_job(job)
                else:
                    self._ready.add(job)
            if len(claimed.jobs) == room:
                await asyncio.sleep(0)  # let finished jobs free their slots before claiming again
                continue
            timeout = settings.poll_interval
            if self._ready:
                timeout = min(timeout, RELEASE_AFTER)  # then see whether they waited too long
            if claimed.next_run_at is not None:
                due_in = (claimed.next_run_at - self.env.clock()).total_seconds()
                timeout = min(timeout, max(due_in, 0.001))
            await self._sleep_or_wake(timeout)

    def _claim_room(self) -> int:
        """How many jobs to claim now: every free slot plus the jobs to hold ready. With no
        free slot, top the ready jobs up only once half of them started, so claims stay
        batches rather than one job each."""
        free = self.concurrency - len(self._running)
        ahead = self._prefetch.target()
        if free > 0:  # then nothing waits in _ready: a freed slot starts a ready job at once
            return free + ahead
        missing = ahead - len(self._ready)
        return missing if missing * 2 >= ahead else 0

    async def _wait_for_slot(self) -> None:
        """Wait until a slot frees; hand ready jobs back if they waited too long (the running
        jobs turned out longer than the recent ones)."""
        self._slot_freed.clear()
        if not self._ready:
            await self._slot_freed.wait()
            return
        try:
            async with asyncio.timeout(RELEASE_AFTER):
                await self._slot_freed.wait()
        except TimeoutError:
            self._hand_back_stale_ready()

    def _hand_back_stale_ready(self) -> None:
        """Hand the ready jobs back if the oldest waited too long for a slot (the running jobs
        turned out long: another worker may be free), and stop claiming ahead for now."""
        waited = self._ready.oldest_wait()
        if waited >= RELEASE_AFTER:
            self._prefetch.stalled(waited)
            self._release_ready("shutdown")

    def _release_ready(self, reason: StopReason) -> None:
        for job in self._ready.take_all():
            self._record(job, self._attempts.executor.stopped(job, reason))

    async def _sleep_or_wake(self, timeout: float) -> None:
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            pass

    def _start_job(self, job: Job) -> None:
        self.stats.claimed += 1
        running = self._attempts.prepare(job)
        self._running[job.id] = running
        running.task = asyncio.get_running_loop().create_task(self._run_job(running))

    async def _run_job(self, running: RunningJob) -> None:
        job = running.job
        began = time.monotonic()
        try:
            outcome = await self._attempts.run(running)
        finally:
            del self._running[job.id]
            if self._ready and not self._stopping and not self._quiet:
                waiting = self._ready.next()
                assert waiting is not None
                self._start_job(waiting)
            self._slot_freed.set()
        self._prefetch.ran(time.monotonic() - began)
        self._record(job, outcome)

    def _record(self, job: Job, outcome: Outcome) -> None:
        """Queue an attempt's outcome for the next batched write."""
        self._unacked[job.id, job.attempt] = job
        self._outcomes.append(outcome)
        if not self._flush_needed.is_set():
            self._flush_needed.set()

    # writing outcomes and reports ------------------------------------------------------------
    def _request_flush(self) -> None:
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._flush_needed.set)

    async def _writer_loop(self) -> None:
        settings = self.env.settings
        while not self._writer_done:
            try:
                async with asyncio.timeout(settings.progress_flush_interval):
                    await self._flush_needed.wait()
            except TimeoutError:
                pass
            if self._writer_done:
                return  # stop() writes what is left
            self._flush_needed.clear()
            # Gather a batch while other jobs run and may finish meanwhile; with none running
            # no outcome is coming to batch with, and waiting would only delay what the
            # outcome frees (a serial queue's next job, a workflow's next step).
            if self._outcomes and len(self._outcomes) < settings.ack_batch_size and self._running:
                await asyncio.sleep(settings.ack_interval)
            await self._flush()

    async def _flush(self, final: bool = False) -> None:
        """Write buffered reports, then outcomes; keep what could not be written and retry."""
        attempts = 0
        while True:
            reports = self._reports.take()
            outcomes, self._outcomes = self._outcomes, []
            try:
                if reports:
                    await self._io(
                        self.env.backend.report, reports, self.env.settings.max_log_lines
                    )
                    reports = []
                if outcomes:
                    dropped = await self._io(self.env.backend.finish, outcomes)
                    self._acknowledged(outcomes, set(dropped))
                return
            except Exception as exc:
                self._reports.put_back(reports)
                self._outcomes[:0] = outcomes
                attempts += 1
                if not final and self._writer_done:
                    return  # stopping: the final flush retries, a bounded number of times
                if final and attempts >= 5:
                    log.error(
                        "could not record %d outcome(s) before stopping (%s); their leases "
                        "will expire and the jobs will run again", len(self._outcomes), exc,
                    )  # fmt: skip
                    return
                delay = min(0.1 * 2**attempts, 5.0)
                log.error("recording job outcomes failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    def _acknowledged(self, outcomes: list[Outcome], dropped: set[str]) -> None:
        stats = self.stats
        for outcome in outcomes:
            job = self._unacked.pop((outcome.job_id, outcome.attempt), None)
            if outcome.job_id in dropped:
                stats.lost += 1
                log.warning(
                    "outcome of job %s was not recorded: this worker lost its lease and the job "
                    "was handed to another worker", outcome.job_id,
                    extra={"job_id": outcome.job_id},
                )  # fmt: skip
                continue
            state = outcome.state
            if not outcome.count_attempt:
                stats.released += 1
                continue
            if state is JobState.COMPLETED:
                stats.succeeded += 1
            elif state is JobState.FAILED:
                stats.failed += 1
            elif state is JobState.CANCELLED:
                stats.cancelled += 1
            else:
                stats.retried += 1
            if job is not None:
                self._attempts.acknowledged(job, outcome)

    # liveness and housekeeping ---------------------------------------------------------------
    async def _heartbeat(self) -> WorkerRequest | None:
        """Record this worker alive with its mode; cancel the jobs asked to stop; return what
        an operator asks of it."""
        env = self.env
        now = env.clock()
        info = WorkerInfo(
            self.id,
            socket.gethostname(),
            os.getpid(),
            tuple(sorted(self.queues)) if self.queues else None,
            self.concurrency,
            self._started_at,
            now,
            self.mode,
        )
        ids = [*self._running, *(job.id for job in self._ready)]
        ids += dict.fromkeys(job_id for job_id, _ in self._unacked)
        lease = now + timedelta(seconds=env.settings.lease_seconds)
        beat = await self._io(env.backend.heartbeat, info, ids, lease)
        for job_id in beat.cancel_requested:
            self._cancel_now(job_id)
        return beat.requested

    async def _heartbeat_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.env.settings.heartbeat_interval):
                    await self._beat_now.wait()
            except TimeoutError:
                pass
            self._beat_now.clear()
            try:
                requested = await self._heartbeat()
            except Exception as exc:
                log.error("heartbeat failed (%s); will retry: running jobs keep their lease "
                          "until it expires", exc)  # fmt: skip
                continue
            self._follow(requested)

    def _follow(self, requested: WorkerRequest | None) -> None:
        """Move to the mode an operator asked for; a change is reported at once (the next
        heartbeat does not wait its interval)."""
        asked = mode_asked(requested)
        if self._stopping or asked == self.mode:
            return
        if asked == "stopping":
            log.info("stop requested by an operator: finishing running jobs, then exiting")
            self._operator_stop = asyncio.get_running_loop().create_task(
                self.stop(), name="conveyor-operator-stop"
            )
            return
        self._quiet = asked == "quiet"
        if self._quiet:
            log.info("quieted by an operator: claiming no new jobs, finishing %d running",
                     len(self._running))  # fmt: skip
            self._release_ready("shutdown")
        else:
            log.info("resumed by an operator: claiming jobs again")
            self._unquiet.set()
            self._wake.set()
        self._beat_now.set()

    async def _maintenance_loop(self) -> None:
        sweeper = Sweeper(self.env)
        while True:
            try:
                if await self._io(sweeper.sweep, time.monotonic()):
                    self._wake.set()
            except Exception as exc:
                log.error("maintenance sweep failed (%s); will retry", exc)
            await asyncio.sleep(self.env.settings.sweep_interval)

    async def _scheduler_loop(self, scheduler: Scheduler) -> None:
        # Sleep until the next tick, but look at least every second so definitions added by
        # other processes are noticed.
        while True:
            try:
                fired, upcoming = await self._io(scheduler.tick)
                if fired:
                    self._wake.set()
            except Exception as exc:
                log.error("recurring-job scheduler failed (%s); will retry", exc)
                upcoming = None
            delay = SCHEDULER_MAX_SLEEP
            if upcoming is not None:
                until = (upcoming - self.env.clock()).total_seconds()
                delay = min(max(until, 0.0), SCHEDULER_MAX_SLEEP)
            await asyncio.sleep(delay)

    def _wait_for_jobs(self) -> None:
        """Thread: turn the store's cross-process notifications into wake-ups."""
        backend = self.env.backend
        while not self._stopping:
            try:
                woke = backend.wait_for_jobs(0.5)
            except Exception:
                log.exception("waiting for store notifications failed; polling instead")
                time.sleep(self.env.settings.poll_interval)
                continue
            if woke:
                self._wake_threadsafe()

    def _wake_threadsafe(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed since the check
                loop.call_soon_threadsafe(self._wake.set)

    # helpers ---------------------------------------------------------------------------------
    async def _claim(self, request: ClaimRequest) -> Claimed:
        if self._claim_pool is None:
            return self.env.backend.claim(request)
        loop = self._loop
        assert loop is not None
        return await loop.run_in_executor(self._claim_pool, self.env.backend.claim, request)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        if self._io_pool is None:
            return fn(*args)
        loop = self._loop
        assert loop is not None
        return await loop.run_in_executor(self._io_pool, fn, *args)

    @property
    def running_jobs(self) -> list[Job]:
        """The jobs executing now."""
        return [r.job for r in self._running.values()]
