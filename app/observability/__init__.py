"""Health endpoints, metrics and logs: everything operators watch."""

from __future__ import annotations

from flask import Flask


def init_observability(app: Flask) -> None:
    """JSON logs with request ids, then request and business metrics (and /metrics)."""
    from app.observability.logging import init_logging
    from app.observability.metrics import init_metrics

    init_logging(app)
    init_metrics(app)
