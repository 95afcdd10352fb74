"""Prometheus metrics: HTTP requests per URL rule, business counters, and database-derived gauges.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR is set in the environment before anything imports
prometheus_client (gunicorn.conf.py / the container), so every worker writes its samples to files
there and /metrics adds them up across workers (see gunicorn_hooks.py for the wipe and the
dead-worker cleanup). Each app gets its own registry, so test apps never collide.

/metrics is not public: it answers only with `Authorization: Bearer <INVENTORY_METRICS_TOKEN>`,
and is switched off (404) while no token is configured.
"""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, abort, current_app, request
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_flask_exporter import PrometheusMetrics
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from app.config import settings
from app.extensions import db
from app.services import combining, stock, stock_core, transaction

log = logging.getLogger(__name__)
EXTENSION_KEY = "inventory_metrics"
TX_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route(req: Request) -> str:
    """The URL rule (`/items/<sku>`), never the raw path, so label values stay few."""
    return req.url_rule.rule if req.url_rule is not None else "<unmatched>"


@dataclass
class BusinessMetrics:
    movements: Counter
    units: Counter
    rejections: Counter
    retries: Counter
    tx_duration: Histogram
    batch_size: Histogram
    low_stock_items: Gauge
    outbox_events: Gauge
    outbox_failing: Gauge
    outbox_oldest_pending: Gauge
    ledger_mismatches: Gauge
    ledger_audit_time: Gauge
    ready: Gauge
    backup_time: Gauge
    backup_verify_time: Gauge
    backup_size: Gauge
    backup_duration: Gauge
    import_jobs: Gauge
    import_job_oldest_waiting: Gauge
    import_job_last_failure: Gauge
    lots_expiring: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry) -> BusinessMetrics:
        def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
            # Any worker may refresh these at scrape time; the newest write is the truth.
            return Gauge(name, doc, labels, registry=registry, multiprocess_mode="mostrecent")

        return cls(
            movements=Counter(
                "inventory_stock_movements_total", "Ledger lines written, by kind.", ("kind",), registry=registry
            ),
            units=Counter(
                "inventory_stock_units_moved_total",
                "Units moved (sum of quantities), by kind.",
                ("kind",),
                registry=registry,
            ),
            rejections=Counter(
                "inventory_stock_rejections_total",
                "Decrements refused for insufficient stock, by kind.",
                ("kind",),
                registry=registry,
            ),
            retries=Counter(
                "inventory_transaction_retries_total",
                "Units of work run again after a lock conflict, by reason.",
                ("reason",),
                registry=registry,
            ),
            tx_duration=Histogram(
                "inventory_stock_transaction_duration_seconds",
                "Duration of write transactions (one run of a unit of work, to its COMMIT or ROLLBACK).",
                ("outcome",),
                buckets=TX_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "inventory_stock_out_batch_size",
                "Stock-outs of one stock level applied in one transaction by the request holding its lock.",
                buckets=BATCH_BUCKETS,
                registry=registry,
            ),
            low_stock_items=gauge(
                "inventory_low_stock_items", "Active items whose total on hand is at or below the reorder point."
            ),
            outbox_events=gauge(
                "inventory_outbox_events", "Outbox events (low stock, lot expiry), by status.", ("status",)
            ),
            outbox_failing=gauge(
                "inventory_outbox_failing_events", "Pending outbox events whose last delivery attempt failed."
            ),
            outbox_oldest_pending=gauge(
                "inventory_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox event (0 if none)."
            ),
            ledger_mismatches=gauge(
                "inventory_ledger_mismatches", "Stock levels the ledger does not explain, at the last audit."
            ),
            ledger_audit_time=gauge(
                "inventory_ledger_audit_timestamp_seconds", "When the last ledger audit finished (Unix time)."
            ),
            ready=gauge("inventory_ready", "1 when /readyz would answer ok (database reachable, schema at head)."),
            backup_time=gauge(
                "inventory_backup_last_success_timestamp_seconds",
                "When the last successful `flask backup create` finished (Unix time; 0: never).",
            ),
            backup_verify_time=gauge(
                "inventory_backup_last_verify_success_timestamp_seconds",
                "When the last successful `flask backup verify` finished (Unix time; 0: never).",
            ),
            backup_size=gauge("inventory_backup_size_bytes", "Compressed size of the last successful backup."),
            backup_duration=gauge(
                "inventory_backup_duration_seconds", "How long the last successful backup took, by kind.", ("kind",)
            ),
            import_jobs=gauge(
                "inventory_import_jobs", "Import jobs, by state (queued, running, done, failed).", ("state",)
            ),
            import_job_oldest_waiting=gauge(
                "inventory_import_job_oldest_waiting_age_seconds",
                "How long the longest-waiting import job has waited for a worker: queued, or running on a"
                " lapsed lease (0 if none).",
            ),
            import_job_last_failure=gauge(
                "inventory_import_job_last_failure_timestamp_seconds",
                "When the latest failed import job still kept failed (Unix time; 0: none).",
            ),
            lots_expiring=gauge(
                "inventory_lots_expiring",
                "Lots with stock expired, or expiring within their item's warning days, by state.",
                ("state",),
            ),
        )


