"""What the fault tests and bench/faults.py share: worker processes, their run log, the checks.

`Pool` starts `conveyor worker fault_app:app` processes and keeps their output; `RunLog` reads
the lines the jobs append as they start and end; `audit` compares both with the store and says
which jobs were lost, stuck, or ran again without a killed attempt to explain it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import conveyor
from conveyor import Job, JobState

APP_DIR = Path(__file__).resolve().parent  # fault_app.py: the worker program
JOB_NAMES = ("record", "hold", "hold_sync", "noop")
MAX_ATTEMPTS = 100  # as fault_app.py declares its jobs


def producer(url: str) -> conveyor.App:
    """An App that enqueues fault_app's jobs by name (it does not import their code)."""
    app = conveyor.App(url)
    for name in JOB_NAMES:
        app.declare(name, max_attempts=MAX_ATTEMPTS)
    return app


def freeze(proc: subprocess.Popen[bytes], url: str) -> bool:
    """SIGSTOP a worker; True once it is frozen outside a SQLite write transaction.

    A SQLite worker frozen inside one (a sweep, a heartbeat: about 0.2 % of an idle worker's
    time) holds the file's write lock, so no other process can write, or even open the store,
    until it thaws. That is SQLite's single writer, not a lost lease: it is thawed and False
    returned, for the caller to try again."""
    proc.send_signal(signal.SIGSTOP)
    if not url.startswith("sqlite:///"):
        return True
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=0.5, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        proc.send_signal(signal.SIGCONT)
        return False
    finally:
        conn.close()


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    """A process's resident set (or VmHWM, its peak) in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise LookupError(f"no {field_name} in /proc/{pid}/status")


class Pool:
    """Worker processes of fault_app.py on one store; whatever is left is killed by `close`.

    `settings` become FAULT_* variables (lease_seconds=2 -> FAULT_LEASE_SECONDS=2)."""

    def __init__(self, url: str, runs: Path, **settings: float) -> None:
        self.url = url
        self.runs = runs
        self.env = {f"FAULT_{key.upper()}": str(value) for key, value in settings.items()}
        self.procs: list[subprocess.Popen[bytes]] = []
        self.killed: set[int] = set()  # pids this pool SIGKILLed
        self._lines: dict[int, list[str]] = {}
        self._readers: list[threading.Thread] = []

    def start(self, concurrency: int = 4, log_level: str = "info") -> subprocess.Popen[bytes]:
        """One more worker process (it opens the store on its own)."""
        command = [sys.executable, "-m", "conveyor.cli", "worker", "fault_app:app"]
        command += ["--concurrency", str(concurrency), "--log-level", log_level, "--no-live"]
        env = {**os.environ, "CONVEYOR_URL": self.url, "FAULT_RUNS": str(self.runs), **self.env}
        env["PYTHONPATH"] = os.pathsep.join([str(APP_DIR), env.get("PYTHONPATH", "")])
        proc = subprocess.Popen(
            command, env=env, cwd=APP_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.procs.append(proc)
        lines = self._lines[proc.pid] = []
        reader = threading.Thread(target=self._read, args=(proc, lines), daemon=True)
        reader.start()
        self._readers.append(reader)
        return proc

    @staticmethod
    def _read(proc: subprocess.Popen[bytes], lines: list[str]) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    def alive(self) -> list[subprocess.Popen[bytes]]:
        """The workers still running."""
        return [proc for proc in self.procs if proc.poll() is None]

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL one worker (no cleanup: its leases must expire) and reap it."""
        self.killed.add(proc.pid)
        proc.send_signal(signal.SIGCONT)  # a frozen process dies too
        proc.kill()
        proc.wait(10)

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        """What one worker has logged so far."""
        return "".join(self._lines[proc.pid])

    def report(self, tail: int = 80) -> str:
        """Every worker's fate and the end of its output, for a failed test."""
        parts = []
        for proc in self.procs:
            code = proc.poll()
            fate = "running" if code is None else f"exited {code}"
            if proc.pid in self.killed:
                fate += " (SIGKILLed by the test)"
            lines = self._lines[proc.pid][-tail:]
            parts.append(f"--- worker pid {proc.pid}: {fate}\n{''.join(lines)}")
        return "\n".join(parts) or "no worker was started"

    def unexpected_exits(self) -> list[str]:
        """The output of workers that died without the pool killing them."""
        return [
            f"pid {proc.pid} exited {proc.returncode}:\n{self.output(proc)}"
            for proc in self.procs
            if proc.poll() is not None and proc.pid not in self.killed
        ]

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
            proc.wait(10)
        for reader in self._readers:
            reader.join(10)
        for proc in self.procs:
            if proc.stderr:
                proc.stderr.close()


@dataclass(frozen=True)
class Run:
    """One line of the run log."""

    event: str  # start | end
    job_id: str
    attempt: int
    pid: int
    at: float  # time.time() in the worker


