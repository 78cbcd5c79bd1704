"""Prometheus metrics: scraped after a known set of jobs, checked for exact values."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conveyor import App, Backoff, Retry
from conveyor.errors import ConfigurationError
from conveyor.model.job import utcnow
from conveyor.observability import metrics


def scrape(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """GET /metrics through the WSGI app, parsed into {(sample, labels): value}."""
    status: list[str] = []
    body = b"".join(
        metrics.wsgi_app(registry)(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/metrics", "QUERY_STRING": ""},
            lambda code, headers: status.append(code),
        )
    )
    assert status == ["200 OK"]
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[sample.name, frozenset(sample.labels.items())] = sample.value
    return values


def at(values: dict[Any, float], sample: str, /, **labels: str) -> float:
    """The value of one sample (KeyError if it is absent)."""
    return values[sample, frozenset(labels.items())]


async def test_metrics_after_a_known_set_of_jobs(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}", poll_interval=0.05)
    registry = CollectorRegistry()
    metrics.install(app, registry)
    tries = {"flaky": 0}

    @app.job
    def ok(ctx: Any) -> None:
        pass

    @app.job(max_attempts=2, backoff=Backoff(base=0, jitter=0))
    def flaky(ctx: Any) -> None:
        tries["flaky"] += 1
        if tries["flaky"] == 1:
            raise Retry(delay=0)

    @app.job(max_attempts=1, queue="risky")
    def bad(ctx: Any) -> None:
        raise ValueError("no")

    @app.job(queue="held")
    def later(ctx: Any) -> None:
        pass

    app.jobs.pause_queue("held")
    handles = [ok.enqueue(), ok.enqueue(), ok.enqueue(), flaky.enqueue(), bad.enqueue()]
    later.enqueue()
    async with app.worker(concurrency=4):
        for handle in handles:
            await handle.wait_async(timeout=15, interval=0.02)
        during = scrape(registry)
    after = scrape(registry)
    app.close()

    assert at(during, "conveyor_workers_alive") == 1
    assert at(after, "conveyor_workers_alive") == 0
    assert at(after, "conveyor_store_up") == 1
    expected = {
        ("enqueued", "ok", "default"): 3,
        ("enqueued", "flaky", "default"): 1,
        ("enqueued", "bad", "risky"): 1,
        ("enqueued", "later", "held"): 1,
        ("started", "ok", "default"): 3,
        ("started", "flaky", "default"): 2,
        ("started", "bad", "risky"): 1,
        ("succeeded", "ok", "default"): 3,
        ("succeeded", "flaky", "default"): 1,
        ("retried", "flaky", "default"): 1,
        ("failed", "bad", "risky"): 1,
    }
    for (kind, name, queue), value in expected.items():
        assert at(after, f"conveyor_jobs_{kind}_total", name=name, queue=queue) == value
    counted = {
        (name.removeprefix("conveyor_jobs_").removesuffix("_total"), dict(labels)["name"])
        for name, labels in after
        if name.startswith("conveyor_jobs_") and name.endswith("_total")
    }
    assert counted == {(kind, name) for kind, name, _ in expected}  # nothing else counted
    durations = {
        ("ok", "default", "succeeded"): 3,
        ("flaky", "default", "retried"): 1,
        ("flaky", "default", "succeeded"): 1,
        ("bad", "risky", "failed"): 1,
    }
    for (name, queue, outcome), count in durations.items():
        labels = {"name": name, "queue": queue, "outcome": outcome}
        assert at(after, "conveyor_job_duration_seconds_count", **labels) == count
        assert at(after, "conveyor_job_duration_seconds_sum", **labels) > 0
        assert at(after, "conveyor_job_duration_seconds_bucket", **labels, le="+Inf") == count
    assert at(after, "conveyor_queue_waiting_jobs", queue="held") == 1
    assert at(after, "conveyor_queue_due_jobs", queue="held") == 1
    assert at(after, "conveyor_queue_paused", queue="held") == 1
    assert at(after, "conveyor_queue_paused", queue="default") == 0
    assert at(after, "conveyor_queue_running_jobs", queue="default") == 0
    assert at(after, "conveyor_queue_oldest_due_age_seconds", queue="held") > 0
    assert at(after, "conveyor_queue_oldest_due_age_seconds", queue="default") == 0
    # every attempt was claimed once: 3 + 2 + 1 started, in however many claims
    assert at(after, "conveyor_claim_batch_size_sum") == 6
    assert 1 <= at(after, "conveyor_claim_batch_size_count") <= 6


def test_the_oldest_due_age_follows_the_apps_clock(tmp_path: Path) -> None:
    now = [utcnow()]
    app = App(f"sqlite:///{tmp_path / 'jobs.db'}", clock=lambda: now[0])
    app.declare("x")
    registry = CollectorRegistry()
    metrics.install(app, registry)
    app.enqueue("x")
    now[0] += timedelta(seconds=90)
    assert at(scrape(registry), "conveyor_queue_oldest_due_age_seconds", queue="default") == 90
    app.close()


def test_a_store_that_cannot_be_read_is_reported_not_raised(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'jobs.db'}")
    registry = CollectorRegistry()
    metrics.install(app, registry)
    values = scrape(registry)
    assert at(values, "conveyor_store_up") == 0
    assert not any(name.startswith("conveyor_queue_") for name, _ in values)


def test_installing_twice_on_one_registry_is_refused_and_unregister_frees_it() -> None:
    app = App("memory://")
    registry = CollectorRegistry()
    first = metrics.install(app, registry)
    with pytest.raises(ConfigurationError, match="Duplicated"):
        metrics.install(app, registry)
    first.unregister()
    assert list(metrics.samples(registry)) == []
    assert "conveyor_jobs_enqueued" not in metrics.render(registry)
    metrics.install(App("memory://"), registry)
    assert "conveyor_workers_alive 0.0" in metrics.render(registry)


async def test_the_asgi_app_serves_the_registry() -> None:
    registry = CollectorRegistry()
    metrics.install(App("memory://"), registry)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "method": "GET", "path": "/metrics", "query_string": b"",
        "headers": [], "http_version": "1.1",
    }  # fmt: skip
    await metrics.asgi_app(registry)(scope, receive, send)
    assert sent[0]["status"] == 200
    body = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    assert "conveyor_workers_alive 0.0" in body


def test_jobs_run_by_app_testing_drain_are_counted_as_in_a_worker() -> None:
    app = App("memory://")
    registry = CollectorRegistry()
    metrics.install(app, registry)

    @app.job(max_attempts=2, backoff=Backoff(base=0, jitter=0))
    def flaky(ctx: Any) -> None:
        raise ValueError("no")

    flaky.enqueue()
    app.testing.drain()
    values = scrape(registry)
    for kind, value in {"enqueued": 1, "started": 2, "retried": 1, "failed": 1}.items():
        assert at(values, f"conveyor_jobs_{kind}_total", name="flaky", queue="default") == value
    labels = {"name": "flaky", "queue": "default"}
    assert at(values, "conveyor_job_duration_seconds_count", **labels, outcome="retried") == 1
    assert at(values, "conveyor_job_duration_seconds_count", **labels, outcome="failed") == 1
    assert at(values, "conveyor_claim_batch_size_sum") == 2  # one claim per attempt


def test_jobs_held_back_by_a_key_limit_and_by_a_rate_are_gauges(tmp_path: Path) -> None:
    from conveyor.backends.records import ClaimRequest

    app = App(f"sqlite:///{tmp_path / 'jobs.db'}")
    app.queue("partner-api", rate_limit="1/h")
    app.declare("x")
    registry = CollectorRegistry()
    metrics.install(app, registry)
    for _ in range(3):
        app.enqueue("x", queue="partner-api")
    for _ in range(2):
        app.enqueue("x", concurrency_key="tenant:1")
    now = app.clock()
    claimed = app.backend.claim(ClaimRequest("w", 10, now, now + timedelta(seconds=60)))
    assert len(claimed.jobs) == 2  # one of the queue (its hour's start), one of the key
    values = scrape(registry)
    assert at(values, "conveyor_queue_held_by_rate_jobs", queue="partner-api") == 2
    assert at(values, "conveyor_queue_held_by_key_jobs", queue="partner-api") == 0
    assert at(values, "conveyor_queue_held_by_key_jobs", queue="default") == 1
    assert at(values, "conveyor_queue_held_by_rate_jobs", queue="default") == 0
    app.close()
