"""Observability for Conveyor: structured logging, Prometheus metrics and OpenTelemetry tracing.

`conveyor.observability.logging` needs only the standard library; `metrics` needs the
`metrics` extra (prometheus-client) and `tracing` the `otel` extra (opentelemetry-api).
Each is installed on an App through its public hooks and middleware.
"""