class RunLog:
    """The lines fault_app's jobs appended to the runs file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Run]:
        if not self.path.exists():
            return []
        runs = []
        *lines, _partial = self.path.read_text().split("\n")  # a line being written: later
        for line in lines:
            event, job_id, attempt, pid, at = line.split()
            runs.append(Run(event, job_id, int(attempt), int(pid), float(at)))
        return runs

    def by_job(self) -> dict[str, list[Run]]:
        grouped: dict[str, list[Run]] = defaultdict(list)
        for run in self.read():
            grouped[run.job_id].append(run)
        return grouped

    def in_flight(self) -> dict[int, set[str]]:
        """pid -> the jobs it started and has not ended (as far as the log says)."""
        open_runs: dict[tuple[str, int, int], Run] = {}
        for run in self.read():
            key = (run.job_id, run.attempt, run.pid)
            if run.event == "start":
                open_runs[key] = run
            else:
                open_runs.pop(key, None)
        flying: dict[int, set[str]] = defaultdict(set)
        for run in open_runs.values():
            flying[run.pid].add(run.job_id)
        return flying


@dataclass
class Audit:
    """The store and the run log compared, job by job."""

    jobs: int = 0
    completed: int = 0
    lost: list[str] = field(default_factory=list)  # not completed (failed, cancelled, missing)
    stuck: list[str] = field(default_factory=list)  # still scheduled, pending or running
    duplicates: int = 0  # jobs whose body started more than once
    extra_runs: int = 0  # starts beyond one per job
    interrupted: int = 0  # runs that started in a killed process and never ended
    unexplained: list[str] = field(default_factory=list)  # why a run or an error does not fit

    @property
    def ok(self) -> bool:
        return not (self.lost or self.stuck or self.unexplained)

    def summary(self) -> str:
        return (
            f"{self.jobs} jobs: {self.completed} completed, {len(self.lost)} lost, "
            f"{len(self.stuck)} stuck, {self.duplicates} ran more than once, "
            f"{self.interrupted} runs cut short by a kill; "
            f"unexplained: {self.unexplained[:10]}"
        )


def audit(app: conveyor.App, ids: list[str], runs: RunLog, killed: set[int]) -> Audit:
    """Check every job in `ids`: it completed, and every run of its body but the one whose
    result the store kept belongs to an attempt whose process was killed and that the store
    recorded as `lost`. With `killed` empty, any second run must still have its `lost` error
    (a lease that expired while the database was away)."""
    result = Audit(jobs=len(ids))
    by_job = runs.by_job()
    for job_id in ids:
        job = app.jobs.get(job_id)
        if job is None or job.state in (JobState.FAILED, JobState.CANCELLED, JobState.SKIPPED):
            result.lost.append(job_id)
            continue
        if not job.is_finished:
            result.stuck.append(job_id)
            continue
        result.completed += 1
        job_runs = by_job.get(job_id, [])
        starts = [run for run in job_runs if run.event == "start"]
        if len(starts) > 1:
            result.duplicates += 1
            result.extra_runs += len(starts) - 1
        ends = {(run.attempt, run.pid) for run in job_runs if run.event == "end"}
        result.interrupted += sum(
            1 for run in starts if run.pid in killed and (run.attempt, run.pid) not in ends
        )
        result.unexplained += _explain(job, starts, ends, killed)
    return result


def _explain(
    job: Job, starts: list[Run], ends: set[tuple[int, int]], killed: set[int]
) -> list[str]:
    """What does not fit in one completed job's runs and errors."""
    problems = []
    lost_attempts = {error.attempt for error in job.errors if error.kind == "lost"}
    if any(error.kind != "lost" for error in job.errors):
        problems.append(f"{job.id}: errors other than lost: {job.errors}")
    if len(lost_attempts) != job.attempt - 1:
        problems.append(f"{job.id}: attempt {job.attempt} but lost attempts {lost_attempts}")
    finals = [run for run in starts if run.attempt == job.attempt]
    result_pid = job.result["pid"] if isinstance(job.result, dict) else job.result
    if len(finals) != 1 or finals[0].pid != result_pid:
        problems.append(f"{job.id}: the kept result {job.result} is not its last attempt's run")
    elif (job.attempt, result_pid) not in ends:
        problems.append(f"{job.id}: completed, yet its last attempt's run never ended")
    seen: set[int] = set()
    for run in starts:
        if run.attempt in seen:
            problems.append(f"{job.id}: attempt {run.attempt} ran twice")
        seen.add(run.attempt)
        if run.attempt == job.attempt:
            continue
        if run.attempt not in lost_attempts:
            problems.append(f"{job.id}: attempt {run.attempt} ran, yet is not recorded lost")
        if killed and run.pid not in killed:
            problems.append(f"{job.id}: attempt {run.attempt} re-ran, its pid {run.pid} lived")
    return problems


def completed(app: conveyor.App) -> int:
    """How many jobs the store holds completed."""
    return app.jobs.counts().by_state.get("completed", 0)


def enqueue_records(app: conveyor.App, count: int, seconds: float) -> list[str]:
    """`count` record jobs of `seconds` each, in batches; their ids."""
    ids: list[str] = []
    for start in range(0, count, 5000):
        batch = [
            app.request("record", {"n": n, "seconds": seconds})
            for n in range(start, min(count, start + 5000))
        ]
        ids += [handle.id for handle in app.enqueue_many(batch)]
    return ids


def elapsed_since(start: float) -> float:
    """Seconds since `start` (a time.monotonic() reading)."""
    return time.monotonic() - start
