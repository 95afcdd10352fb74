"""Health endpoints, metrics and logs: everything operators watch."""

from __future__ import annotations

from flask import Flask


def init_observability(app: Flask) -> None:
    """JSON logs with request and trace ids, then request and business metrics (and /metrics),
    then traces."""
    from app.observability.logging import init_logging
    from app.observability.metrics import init_metrics
    from app.observability.tracing import init_tracing

    init_logging(app)
    init_metrics(app)
    init_tracing(app)
