"""Prometheus metrics for an App (the `metrics` extra: prometheus-client).

    from conveyor.observability.metrics import install, wsgi_app
    metrics = install(app)                     # counters and histogram fed by app hooks
    start_http_server(9100)                    # or mount wsgi_app() / asgi_app() at /metrics

Per process (each worker and producer counts what it saw):

* `conveyor_jobs_enqueued_total`, `…_started_total`, `…_succeeded_total`, `…_failed_total`,
  `…_retried_total`, `…_cancelled_total` by `name` and `queue`;
* `conveyor_job_duration_seconds` by `name`, `queue` and `outcome` (succeeded, failed, retried,
  cancelled): from the `started` hook to the hook of the attempt's recorded outcome.

Read from the store at each scrape (the same values whichever process is scraped):

* `conveyor_queue_waiting_jobs`, `conveyor_queue_due_jobs`, `conveyor_queue_running_jobs`,
  `conveyor_queue_paused` and `conveyor_queue_oldest_due_age_seconds` by `queue`;
* `conveyor_queue_held_by_key_jobs` and `conveyor_queue_held_by_rate_jobs` by `queue`: due jobs
  a concurrency key's limit, or a spent rate window (the queue's or the job's own), holds back;
* `conveyor_workers_alive`; `conveyor_store_up` (0 when the store could not be read).

* `conveyor_claim_batch_size`: jobs taken per claim, from the worker's claim hook.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from conveyor.app import App
from conveyor.errors import ConfigurationError
from conveyor.runtime.hooks import EventKind, JobEvent

log = logging.getLogger("conveyor.metrics")
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
MAX_TRACKED = 100_000  # started jobs awaiting an outcome (released jobs never get one)

_COUNTED: dict[EventKind, str] = {
    "enqueued": "enqueued",
    "started": "started",
    "succeeded": "succeeded",
    "failed": "failed",
    "retrying": "retried",
    "cancelled": "cancelled",
}
_FINISHING: dict[EventKind, str] = {
    "succeeded": "succeeded",
    "failed": "failed",
    "retrying": "retried",
    "cancelled": "cancelled",
}


class StoreCollector(Collector):
    """Queue depth, oldest due job's age and live workers, read from the store at scrape time."""

    def __init__(self, app: App, namespace: str = "conveyor") -> None:
        self._app = app
        self._ns = namespace

    def describe(self) -> Iterable[Metric]:
        """No description up front: registering must not read the store."""
        return []

    def collect(self) -> Iterable[Metric]:
        """Read app.jobs.queues() and app.jobs.workers() now."""
        ns = self._ns
        up = GaugeMetricFamily(f"{ns}_store_up", "1 if the store answered this scrape, else 0")
        try:
            statuses = self._app.jobs.queues()
            alive = len(self._app.jobs.workers())
        except Exception as exc:
            log.warning("metrics: reading the store failed (%s)", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = self._app.clock()
        families = {
            "waiting": GaugeMetricFamily(
                f"{ns}_queue_waiting_jobs", "Scheduled and pending jobs", labels=["queue"]
            ),
            "due": GaugeMetricFamily(
                f"{ns}_queue_due_jobs", "Jobs that are due and wait for a worker", labels=["queue"]
            ),
            "running": GaugeMetricFamily(
                f"{ns}_queue_running_jobs", "Jobs running now", labels=["queue"]
            ),
            "paused": GaugeMetricFamily(
                f"{ns}_queue_paused", "1 if the queue is paused", labels=["queue"]
            ),
            "age": GaugeMetricFamily(
                f"{ns}_queue_oldest_due_age_seconds",
                "How long the oldest due job has been waiting (0 if none)",
                labels=["queue"],
            ),
            "by_key": GaugeMetricFamily(
                f"{ns}_queue_held_by_key_jobs",
                "Due jobs held back because their concurrency key runs as many as its limit",
                labels=["queue"],
            ),
            "by_rate": GaugeMetricFamily(
                f"{ns}_queue_held_by_rate_jobs",
                "Due jobs held back because their queue's or their own rate is spent now",
                labels=["queue"],
            ),
        }
        for q in statuses:
            families["waiting"].add_metric([q.name], q.waiting)
            families["due"].add_metric([q.name], q.due)
            families["running"].add_metric([q.name], q.running)
            families["paused"].add_metric([q.name], 1 if q.paused else 0)
            age = 0.0 if q.oldest_due_at is None else (now - q.oldest_due_at).total_seconds()
            families["age"].add_metric([q.name], max(age, 0.0))
            families["by_key"].add_metric([q.name], q.held_by_key)
            families["by_rate"].add_metric([q.name], q.held_by_rate)
        yield from families.values()
        workers = GaugeMetricFamily(f"{ns}_workers_alive", "Workers with a recent heartbeat")
        workers.add_metric([], alive)
        yield workers


class ConveyorMetrics:
    """The collectors installed on one App, in `registry`."""

    def __init__(
        self,
        app: App,
        registry: CollectorRegistry,
        namespace: str = "conveyor",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.registry = registry
        self._clock = clock
        self._started: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        labels = ["name", "queue"]
        self.counters = {
            label: Counter(f"{namespace}_jobs_{label}", f"Jobs {label}", labels, registry=registry)
            for label in _COUNTED.values()
        }
        self.duration = Histogram(
            f"{namespace}_job_duration_seconds",
            "Seconds from an attempt's start to its recorded outcome",
            [*labels, "outcome"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.claim_batch_size = Histogram(
            f"{namespace}_claim_batch_size",
            "Jobs a worker took in one claim",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.store = StoreCollector(app, namespace)
        registry.register(self.store)

    def on_event(self, event: JobEvent) -> None:
        """The hook: count the event, and time attempts from started to their outcome."""
        job = event.job
        self.counters[_COUNTED[event.kind]].labels(job.name, job.queue).inc()
        key = (job.id, job.attempt)
        if event.kind == "started":
            with self._lock:
                self._started[key] = self._clock()
                if len(self._started) > MAX_TRACKED:  # forget the oldest
                    self._started.pop(next(iter(self._started)))
            return
        outcome = _FINISHING.get(event.kind)
        if outcome is None:
            return
        with self._lock:
            began = self._started.pop(key, None)
        if began is not None:
            self.duration.labels(job.name, job.queue, outcome).observe(self._clock() - began)

    def observe_claim(self, size: int) -> None:
        """Record one claim of `size` jobs (for a worker claim hook)."""
        self.claim_batch_size.observe(size)

    def unregister(self) -> None:
        """Remove every collector from the registry (hooks stay, counting into nothing)."""
        for collector in (*self.counters.values(), self.duration, self.claim_batch_size):
            self.registry.unregister(collector)
        self.registry.unregister(self.store)


def install(
    app: App, registry: CollectorRegistry | None = None, *, namespace: str = "conveyor"
) -> ConveyorMetrics:
    """Register Conveyor's metrics for `app` in `registry` (default: prometheus_client's global
    REGISTRY, which `start_http_server` serves) and feed them from the app's hooks.

    Install before creating the worker. Installing twice on one registry raises
    ConfigurationError (duplicated time series).
    """
    try:
        metrics = ConveyorMetrics(app, registry if registry is not None else REGISTRY, namespace)
    except ValueError as exc:  # prometheus_client refuses duplicated time series
        raise ConfigurationError(
            f"Conveyor's metrics are already installed on this registry ({exc}): install them "
            "once per registry, or unregister() the first"
        ) from exc
    for kind in _COUNTED:
        app.hooks.add(kind, metrics.on_event)
    app.hooks.on_claim(lambda claimed, _requested: metrics.observe_claim(claimed))
    return metrics


def wsgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Iterable[bytes]]:
    """A WSGI application serving the metrics of `registry` (to mount at /metrics)."""
    from prometheus_client import make_wsgi_app

    return make_wsgi_app(registry if registry is not None else REGISTRY)


def asgi_app(registry: CollectorRegistry | None = None) -> Callable[..., Any]:
    """An ASGI application serving the metrics of `registry` (to mount at /metrics)."""
    from prometheus_client import make_asgi_app

    return make_asgi_app(registry if registry is not None else REGISTRY)


def serve(port: int, addr: str = "0.0.0.0", registry: CollectorRegistry | None = None) -> None:
    """Serve `registry` on http://addr:port/metrics from a daemon thread."""
    from prometheus_client import start_http_server

    start_http_server(port, addr, registry if registry is not None else REGISTRY)


def render(registry: CollectorRegistry | None = None) -> str:
    """The metrics in Prometheus's text format."""
    from prometheus_client import generate_latest

    return generate_latest(registry if registry is not None else REGISTRY).decode()


def samples(registry: CollectorRegistry) -> Iterator[tuple[str, dict[str, str], float]]:
    """Every sample as (name, labels, value): handy in tests and scripts."""
    for metric in registry.collect():
        for sample in metric.samples:
            yield sample.name, dict(sample.labels), sample.value


__all__ = [
    "ConveyorMetrics",
    "StoreCollector",
    "asgi_app",
    "install",
    "render",
    "samples",
    "serve",
    "wsgi_app",
]
