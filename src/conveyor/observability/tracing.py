"""OpenTelemetry tracing for an App (the `otel` extra: opentelemetry-api).

`install(app)` adds:

* a PRODUCER span `conveyor enqueue <name>` for each job enqueued in this process (from the
  `enqueued` hook, so once the job is stored), and
* a CONSUMER span `conveyor run <name>` around each attempt (a middleware), whose parent is the
  W3C trace context carried in the job's metadata under `traceparent` (and `tracestate`).

`install` also registers `inject()` as a metadata provider, so every job enqueued in this process
carries the caller's trace context, and the run span continues the producer's trace in whatever
process the job runs. Only
opentelemetry-api is used: configure a TracerProvider (opentelemetry-sdk) in your program.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from conveyor.app import App
from conveyor.context import Context
from conveyor.model.job import Job
from conveyor.runtime.hooks import JobEvent
from conveyor.runtime.middleware import Call

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
INSTRUMENTATION = "conveyor"
_propagator = TraceContextTextMapPropagator()


def inject(metadata: Mapping[str, str] | None = None) -> dict[str, str]:
    """`metadata` plus the current trace context (`traceparent`, `tracestate`) when a span is
    active; pass it as `metadata=` when enqueueing."""
    carrier: dict[str, str] = dict(metadata or {})
    _propagator.inject(carrier)
    return carrier


def extract(metadata: Mapping[str, str]) -> otel_context.Context:
    """The trace context a job's metadata carries (an empty context if none)."""
    return _propagator.extract(dict(metadata))


def _attributes(job: Job) -> dict[str, Any]:
    return {
        "messaging.system": "conveyor",
        "messaging.destination.name": job.queue,
        "messaging.message.id": job.id,
        "conveyor.job.name": job.name,
        "conveyor.job.attempt": job.attempt,
    }


class Tracing:
    """The enqueue hook and the execution middleware of one App."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def on_enqueued(self, event: JobEvent) -> None:
        """A span for a stored job, in the trace its metadata names (else the current one)."""
        job = event.job
        parent = extract(job.metadata) if TRACEPARENT in job.metadata else None
        span = self.tracer.start_span(
            f"conveyor enqueue {job.name}",
            context=parent,
            kind=SpanKind.PRODUCER,
            attributes=_attributes(job),
        )
        span.end()

    async def middleware(self, ctx: Context, call_next: Call) -> Any:
        """Run the attempt inside a span continuing the trace in the job's metadata."""
        job = ctx.job
        with self.tracer.start_as_current_span(
            f"conveyor run {job.name}",
            context=extract(job.metadata),
            kind=SpanKind.CONSUMER,
            attributes=_attributes(job),
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                return await call_next()
            except BaseException as exc:
                _record(span, exc)
                raise


def _record(span: Span, exc: BaseException) -> None:
    span.record_exception(exc)
    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def install(app: App, tracer_provider: trace.TracerProvider | None = None) -> Tracing:
    """Trace enqueues and executions of `app` with `tracer_provider` (default: the global one).

    Install before creating the worker (middleware is fixed when a worker is created).
    """
    tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
    tracing = Tracing(tracer)
    app.hooks.add("enqueued", tracing.on_enqueued)
    app.add_metadata_provider(inject)  # the enqueuing code's trace context rides with the job
    app.use(tracing.middleware)
    return tracing


__all__ = ["TRACEPARENT", "TRACESTATE", "Tracing", "extract", "inject", "install"]
