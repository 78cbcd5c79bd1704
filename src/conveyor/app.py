"""App: settings, the job registry, queues, and the enqueue API (sync and async)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    Protocol,
    TypeVar,
    Unpack,
    overload,
)

from conveyor.backends import open_backend
from conveyor.backends.protocol import Backend, Bounded, TransactionalEnqueue
from conveyor.context import Context
from conveyor.errors import (
    ConfigurationError,
    InvalidArguments,
    InvalidResult,
    UnknownJobError,
    WaitTimeout,
)
from conveyor.model.job import Enqueued, Job, JobState, NewJob, utcnow
from conveyor.model.keys import KeyRule, check_key_rule, render_key
from conveyor.model.options import Backoff, EnqueueOptions, JobOptions, OptionOverrides
from conveyor.model.queues import QueueChange, QueueSettings, WhenFull
from conveyor.model.recurring import RecurringJob
from conveyor.model.schedule import Overlap
from conveyor.model.settings import Settings, SettingsOverrides
from conveyor.model.signature import ArgumentSpec, spec_of_schema
from conveyor.model.validation import check_new_job, check_queue, check_queue_settings
from conveyor.recurring import RecurringService, define
from conveyor.runtime.environment import Environment
from conveyor.runtime.hooks import EventKind, Hook, Hooks, JobEvent
from conveyor.runtime.middleware import Middleware
from conveyor.runtime.propagation import Propagation
from conveyor.runtime.registry import Executor, JobDefinition
from conveyor.runtime.worker import Worker
from conveyor.services import JobService
from conveyor.testing import Testing
from conveyor.workflows import (
    Workflow,
    WorkflowHandle,
    WorkflowService,
    launcher,
    launcher_name,
)

if TYPE_CHECKING:
    from typing_extensions import TypeVar as DefaultedTypeVar

    #: a handle's result type; a bare `JobHandle` is `JobHandle[Any]`
    ResultT = DefaultedTypeVar("ResultT", default=Any)
else:
    ResultT = TypeVar("ResultT")

log = logging.getLogger("conveyor")
P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
DEFAULT_URL = "sqlite:///conveyor.db"


class App:
    """A Conveyor application: where jobs are stored, which jobs exist, and how they run.

    `url` picks the store: "sqlite:///conveyor.db" (the default, or $CONVEYOR_URL),
    "memory://", or "postgresql://…". Keyword arguments override `Settings` fields.
    A producer-only process just creates the App and enqueues; it runs no worker.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        **settings: Unpack[SettingsOverrides],
    ) -> None:
        self.url = url or os.environ.get("CONVEYOR_URL") or DEFAULT_URL
        self.settings = Settings().merged(**settings)
        self.clock = clock
        self.hooks = Hooks()
        self.middleware: list[Middleware] = []
        self._propagation: Propagation | None = None
        self._metadata_providers: list[Callable[[], dict[str, str]]] = []
        self._definitions: dict[str, JobDefinition] = {}
        self._declared: dict[str, JobOptions] = {}
        self._schemas: dict[str, ArgumentSpec] = {}  # declared argument schemas, by job name
        self._queue_settings: dict[str, QueueSettings] = {}  # app.queue declarations
        self._queue_executors: dict[str, Executor] = {}
        self._sync_wrappers: list[Callable[[], AbstractContextManager[Any]]] = []
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._workers: weakref.WeakSet[Worker] = weakref.WeakSet()
        self._recurring: dict[str, RecurringJob] = {}
        self.jobs = JobService(
            lambda: self.backend,
            clock,
            self._cancel_locally,
            lambda: dict(self._queue_settings),
            self._job_queues,
            worker_stale_after=lambda: self.settings.worker_stale_after,
            on_worker_request=self._nudge_locally,
        )
        self.recurring_jobs = RecurringService(lambda: self.backend, clock, self.options_for)
        self.testing = Testing(self.environment, lambda: self._definitions, clock)
        self.workflows = WorkflowService(lambda: self.backend, clock)

    def _job_queues(self) -> set[str]:
        """The queues this app's registered and declared jobs are enqueued on by default."""
        definitions = [d.options for d in self._definitions.values()]
        return {o.queue for o in [*definitions, *self._declared.values()]}

    # the store -------------------------------------------------------------------------------
    @property
    def backend(self) -> Backend:
        """The store, opened (and its schema created) on first use."""
        if self._backend is None:
            with self._lock:
                if self._backend is None:
                    backend = open_backend(self.url, self.settings)
                    backend.open()
                    self._sync_queues(backend, self._queue_settings)
                    self._backend = backend
        return self._backend

    def _sync_queues(self, backend: Backend, declared: Mapping[str, QueueSettings]) -> None:
        """Write queue declarations to the store: every field an operator did not set
        (`model/queues.py`)."""
        now = self.clock()
        for name, settings in sorted(declared.items()):
            backend.change_queue_settings(name, QueueChange.from_code(settings), now)

    def configure(self, url: str | None = None, **settings: Unpack[SettingsOverrides]) -> None:
        """Change the store's URL and settings before the store is opened: a framework
        extension configures an App its jobs were registered on at import time (Flask's
        `init_app`). Once the store is open, a change is refused (close the App first)."""
        with self._lock:
            changes = url is not None and url != self.url
            if self._backend is not None and (changes or settings):
                raise ConfigurationError(
                    f"this App's store ({self.url!r}) is open already: configure it before "
                    "its first use, or close() it first"
                )
            merged = self.settings.merged(**settings)  # an unknown setting raises here
            if url is not None:
                self.url = url
            self.settings = merged

    def close(self) -> None:
        """Close the store's connections."""
        with self._lock:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    def environment(self) -> Environment:
        """What a worker of this app runs with."""
        registry = dict(self._definitions)
        return Environment(
            self.backend, registry, self.settings, self.hooks, tuple(self.middleware),
            self.clock, tuple(self._recurring.values()), self.testing.resource_overrides,
            dict(self._queue_executors), tuple(self._sync_wrappers),
        )  # fmt: skip

    # definitions -----------------------------------------------------------------------------
    def queue(
        self,
        name: str,
        *,
        concurrency: int | None = None,
        max_size: int | None = None,
        when_full: WhenFull = "wait",
        rate_limit: str | None = None,
        executor: Executor | None = None,
    ) -> None:
        """Declare a queue and its settings, which are kept in the store for the whole fleet
        (docs/flow-control.md): written when this app's store opens (by workers and producers
        alike), or at once when it is open already, except a setting an operator changed
        (`conveyor queues set`), which code no longer overrides.

        `concurrency` caps its running jobs across all workers (1 = strictly serial, in
        order); None = limited only by the workers' slots. `max_size` bounds its waiting
        (scheduled and pending) jobs: an enqueue past it waits up to the `queue_full_timeout`
        setting for room (`when_full="wait"`) or raises QueueFull at once ("refuse"); None =
        unbounded. `rate_limit="100/m"`: at most 100 of its jobs start in any minute across
        all workers (also "/s", "/h"); a job over it stays pending until the window allows.
        `executor="process"`: its plain-function jobs run in child processes (hard
        timeouts, crash isolation; docs/executors.md); its async jobs stay on the event loop
        (a setting of this process, not of the store)."""
        check_queue(name)
        if executor not in (None, "thread", "process"):
            raise ConfigurationError(
                f"queue {name!r}: executor must be 'thread' or 'process', not {executor!r}"
            )
        settings = check_queue_settings(concurrency, max_size, when_full, rate_limit)
        if executor is None:
            self._queue_executors.pop(name, None)
        else:
            self._queue_executors[name] = executor
        with self._lock:
            self._queue_settings[name] = settings
            backend = self._backend
        if backend is not None:
            self._sync_queues(backend, {name: settings})

    @property
    def queue_limits(self) -> dict[str, int]:
        """The concurrency limit this app declares for each limited queue (the store's may
        differ: an operator's change wins; see `app.jobs.queues()`)."""
        return {
            name: settings.concurrency
            for name, settings in self._queue_settings.items()
            if settings.concurrency is not None
        }

    @property
    def queue_settings(self) -> dict[str, QueueSettings]:
        """The settings this app declares for each queue with `app.queue`."""
        return dict(self._queue_settings)

    @overload
    def job(self, func: type[T], /) -> JobFunction[..., Any]: ...

    @overload
    def job(
        self, func: Callable[Concatenate[Context, P], Awaitable[R]], /
    ) -> JobFunction[P, R]: ...

    @overload
    def job(self, func: Callable[Concatenate[Context, P], R], /) -> JobFunction[P, R]: ...

    @overload
    def job(
        self,
        func: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        backoff: Backoff | None = None,
        concurrency_key: KeyRule | None = None,
        key_concurrency: int = 1,
        rate_limit: str | None = None,
        rate_key: KeyRule | None = None,
        validate: bool = True,
        executor: Executor | None = None,
    ) -> JobDecorator: ...

    def job(
        self,
        func: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int = 0,
        max_attempts: int = 3,
        timeout: float | None = None,
        backoff: Backoff | None = None,
        concurrency_key: KeyRule | None = None,
        key_concurrency: int = 1,
        rate_limit: str | None = None,
        rate_key: KeyRule | None = None,
        validate: bool = True,
        executor: Executor | None = None,
    ) -> JobFunction[Any, Any] | JobDecorator:
        """Register a job: `@app.job` or `@app.job(queue=..., max_attempts=..., ...)`.

        Works on async functions, plain functions (run on a thread pool) and classes with a
        `run(self, ctx, **args)` method. The function's first argument is the Context. Its
        other arguments are checked against their type hints at enqueue and rebuilt from
        JSON before it runs (docs/typed-jobs.md); `validate=False` passes them unchecked.
        `executor="process"` runs a plain function in a child process, where a timeout stops
        it for sure and a crash takes only its attempt (docs/executors.md).
        `concurrency_key="tenant:{tenant_id}"` (a format string over the arguments, or a
        callable of them): jobs with the same key never run at once, on any worker;
        `key_concurrency=N` lets up to N of them run at once. `rate_limit="10/s"`: at most
        10 of its jobs start in any second, fleet-wide, counted per `rate_key` (a key rule
        like `concurrency_key`; by default the job's name) (docs/flow-control.md).
        """
        options = JobOptions(
            queue=queue, priority=priority, max_attempts=max_attempts, timeout=timeout,
            backoff=backoff or Backoff(), concurrency_key=concurrency_key,
            key_concurrency=key_concurrency, rate_limit=rate_limit, rate_key=rate_key,
        )  # fmt: skip

        def register(target: Callable[..., Any], scope: Mapping[str, Any]) -> JobFunction[Any, Any]:
            job_name = name or _default_name(target)
            if job_name in self._definitions:
                raise ConfigurationError(f"a job named {job_name!r} is already registered")
            definition = JobDefinition.build(job_name, target, options, validate, scope, executor)
            if definition.spec is not None:  # a template may name only the job's parameters
                names = tuple(p.name for p in definition.spec.parameters)
                check_key_rule(options.concurrency_key, names)
                check_key_rule(options.rate_key, names, "rate_key")
            self._definitions[job_name] = definition
            return JobFunction(self, definition, options)

        if func is not None:
            return register(func, _caller_names())

        def decorate(target: Callable[..., Any]) -> JobFunction[Any, Any]:
            return register(target, _caller_names())

        return decorate

    def recurring(
        self,
        name: str,
        cron: str,
        job: JobFunction[Any, Any] | str | None = None,
        *,
        workflow: Callable[..., Workflow] | None = None,
        kwargs: dict[str, Any] | None = None,
        overlap: Overlap = "skip",
        timezone: str = "UTC",
        enabled: bool = True,
        catch_up: int = 1,
    ) -> RecurringJob:
        """Run `job` on a CRON schedule: 5 fields, 6 with leading seconds, or @daily etc.

        `overlap` when the previous run is still going: "skip" (record a skipped job),
        "allow" (run concurrently) or "queue" (run after it). After downtime, up to `catch_up`
        of the latest missed ticks run. Synced into the store when a worker starts; an
        operator's run-time enable/disable is kept. Bad expressions are refused here.

        `workflow=factory` instead of `job`: each tick stores the workflow `factory(**kwargs)`
        builds, with `overlap` applied to whole workflows of its name (docs/workflows.md).
        """
        if (job is None) == (workflow is None):
            raise ConfigurationError(
                f"recurring job {name!r}: give either a job or workflow=factory, not both"
            )
        if workflow is not None:
            job = self.job(name=launcher_name(name), max_attempts=3, validate=False)(
                launcher(self, workflow, overlap)
            )
        assert job is not None
        job_name = job if isinstance(job, str) else job.name
        self.options_for(job_name)
        spec = self.spec_for(job_name)
        if spec is not None:
            kwargs = spec.bind((), kwargs or {})
        if name in self._recurring:
            raise ConfigurationError(f"a recurring job named {name!r} is already defined")
        definition = define(
            name, cron, job_name, args=kwargs, overlap=overlap, timezone=timezone,
            enabled=enabled, catch_up=catch_up,
        )  # fmt: skip
        self._recurring[name] = definition
        return definition

    def declare(self, name: str, *, args: Any = None, **options: Unpack[EnqueueOptions]) -> None:
        """Make a job name known to a producer that does not import its code, with the
        options (queue, priority, max_attempts, timeout) its enqueues should use. `args`, a
        TypedDict, dataclass or Pydantic model, is the schema its arguments are checked
        against at enqueue (without one, the worker checks them when it runs the job)."""
        declared = JobOptions().merged(**options)
        if args is not None:
            self._schemas[name] = spec_of_schema(name, args)
        else:
            self._schemas.pop(name, None)
        self._declared[name] = declared

    def spec_for(self, name: str) -> ArgumentSpec | None:
        """What a job's arguments are checked against at enqueue: its signature when it is
        registered here, else its declared schema; None when neither is known."""
        definition = self._definitions.get(name)
        if definition is not None:
            return definition.spec
        return self._schemas.get(name)

    def options_for(self, name: str) -> JobOptions:
        """The options of a registered or declared job; raises UnknownJobError."""
        if name in self._definitions:
            return self._definitions[name].options
        if name in self._declared:
            return self._declared[name]
        known = ", ".join(sorted({*self._definitions, *self._declared})) or "none yet"
        raise UnknownJobError(
            f"no job named {name!r} is registered or declared in this app (known: {known}): "
            f"check the name, register it with @app.job, or app.declare({name!r}, queue=...)"
        )

    @property
    def job_names(self) -> list[str]:
        """Names of every registered and declared job."""
        return sorted({*self._definitions, *self._declared})

    def on(self, kind: EventKind) -> Callable[[Hook], Hook]:
        """Decorator: call a function on a lifecycle event (enqueued, started, progress,
        succeeded, failed, retrying, cancelled). Its exceptions are logged, never raised."""
        return lambda hook: self.hooks.add(kind, hook)

    def around_sync_jobs(
        self, factory: Callable[[], AbstractContextManager[Any]]
    ) -> Callable[[], AbstractContextManager[Any]]:
        """Enter `factory()` (a context manager) on a plain job's own thread around each run,
        as a web framework does around each request: per-thread state such as database
        connections is set up and cleaned there (the Django integration closes stale ORM
        connections this way). Middleware, by contrast, runs on the worker's event loop.
        Usable as a decorator of a `@contextmanager` function; returns `factory`."""
        self._sync_wrappers.append(factory)
        return factory

    def use(self, middleware: Middleware) -> Middleware:
        """Add a middleware around every job's execution (first added is outermost)."""
        self.middleware.append(middleware)
        return middleware

    def propagate(self, *variables: ContextVar[Any]) -> None:
        """Carry these contextvars' values from enqueue time into the job while it runs.

        Values must be JSON-encodable; they are stored in the job's metadata under `ctx:<name>`.
        Workers must register the same variables (names identify them across processes), before
        the worker is created.
        """
        if self._propagation is None:
            self._propagation = Propagation()
            self.middleware.insert(0, self._propagation.middleware)  # outermost
        self._propagation.add(*variables)

    def add_metadata_provider(self, provider: Callable[[], dict[str, str]]) -> None:
        """Merge `provider()` into every job's metadata at enqueue time (explicit metadata wins);
        e.g. the current trace context."""
        self._metadata_providers.append(provider)

    # enqueueing ------------------------------------------------------------------------------
    def request(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        **options: Unpack[OptionOverrides],
    ) -> NewJob:
        """Build (not store) a job by name, for `enqueue_many`; its arguments are checked
        now when the job is registered here or declared with a schema."""
        arguments = {} if args is None else args  # an empty list is refused, not taken as {}
        job_options = self.options_for(name).merged(**options)
        spec = self.spec_for(name)
        if spec is not None:
            arguments = spec.bind((), arguments)
        return self._build(name, job_options, arguments)

    def enqueue(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        metadata: dict[str, str] | None = None,
        connection: Any = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle:
        """Store a job by name with JSON `args`; options: queue, priority, delay, run_at,
        unique_key, max_attempts, timeout. Returns a handle (`.created` False when an active
        job with the same unique_key already existed and was returned instead).

        `connection` (PostgreSQL): a psycopg connection whose open transaction the job joins,
        so it exists only if that transaction commits."""
        if metadata is not None:
            job = self.request(name, args, metadata=metadata, **options)
        else:
            job = self.request(name, args, **options)
        return self.enqueue_many([job], connection=connection)[0]

    async def enqueue_async(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        metadata: dict[str, str] | None = None,
        connection: Any = None,
        **options: Unpack[EnqueueOptions],
    ) -> JobHandle:
        """`enqueue` for async code: never blocks the event loop. `connection`: a
        psycopg.AsyncConnection whose transaction the job joins (PostgreSQL)."""
        if metadata is not None:
            jobs = [self.request(name, args, metadata=metadata, **options)]
        else:
            jobs = [self.request(name, args, **options)]
        return (await self.enqueue_many_async(jobs, connection=connection))[0]

    def enqueue_many(self, jobs: Sequence[NewJob], *, connection: Any = None) -> list[JobHandle]:
        """Store many jobs in one transaction (all or nothing); with `connection`, in the
        caller's own PostgreSQL transaction. Each request was checked when it was built."""
        if not jobs:
            return []
        now = self.clock()
        for job in jobs:
            check_new_job(job, now)  # all of them before any is stored
        if connection is not None:
            results = self._transactional().enqueue_in(connection, jobs, now)
        else:
            results = self.backend.enqueue(jobs, now)
        return self._announce(results)

    async def enqueue_many_async(
        self, jobs: Sequence[NewJob], *, connection: Any = None
    ) -> list[JobHandle]:
        """`enqueue_many` for async code."""
        backend = self.backend
        if not jobs:
            return []
        now = self.clock()
        for job in jobs:
            check_new_job(job, now)
        if connection is not None:
            store = self._transactional()
            return self._announce(await store.enqueue_in_async(connection, jobs, now))
        if backend.blocking or (isinstance(backend, Bounded) and backend.enqueue_may_wait):
            results = await asyncio.to_thread(backend.enqueue, jobs, now)
        else:
            results = backend.enqueue(jobs, now)
        return self._announce(results)

    def workflow(self, name: str) -> Workflow:
        """Start building a workflow: `wf.add(fn.request(...), after=[...])`, then
        `wf.enqueue()` (docs/workflows.md)."""
        return Workflow(name, self)

    def enqueue_workflow(self, workflow: Workflow, *, connection: Any = None) -> WorkflowHandle:
        """Store a workflow (from `app.workflow`, `conveyor.chain` or `conveyor.group`): every
        step in one transaction, or none; with `connection`, in the caller's own PostgreSQL
        transaction."""
        jobs = workflow.requests()
        now = self.clock()
        for job in jobs:
            check_new_job(job, now)
        if connection is not None:
            results = self._transactional().enqueue_workflow_in(
                connection, workflow.id, workflow.name, jobs, now
            )
        else:
            results = self.backend.enqueue_workflow(workflow.id, workflow.name, jobs, now)
        return WorkflowHandle(self, workflow, self._announce(results))

    async def enqueue_workflow_async(self, workflow: Workflow) -> WorkflowHandle:
        """`enqueue_workflow` for async code (the store is written from a thread). To store
        a workflow inside your own transaction, use `enqueue_workflow(wf, connection=...)`
        on a sync psycopg connection."""
        jobs = workflow.requests()
        now = self.clock()
        for job in jobs:
            check_new_job(job, now)
        results = await asyncio.to_thread(
            self.backend.enqueue_workflow, workflow.id, workflow.name, jobs, now
        )
        return WorkflowHandle(self, workflow, self._announce(results))

    def _transactional(self) -> TransactionalEnqueue:
        """The store, if it can join the caller's transaction (a declared capability)."""
        backend = self.backend
        if not isinstance(backend, TransactionalEnqueue):
            raise ConfigurationError(
                f"enqueueing inside your own transaction needs a postgresql:// store; "
                f"this app uses {self.url!r}: drop connection=, or switch stores"
            )
        return backend

    def _build(self, name: str, options: JobOptions, args: dict[str, Any]) -> NewJob:
        # the arguments are checked with the rest of the job when it is enqueued
        metadata = options.metadata
        if self._propagation is not None:
            metadata = {**self._propagation.capture(), **metadata}  # explicit metadata wins
        for provider in self._metadata_providers:
            metadata = {**provider(), **metadata}
        run_at = options.run_at
        if options.delay is not None:
            run_at = self.clock() + timedelta(seconds=options.delay)
        return NewJob(
            name=name,
            queue=options.queue,
            args=args,
            metadata=dict(metadata),
            priority=options.priority,
            max_attempts=options.max_attempts,
            timeout=options.timeout,
            run_at=run_at,
            unique_key=options.unique_key,
            concurrency_key=(
                None if options.concurrency_key is None
                else render_key(options.concurrency_key, name, args)
            ),
            key_concurrency=1 if options.concurrency_key is None else options.key_concurrency,
            rate_limit=options.rate_limit,
            rate_key=(
                None if options.rate_limit is None
                else name if options.rate_key is None
                else render_key(options.rate_key, name, args, "rate_key")
            ),
            after=options.after,
            on_parent_failure=options.on_parent_failure,
        )  # fmt: skip

    def _announce(self, results: list[Enqueued]) -> list[JobHandle]:
        handles = []
        emit = self.hooks.wants("enqueued")
        for result in results:
            if not result.created:
                log.info(
                    "job %s with unique_key %r is already %s: nothing new was enqueued",
                    result.job.id, result.job.unique_key, result.job.state,
                )  # fmt: skip
            elif emit:
                self.hooks.emit(JobEvent("enqueued", result.job))
            definition = self._definitions.get(result.job.name)
            spec = definition.spec if definition is not None else None
            handles.append(JobHandle(self, result.job, result.created, spec))
        return handles

    # running ---------------------------------------------------------------------------------
    def worker(
        self,
        *,
        queues: Iterable[str] | None = None,
        concurrency: int | None = None,
        processes: int | None = None,
    ) -> Worker:
        """A worker for this app: `async with app.worker(): ...` runs it inside your program.
        `processes` sizes its pool of children for executor="process" jobs (default: the
        `processes` setting, else the CPU count)."""
        worker = Worker(
            self.environment(), queues=queues, concurrency=concurrency, processes=processes
        )
        self._workers.add(worker)
        return worker

    def _cancel_locally(self, job_id: str) -> None:
        for worker in list(self._workers):
            worker.request_cancel(job_id)

    def _nudge_locally(self, worker_id: str) -> None:
        for worker in list(self._workers):
            if worker.id == worker_id:
                worker.beat_now()


class JobHandle(Generic[ResultT]):
    """What enqueue returns: the job's id, its stored record, and whether it was created.

    `JobHandle[R]` for a job function returning R: `wait().result` is an R, rebuilt from the
    stored JSON by the function's return hint (None until the job completed)."""

    __slots__ = ("_app", "_spec", "created", "job")

    def __init__(self, app: App, job: Job, created: bool, spec: ArgumentSpec | None = None) -> None:
        self._app = app
        self.job = job
        self.created = created
        self._spec = spec

    @property
    def id(self) -> str:
        """The job's id."""
        return self.job.id

    def refresh(self) -> Job:
        """Read the job again from the store."""
        self.job = self._app.jobs.require(self.job.id)
        return self.job

    def _typed(self) -> Job[ResultT]:
        job = self.job
        if self._spec is None or job.result is None or job.state is not JobState.COMPLETED:
            return job
        try:
            return replace(job, result=self._spec.decode_result(job.result))
        except InvalidResult:
            return job  # a middleware replaced what the job returned: shown as stored

    def wait(self, timeout: float = 30.0, interval: float = 0.05) -> Job[ResultT]:
        """Block until the job is finished (completed, failed, cancelled, skipped); raises
        WaitTimeout (a TimeoutError) after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not self.refresh().is_finished:
            if time.monotonic() > deadline:
                raise WaitTimeout(f"job {self.id} is still {self.job.state} after {timeout} s")
            threading.Event().wait(interval)
        return self._typed()

    async def wait_async(self, timeout: float = 30.0, interval: float = 0.05) -> Job[ResultT]:
        """`wait` for async code."""
        try:
            async with asyncio.timeout(timeout):
                # the job finishes in another process: polling the store is the only signal
                while not (await asyncio.to_thread(self.refresh)).is_finished:  # noqa: ASYNC110
                    await asyncio.sleep(interval)
        except TimeoutError:
            raise WaitTimeout(
                f"job {self.id} is still {self.job.state} after {timeout} s"
            ) from None
        return self._typed()

    def __repr__(self) -> str:
        return f"<JobHandle {self.job.name} {self.id} {self.job.state}>"


class JobFunction(Generic[P, R]):
    """A registered job: `.enqueue(...)` takes the function's own arguments (after the
    Context), checked by type checkers and again at enqueue; calling it runs the body now
    (for an async job, it returns the coroutine)."""

    def __init__(self, app: App, definition: JobDefinition, options: JobOptions) -> None:
        self.app = app
        self.definition = definition
        self.options = options
        self.name = definition.name

    def __call__(self, ctx: Context, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self.definition.func(ctx, *args, **kwargs)

    def with_options(self, **options: Unpack[OptionOverrides]) -> JobFunction[P, R]:
        """A copy that enqueues with other options: delay, run_at, priority, queue,
        unique_key, max_attempts, timeout, backoff, metadata."""
        return JobFunction(self.app, self.definition, self.options.merged(**options))

    def request(self, *args: P.args, **kwargs: P.kwargs) -> NewJob:
        """Build (not store) this job, for `app.enqueue_many`; raises InvalidArguments when
        the arguments do not fit the function."""
        spec = self.definition.spec
        if spec is not None:
            return self.app._build(self.name, self.options, spec.bind(args, kwargs))
        if args:
            raise InvalidArguments(
                f"job {self.name!r} was registered with validate=False: give its arguments by name"
            )
        return self.app._build(self.name, self.options, kwargs)

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Store this job to run in the background; returns its handle."""
        return self.app.enqueue_many([self.request(*args, **kwargs)])[0]

    async def enqueue_async(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """`enqueue` for async code."""
        return (await self.app.enqueue_many_async([self.request(*args, **kwargs)]))[0]

    def enqueue_in(self, connection: Any, /, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue inside the caller's open transaction on a psycopg `connection`
        (PostgreSQL): rolled back means no job; committed means the job is there."""
        jobs = [self.request(*args, **kwargs)]
        return self.app.enqueue_many(jobs, connection=connection)[0]

    async def enqueue_in_async(
        self, connection: Any, /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle[R]:
        """`enqueue_in` on a psycopg.AsyncConnection."""
        jobs = [self.request(*args, **kwargs)]
        return (await self.app.enqueue_many_async(jobs, connection=connection))[0]

    def __repr__(self) -> str:
        return f"<JobFunction {self.name}>"


class JobDecorator(Protocol):
    """What `@app.job(...)` with options returns: the decorator that registers the job."""

    @overload
    def __call__(self, func: type[T], /) -> JobFunction[..., Any]: ...

    @overload
    def __call__(
        self, func: Callable[Concatenate[Context, P], Awaitable[R]], /
    ) -> JobFunction[P, R]: ...

    @overload
    def __call__(self, func: Callable[Concatenate[Context, P], R], /) -> JobFunction[P, R]: ...


def _caller_names() -> Mapping[str, Any]:
    """The local names where the job was decorated (two frames up), so that its hints may
    name classes defined inside a function, as tests often do."""
    frame = sys._getframe(2)
    return frame.f_locals if frame.f_code.co_name != "<module>" else {}


def _default_name(target: Callable[..., Any]) -> str:
    return getattr(target, "__name__", None) or repr(target)