def _require_token(view: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        expected = settings().INVENTORY_METRICS_TOKEN
        if not expected:
            abort(404)
        supplied = request.headers.get("Authorization", "")
        if not hmac.compare_digest(supplied.encode(), f"Bearer {expected}".encode()):
            abort(401)
        refresh_gauges(current_app._get_current_object())  # type: ignore[attr-defined]
        return view(*args, **kwargs)

    return guarded


def init_metrics(app: Flask) -> PrometheusMetrics:
    # `_created` series double the series count and classic PromQL has no use for them.
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    exporter = PrometheusMetrics(
        app=None,
        registry=registry,
        path="/metrics",
        defaults_prefix="inventory",
        group_by=route,
        buckets=HTTP_BUCKETS,
        excluded_paths=["^/healthz$", "^/readyz$", "^/metrics$", "^/static/"],
        metrics_decorator=_require_token,
    )
    exporter.init_app(app)
    exporter.info("inventory_app_info", "The running release.", version=settings(app).INVENTORY_VERSION)
    business = BusinessMetrics.create(registry)
    app.extensions[EXTENSION_KEY] = business
    app.extensions["inventory_metrics_exporter"] = exporter
    _connect_signals()
    return exporter


def business_metrics(app: Flask) -> BusinessMetrics | None:
    metrics: BusinessMetrics | None = app.extensions.get(EXTENSION_KEY)
    return metrics


# ---------------------------------------------------------------- business counters (signals)


def _on_stock_moved(sender: Flask, movements: list[Any] | None = None, **kwargs: Any) -> None:
    metrics = business_metrics(sender)
    if metrics is None:
        return
    if movements is None:  # bulk receipt: only how many lines, no per-line quantities
        metrics.movements.labels(kind=kwargs.get("kind", "receive")).inc(kwargs.get("count", 0))
        return
    for movement in movements:
        metrics.movements.labels(kind=movement.kind).inc()
        metrics.units.labels(kind=movement.kind).inc(float(movement.quantity))


def _on_stock_rejected(sender: Flask, kind: str = "unknown", **_kwargs: Any) -> None:
    if (metrics := business_metrics(sender)) is not None:
        metrics.rejections.labels(kind=kind).inc()


def _on_transaction_retried(sender: Flask, reason: str = "unknown", **_kwargs: Any) -> None:
    if (metrics := business_metrics(sender)) is not None:
        metrics.retries.labels(reason=reason).inc()


def _on_transaction_finished(sender: Flask, outcome: str = "commit", seconds: float = 0.0, **_kwargs: Any) -> None:
    if (metrics := business_metrics(sender)) is not None:
        metrics.tx_duration.labels(outcome=outcome).observe(seconds)


def _on_stock_outs_combined(sender: Flask, size: int = 0, **_kwargs: Any) -> None:
    if (metrics := business_metrics(sender)) is not None:
        metrics.batch_size.observe(size)


def _connect_signals() -> None:
    # Module-level receivers, connected once per process; each finds its app's metrics by sender.
    stock.stock_moved.connect(_on_stock_moved, weak=False)
    stock_core.stock_rejected.connect(_on_stock_rejected, weak=False)
    combining.stock_outs_combined.connect(_on_stock_outs_combined, weak=False)
    transaction.transaction_retried.connect(_on_transaction_retried, weak=False)
    transaction.transaction_finished.connect(_on_transaction_finished, weak=False)


# ---------------------------------------------------------------- gauges read from the database


def refresh_gauges(app: Flask) -> None:
    """Recompute the database-derived gauges (called on each authorised scrape)."""
    metrics = business_metrics(app)
    if metrics is None:
        return
    from app.observability.health import readiness

    ready, _body = readiness()
    metrics.ready.set(1 if ready else 0)
    if not ready:
        return
    try:
        _refresh_from_database(metrics)
    except SQLAlchemyError:
        log.warning("could not refresh database gauges", exc_info=True)
    finally:
        db.session.rollback()


def _refresh_from_database(metrics: BusinessMetrics) -> None:
    from app.models import OutboxEvent
    from app.models.notification import LedgerAudit
    from app.models.types import utcnow
    from app.services.dashboard import count_low_stock_items

    metrics.low_stock_items.set(count_low_stock_items())
    counts = dict(
        db.session.execute(select(OutboxEvent.status, func.count()).group_by(OutboxEvent.status)).tuples().all()
    )
    for status in ("pending", "delivered", "dead"):
        metrics.outbox_events.labels(status=status).set(counts.get(status, 0))
    failing, oldest = db.session.execute(
        select(
            func.sum(case((OutboxEvent.attempts > 0, 1), else_=0)),
            func.min(OutboxEvent.created_at),
        ).where(OutboxEvent.status == "pending")
    ).one()
    metrics.outbox_failing.set(failing or 0)
    metrics.outbox_oldest_pending.set((utcnow() - oldest).total_seconds() if oldest is not None else 0)
    _refresh_backups(metrics)
    _refresh_import_jobs(metrics)
    _refresh_lots(metrics)
    audit = db.session.scalars(select(LedgerAudit).order_by(LedgerAudit.id.desc()).limit(1)).first()
    if audit is not None:
        metrics.ledger_mismatches.set(audit.mismatches)
        metrics.ledger_audit_time.set(audit.finished_at.timestamp())


def _refresh_lots(metrics: BusinessMetrics) -> None:
    from app.services.expiry import count_lots_by_state

    for state, count in count_lots_by_state().items():
        metrics.lots_expiring.labels(state=state).set(count)


def _refresh_import_jobs(metrics: BusinessMetrics) -> None:
    """A queue that only grows, or a job waiting long, means no job worker is running (see `flask
    jobs run`); the alerts on these gauges are in ops/prometheus/rules/inventory-alerts.yml."""
    from app.services import jobs

    for state, count in jobs.counts_by_state().items():
        metrics.import_jobs.labels(state=state).set(count)
    metrics.import_job_oldest_waiting.set(jobs.oldest_waiting_seconds())
    failed = jobs.last_failure()
    metrics.import_job_last_failure.set(failed.timestamp() if failed else 0)


def _refresh_backups(metrics: BusinessMetrics) -> None:
    """The backup CronJob writes each outcome to backup_runs; here they become gauges. Never having
    backed up reads as 0 (the epoch), so the staleness alert fires rather than stays silent."""
    from app.services.backup import last_successful

    created, verified = last_successful("create"), last_successful("verify")
    metrics.backup_time.set(created.finished_at.timestamp() if created else 0)
    metrics.backup_verify_time.set(verified.finished_at.timestamp() if verified else 0)
    metrics.backup_size.set(created.size_bytes if created else 0)
    metrics.backup_duration.labels(kind="create").set(created.duration_seconds if created else 0)
    metrics.backup_duration.labels(kind="verify").set(verified.duration_seconds if verified else 0)
