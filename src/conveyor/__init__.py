"""Conveyor: background jobs for Python, from in-process to many hosts."""

import logging

from conveyor.app import App, JobFunction, JobHandle
from conveyor.backends.protocol import Backend
from conveyor.backends.records import Counts, Page
from conveyor.bridge import AsyncBridge, Bridge
from conveyor.context import Context
from conveyor.errors import (
    ArgumentsNotSerializable,
    BridgeClosed,
    ConfigurationError,
    ConveyorError,
    DuplicateJobId,
    Fail,
    InvalidArguments,
    InvalidFilter,
    InvalidJobOptions,
    InvalidQueueSettings,
    InvalidResult,
    InvalidWorkflow,
    JobNotFound,
    JobStateConflict,
    NotFound,
    PermissionHookError,
    QueueFull,
    QueueNotFound,
    RecurringJobNotFound,
    Retry,
    ScopeClosed,
    StoreUnavailable,
    UnknownJobError,
    UsageError,
    WaitTimeout,
    WorkerNotFound,
    WorkerStateConflict,
    WorkflowNotFound,
)
from conveyor.model.job import AttemptError, Job, JobState, LogLine
from conveyor.model.options import Backoff
from conveyor.model.queues import QueueSettings
from conveyor.model.recurring import RecurringJob
from conveyor.model.settings import Settings
from conveyor.model.workflow import StoredWorkflow
from conveyor.runtime.hooks import JobEvent
from conveyor.runtime.worker import Worker
from conveyor.workflows import Step, Workflow, WorkflowHandle, chain, group

__all__ = [
    "App",
    "ArgumentsNotSerializable",
    "AsyncBridge",
    "AttemptError",
    "Backend",
    "Backoff",
    "Bridge",
    "BridgeClosed",
    "ConfigurationError",
    "Context",
    "ConveyorError",
    "Counts",
    "DuplicateJobId",
    "Fail",
    "InvalidArguments",
    "InvalidFilter",
    "InvalidJobOptions",
    "InvalidQueueSettings",
    "InvalidResult",
    "InvalidWorkflow",
    "Job",
    "JobEvent",
    "JobFunction",
    "JobHandle",
    "JobNotFound",
    "JobState",
    "JobStateConflict",
    "LogLine",
    "NotFound",
    "Page",
    "PermissionHookError",
    "QueueFull",
    "QueueNotFound",
    "QueueSettings",
    "RecurringJob",
    "RecurringJobNotFound",
    "Retry",
    "ScopeClosed",
    "Settings",
    "Step",
    "StoreUnavailable",
    "StoredWorkflow",
    "UnknownJobError",
    "UsageError",
    "WaitTimeout",
    "Worker",
    "WorkerNotFound",
    "WorkerStateConflict",
    "Workflow",
    "WorkflowHandle",
    "WorkflowNotFound",
    "chain",
    "group",
]
__version__ = "0.1.0"

# A library leaves logging output to the application (see the logging HOWTO).
logging.getLogger("conveyor").addHandler(logging.NullHandler())
