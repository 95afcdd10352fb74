"""Prometheus metrics: the protected /metrics endpoint, per-route request metrics, business metrics."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from app.extensions import db
from app.observability.logging import configure_root_logger
from app.services import stock, transaction
from app.services.errors import InsufficientStock

TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(autouse=True)
def _json_logs(app):
    """The session app ran Alembic's fileConfig, which replaces the root handlers: put ours back."""
    configure_root_logger()


def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(app, name: str, **labels: str) -> float:
    registry = app.extensions["inventory_metrics_exporter"].registry
    return registry.get_sample_value(name, labels) or 0.0


def test_metrics_need_the_bearer_token_and_are_off_without_one(make_app):
    open_app = make_app()
    assert open_app.test_client().get("/metrics").status_code == 404
    client = make_app(INVENTORY_METRICS_TOKEN=TOKEN).test_client()
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = client.get("/metrics", headers=AUTH)
    assert answer.status_code == 200 and "inventory_app_info" in answer.get_data(as_text=True)


def test_requests_are_grouped_by_url_rule_and_probes_are_not_counted(make_app):
    app = make_app(INVENTORY_METRICS_TOKEN=TOKEN, INVENTORY_VERSION="1.2.3")
    app.add_url_rule("/probe/<name>", "probe", lambda name: f"hi {name}")
    client = app.test_client()
    for name in ("a", "b", "c"):
        assert client.get(f"/probe/{name}").status_code == 200
    client.get("/healthz")
    client.get("/readyz")

    samples = scrape(client)

    counts = {k[1]: v for k, v in samples.items() if k[0] == "inventory_http_request_duration_seconds_count"}
    assert counts[(("method", "GET"), ("route", "/probe/<name>"), ("status", "200"))] == 3
    assert not any(dict(labels).get("route") in ("/healthz", "/readyz", "/metrics") for labels in counts)
    assert not any("/probe/a" in str(labels) for labels in counts)
    assert samples[("inventory_app_info", (("version", "1.2.3"),))] == 1


def test_each_app_has_its_own_registry(make_app):
    first, second = make_app(INVENTORY_METRICS_TOKEN=TOKEN), make_app(INVENTORY_METRICS_TOKEN=TOKEN)
    first.test_client().get("/nothing-here")
    assert (
        value(first, "inventory_http_request_duration_seconds_count", method="GET", route="<unmatched>", status="404")
        == 1
    )
    assert (
        value(second, "inventory_http_request_duration_seconds_count", method="GET", route="<unmatched>", status="404")
        == 0
    )


def test_movements_units_rejections_and_transaction_durations_are_counted(app, factory):
    item, location = factory.item(sku="MET-1"), factory.location()
    before = {
        "receive": value(app, "inventory_stock_movements_total", kind="receive"),
        "issue_units": value(app, "inventory_stock_units_moved_total", kind="issue"),
        "rejected": value(app, "inventory_stock_rejections_total", kind="issue"),
        "commits": value(app, "inventory_stock_transaction_duration_seconds_count", outcome="commit"),
        "rollbacks": value(app, "inventory_stock_transaction_duration_seconds_count", outcome="rollback"),
    }
    factory.stock(item, location, 10)
    with app.app_context():
        stock.issue_stock(sku="MET-1", location=location.code, quantity="2.5", user="clerk")
        try:
            stock.issue_stock(sku="MET-1", location=location.code, quantity=100, user="clerk")
        except InsufficientStock:
            pass
        else:
            raise AssertionError("issuing more than on hand must fail")

    assert value(app, "inventory_stock_movements_total", kind="receive") == before["receive"] + 1
    assert value(app, "inventory_stock_units_moved_total", kind="issue") == before["issue_units"] + 2.5
    assert value(app, "inventory_stock_rejections_total", kind="issue") == before["rejected"] + 1
    assert value(app, "inventory_stock_transaction_duration_seconds_count", outcome="commit") >= before["commits"] + 2
    assert (
        value(app, "inventory_stock_transaction_duration_seconds_count", outcome="rollback") >= before["rollbacks"] + 1
    )


