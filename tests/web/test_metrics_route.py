"""`/metrics` on the web app: Prometheus text for viewers, refused without a token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import conveyor

pytest.importorskip("prometheus_client")


def test_metrics_need_view_and_show_the_store(
    app: conveyor.App, client: TestClient, viewer: TestClient
) -> None:
    assert client.get("/metrics").status_code == 401
    app.enqueue("hello", {"who": "metrics"})
    response = viewer.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'conveyor_jobs_enqueued_total{name="hello",queue="default"} 1.0' in response.text
    assert 'conveyor_queue_waiting_jobs{queue="default"}' in response.text
