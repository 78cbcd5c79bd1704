"""Tracing: an enqueue span and a run span per attempt, in the producer's trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from conveyor import App
from conveyor.observability import tracing


async def test_enqueue_and_run_spans_share_the_producers_trace(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}", poll_interval=0.05)
    tracing.install(app, provider)

    @app.job
    def ok(ctx: Any) -> str:
        return "fine"

    @app.job(max_attempts=1)
    def bad(ctx: Any) -> None:
        raise ValueError("nope")

    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        good = app.enqueue("ok")  # the installed metadata provider adds the trace context
        failing = app.enqueue("bad", metadata={"tenant": "acme"})
    untraced = app.enqueue("ok")  # no active span: nothing to carry
    assert good.job.metadata[tracing.TRACEPARENT].split("-")[1] == (
        f"{request.get_span_context().trace_id:032x}"
    )
    assert failing.job.metadata["tenant"] == "acme"
    async with app.worker():
        for handle in (good, failing, untraced):
            await handle.wait_async(timeout=15, interval=0.02)
    app.close()

    spans = exporter.get_finished_spans()
    trace_id = request.get_span_context().trace_id
    request_id = request.get_span_context().span_id
    by_name: dict[str, list[Any]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    enqueues = by_name["conveyor enqueue ok"] + by_name["conveyor enqueue bad"]
    runs_ok, [run_bad] = by_name["conveyor run ok"], by_name["conveyor run bad"]
    assert len(enqueues) == 3 and len(runs_ok) == 2
    traced = [s for s in [*enqueues, *runs_ok, run_bad] if s.context.trace_id == trace_id]
    assert len(traced) == 4  # two enqueues and two runs; the untraced job has its own trace
    for span in traced:
        assert span.parent is not None and span.parent.span_id == request_id
        assert span.kind in (SpanKind.PRODUCER, SpanKind.CONSUMER)
    assert run_bad.status.status_code is StatusCode.ERROR
    assert run_bad.events[0].name == "exception"
    assert run_bad.attributes is not None
    assert run_bad.attributes["messaging.message.id"] == failing.id
    assert run_bad.attributes["conveyor.job.attempt"] == 1
    [untraced_run] = [s for s in runs_ok if s.context.trace_id != trace_id]
    assert untraced_run.parent is None


def test_inject_without_an_active_span_adds_nothing() -> None:
    assert tracing.inject({"a": "b"}) == {"a": "b"}