def test_bulk_receipts_count_their_lines(app, factory):
    item, location = factory.item(sku="BULK-1"), factory.location()
    before = value(app, "inventory_stock_movements_total", kind="receive")
    with app.app_context():
        stock.receive_lines(
            lines=[dict(sku=item.sku, location=location.code, quantity=n) for n in (1, 2, 3)], user="seed"
        )
    assert value(app, "inventory_stock_movements_total", kind="receive") == before + 3


def test_transaction_retries_are_counted_by_reason(app):
    before = value(app, "inventory_transaction_retries_total", reason="deadlock")
    transaction.transaction_retried.send(app, reason="deadlock")
    assert value(app, "inventory_transaction_retries_total", reason="deadlock") == before + 1


def test_database_gauges_show_low_stock_outbox_readiness_and_the_last_ledger_audit(app, make_app, factory):
    scraper = make_app(INVENTORY_METRICS_TOKEN=TOKEN).test_client()
    item = factory.item(sku="LOW-1", reorder_point=5)
    factory.item(sku="FINE-1", reorder_point=0)
    location = factory.location()
    factory.stock(item, location, 10)
    with app.app_context():
        stock.issue_stock(sku="LOW-1", location=location.code, quantity=7, user="clerk")
    app.test_cli_runner().invoke(args=["notify", "audit"])

    samples = scrape(scraper)

    assert samples[("inventory_low_stock_items", ())] == 1
    assert samples[("inventory_outbox_events", (("status", "pending"),))] == 1
    assert samples[("inventory_outbox_events", (("status", "dead"),))] == 0
    assert samples[("inventory_outbox_oldest_pending_age_seconds", ())] >= 0
    assert samples[("inventory_ready", ())] == 1
    assert samples[("inventory_ledger_mismatches", ())] == 0
    assert samples[("inventory_ledger_audit_timestamp_seconds", ())] > 1_700_000_000

    with app.app_context():
        from app.models import StockLevel

        db.session.execute(update(StockLevel).values(quantity=1))
        db.session.commit()
    app.test_cli_runner().invoke(args=["notify", "audit"])
    assert scrape(scraper)[("inventory_ledger_mismatches", ())] == 1


def test_import_jobs_are_counted_by_state(app, make_app):
    from app.services import jobs

    scraper = make_app(INVENTORY_METRICS_TOKEN=TOKEN).test_client()
    with app.app_context():
        digest = jobs.store_upload(data=b"sku,name\nM-1,m\n", filename="m.csv", user="boss")
        jobs.enqueue_import(digest=digest, filename="m.csv", user="boss", rows=1)
        db.session.remove()

    samples = scrape(scraper)

    assert samples[("inventory_import_jobs", (("state", "queued"),))] == 1
    assert samples[("inventory_import_jobs", (("state", "running"),))] == 0


def test_the_import_queue_exports_its_longest_wait_and_its_latest_failure(app, make_app):
    from datetime import timedelta

    from app.models import ImportJob
    from app.models.types import utcnow
    from app.services import jobs

    scraper = make_app(INVENTORY_METRICS_TOKEN=TOKEN).test_client()
    idle = scrape(scraper)
    assert idle[("inventory_import_job_oldest_waiting_age_seconds", ())] == 0
    assert idle[("inventory_import_job_last_failure_timestamp_seconds", ())] == 0
    now = utcnow()
    failed_at = now - timedelta(minutes=3)
    with app.app_context():
        digest = jobs.store_upload(data=b"sku,name\nQ-1,q\n", filename="q.csv", user="boss")
        queued = jobs.enqueue_import(digest=digest, filename="q.csv", user="boss", rows=1)
        db.session.execute(
            update(ImportJob).where(ImportJob.id == queued).values(created_at=now - timedelta(minutes=10))
        )
        for state, values in (
            ("running", {"lease_expires_at": now - timedelta(minutes=20)}),  # lapsed: waiting the longest
            ("running", {"lease_expires_at": now + timedelta(minutes=1)}),  # a worker holds it
            ("failed", {"finished_at": failed_at}),
        ):
            db.session.add(ImportJob(digest=digest, filename="q.csv", username="boss", state=state, **values))
        db.session.commit()
        db.session.remove()

    samples = scrape(scraper)

    assert 20 * 60 <= samples[("inventory_import_job_oldest_waiting_age_seconds", ())] < 21 * 60
    assert samples[("inventory_import_job_last_failure_timestamp_seconds", ())] == pytest.approx(
        failed_at.timestamp(), abs=1
    )
