"""Every error Conveyor raises, under one root.

    ConveyorError
    ├── ConfigurationError        a setting, URL or job definition is wrong
    │   ├── InvalidJobOptions     a job option is of the wrong type or out of range
    │   ├── InvalidQueueSettings  a queue setting is of the wrong type or out of range
    │   └── PermissionHookError   an application's permission hook answered no permission
    ├── UnknownJobError           enqueue by a name no handler is registered under
    ├── InvalidArguments          job arguments that do not fit the job or a store
    │   └── ArgumentsNotSerializable  job arguments are not JSON-encodable
    ├── InvalidResult             a job's result does not fit its return hint
    ├── QueueFull                 a bounded queue (or the memory store) is full
    ├── StoreUnavailable          the store cannot be reached right now
    ├── InvalidFilter             a listing's state, page or page size is out of range
    ├── JobStateConflict          the job's state does not allow this (retry a completed job…)
    ├── WorkerStateConflict       the worker's mode does not allow this (quiet a stopping one)
    ├── DuplicateJobId            a job with this id is already stored
    ├── InvalidWorkflow           a step waits on an unknown job, a later step, another workflow
    ├── WaitTimeout               job.wait() gave up (also a TimeoutError)
    ├── UsageError                a call made where it cannot work (drain inside a loop…)
    │   ├── BridgeClosed          the main-loop bridge was shut down
    │   └── ScopeClosed           a resource asked of a scope that has closed
    └── NotFound                  what was asked for does not exist
        ├── JobNotFound           no job has the given id
        ├── QueueNotFound         no queue has the given name
        ├── RecurringJobNotFound  no recurring job has the given name
        ├── WorkflowNotFound      no workflow has the given id
        └── WorkerNotFound        no live worker has the given id

Retry and Fail are not errors of Conveyor: a job raises them to steer its own retries.
Each class's docstring is its default message, and each message says what to do.
"""

from __future__ import annotations


class ConveyorError(Exception):
    """Conveyor could not do what was asked."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(ConveyorError):
    """The configuration is invalid: check the setting named in the message."""


class PermissionHookError(ConfigurationError):
    """The application's dashboard permission hook answered something that is no permission:
    make it return 'view', 'manage', a set of them, or None for no access."""


class UnknownJobError(ConveyorError):
    """No job is registered under this name: check the spelling or register it with @app.job."""


class InvalidJobOptions(ConfigurationError):
    """A job option is of the wrong type or out of range: the message names it and its range."""


class InvalidQueueSettings(ConfigurationError):
    """A queue setting is of the wrong type or out of range: the message names it and its range."""


class InvalidArguments(ConveyorError):
    """The job arguments do not fit the job's signature or cannot be stored: the message names
    the parameter, what it expects and what was given (docs/typed-jobs.md)."""


class ArgumentsNotSerializable(InvalidArguments):
    """Job arguments must be JSON-encodable: pass ids and plain values, not objects."""


class InvalidResult(ConveyorError):
    """A job returned a value its return hint does not allow: fix the hint or the value."""


class QueueFull(ConveyorError):
    """The queue is full: retry later, add workers, or raise the queue's max_size (or the memory
    store's max_queue_size)."""


class StoreUnavailable(ConveyorError):
    """The job store cannot be reached: check that it is running, then retry the call."""


class InvalidFilter(ConveyorError):
    """The listing's filter is invalid: use a known state, page ≥ 1, per_page from 1 to 1000."""


class JobStateConflict(ConveyorError):
    """The job's current state does not allow this: look at it (`conveyor jobs show ID`) first."""


class WorkerStateConflict(ConveyorError):
    """The worker's mode does not allow this: a stopping worker can no longer be quieted or
    resumed (`conveyor workers ls` shows each worker's mode)."""


class DuplicateJobId(ConveyorError):
    """A job with this id already exists: give each job its own id, or let Conveyor pick one."""


class InvalidWorkflow(ConveyorError):
    """A workflow step waits on a job that is not there: name only jobs already enqueued, or
    steps added earlier to the same workflow (docs/workflows.md)."""


class WaitTimeout(ConveyorError, TimeoutError):
    """The job did not finish in time: wait longer, or check that a worker is running."""


class UsageError(ConveyorError):
    """This call cannot work where it was made: the message says where to make it instead."""


class BridgeClosed(UsageError):
    """The bridge is shut down: it accepts no more work or callbacks."""


class ScopeClosed(UsageError):
    """The scope is closed: resources are available only while the work runs."""


class NotFound(ConveyorError):
    """Nothing by this name or id exists."""


class JobNotFound(NotFound):
    """No job has this id: it may have been deleted or pruned after its retention period."""


class QueueNotFound(NotFound):
    """No queue has this name: see `conveyor queues ls` for the queues there are."""


class RecurringJobNotFound(NotFound):
    """No recurring job has this name: see `conveyor recurring ls`
    (app.recurring_jobs.list() in Python)."""


class WorkflowNotFound(NotFound):
    """No workflow has this id: see `conveyor workflows ls` for the workflows there are."""


class WorkerNotFound(NotFound):
    """No live worker has this id: see `conveyor workers ls` (a worker that stopped is
    forgotten, one that stopped sending heartbeats is gone)."""


class Retry(Exception):
    """Raised by a job to ask for another attempt, optionally after `delay` seconds."""

    def __init__(self, delay: float | None = None, reason: str = "retry requested") -> None:
        super().__init__(reason)
        self.delay = delay
        self.reason = reason


class Fail(Exception):
    """Raised by a job to fail now, without any further attempt."""

    def __init__(self, reason: str = "failed by the job") -> None:
        super().__init__(reason)
        self.reason = reason
