"""What an operator may ask of a live worker (quiet, stop, resume) and what the store keeps.

A worker reports its own `mode` with every heartbeat; an operator's request is kept beside it
in the store's workers table and handed back by the next heartbeat, which the worker follows
(docs/guide.md, "Quieting and stopping a worker"). The request is a level, not an event: the
heartbeat returns it until it changes, so a lost heartbeat loses nothing. Every store calls
`request_after` inside its transaction, so the rules cannot drift between stores.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol, get_args

from conveyor.errors import UsageError, WorkerNotFound, WorkerStateConflict

#: What a worker is doing: claiming and running jobs; running its jobs but claiming none
#: (quiet); finishing its jobs before it exits (stopping, after SIGTERM or an operator's stop).
WorkerMode = Literal["running", "quiet", "stopping"]
#: What an operator asks: stop claiming, shut down gracefully, or claim again.
WorkerAction = Literal["quiet", "stop", "resume"]
#: What the store keeps of the operator's asks (no request: run as usual).
WorkerRequest = Literal["quiet", "stop"]

WORKER_MODES: tuple[WorkerMode, ...] = get_args(WorkerMode)
WORKER_ACTIONS: tuple[WorkerAction, ...] = get_args(WorkerAction)
WORKER_REQUESTS: tuple[WorkerRequest, ...] = get_args(WorkerRequest)


def check_worker_action(action: object) -> WorkerAction:
    """`action` when it is one an operator may ask; UsageError otherwise."""
    if action not in WORKER_ACTIONS:
        raise UsageError(f"unknown worker action {action!r}: ask quiet, stop or resume")
    return action


def worker_missing(worker_id: str, last_seen_at: datetime | None = None) -> WorkerNotFound:
    """The error for a worker the store does not have, or last saw at `last_seen_at`, longer
    ago than a live worker's heartbeats allow."""
    if last_seen_at is None:
        return WorkerNotFound(
            f"no live worker has id {worker_id!r} (a worker that stopped is forgotten): "
            "see `conveyor workers ls` for the workers there are"
        )
    return WorkerNotFound(
        f"worker {worker_id} is gone: its last heartbeat was at "
        f"{last_seen_at:%Y-%m-%d %H:%M:%S} UTC (it died or its host is down; it will be "
        "pruned). See `conveyor workers ls` for the live ones"
    )


def request_after(
    worker_id: str, mode: str, requested: str | None, action: WorkerAction
) -> WorkerRequest | None:
    """The request to keep after an operator's `action` on a worker in `mode` with
    `requested` already stored. Stopping is final: a worker asked to stop, or stopping on a
    signal, cannot be quieted or resumed (WorkerStateConflict); asking again is a no-op."""
    action = check_worker_action(action)
    if action == "stop":
        return "stop"
    if requested == "stop" or mode == "stopping":
        raise WorkerStateConflict(
            f"worker {worker_id} is stopping: it can no longer be quieted or resumed "
            "(start a new worker to run jobs)"
        )
    return "quiet" if action == "quiet" else None


class _SeenWorker(Protocol):
    @property
    def mode(self) -> str: ...
    @property
    def requested(self) -> str | None: ...
    @property
    def last_seen_at(self) -> datetime: ...


def request_of(
    worker_id: str, worker: _SeenWorker | None, action: WorkerAction, seen_after: datetime
) -> WorkerRequest | None:
    """What a store keeps for an operator's `action` on the worker it found (`worker`, None
    when it has none): WorkerNotFound when it has none or last saw it before `seen_after`,
    else `request_after`'s answer."""
    if worker is None:
        raise worker_missing(worker_id)
    if worker.last_seen_at < seen_after:
        raise worker_missing(worker_id, worker.last_seen_at)
    return request_after(worker_id, worker.mode, worker.requested, action)


def mode_asked(requested: str | None) -> WorkerMode:
    """The mode a worker moves to when it reads `requested` from its heartbeat."""
    if requested == "stop":
        return "stopping"
    return "quiet" if requested == "quiet" else "running"


def pending_mode(mode: str, requested: str | None) -> WorkerMode | None:
    """The mode an operator asked for that the worker has not reported yet (it follows at
    its next heartbeat), or None when it is where it was asked to be."""
    asked = mode_asked(requested)
    if asked == mode or (mode == "stopping" and asked != "stopping"):
        return None  # a worker stopping on a signal is not asked to go anywhere else
    return asked
