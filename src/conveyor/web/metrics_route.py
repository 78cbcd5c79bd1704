"""`GET /metrics`: Prometheus metrics of the app, for holders of the `view` permission."""

from __future__ import annotations

from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse

from conveyor.web.auth import VIEW
from conveyor.web.dashboard import Dashboard


def install_metrics(api: FastAPI, dash: Dashboard, prefix: str) -> bool:
    """Serve the app's metrics at `<prefix>/metrics` when prometheus-client is installed
    (the `metrics` extra); returns whether it did."""
    try:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

        from conveyor.observability import metrics
    except ImportError:
        return False
    registry = CollectorRegistry()
    metrics.install(dash.app, registry)

    @api.get(
        f"{prefix}/metrics",
        include_in_schema=False,
        dependencies=[Depends(dash.requires(VIEW))],
    )
    def prometheus_metrics() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(registry), media_type=CONTENT_TYPE_LATEST)

    return True
