"""The backup job's outcome reaches Prometheus through the web app's /metrics."""

from __future__ import annotations

from app.extensions import db
from app.models import BackupRun
from tests.integration.test_metrics import AUTH, TOKEN, scrape


def test_gauges_read_zero_before_any_backup_then_the_last_success(make_app, factory, tmp_path):
    app = make_app(INVENTORY_METRICS_TOKEN=TOKEN)
    client = app.test_client()
    before = scrape(client)
    assert before[("inventory_backup_last_success_timestamp_seconds", ())] == 0
    assert before[("inventory_backup_last_verify_success_timestamp_seconds", ())] == 0
    factory.stock(factory.item(), factory.location(), 3)
    runner = app.test_cli_runner()
    created = runner.invoke(args=["backup", "create", "--to", str(tmp_path)])
    assert created.exit_code == 0, created.output
    assert runner.invoke(args=["backup", "verify", created.output.strip().splitlines()[-1]]).exit_code == 0
    with app.app_context():
        db.session.add(BackupRun(kind="create", name="inventory-broken", ok=False, size_bytes=1))
        db.session.commit()
        runs = {r.kind: r for r in db.session.query(BackupRun).filter(BackupRun.ok.is_(True))}
        db.session.remove()
    after = scrape(client)
    assert after[("inventory_backup_last_success_timestamp_seconds", ())] == runs["create"].finished_at.timestamp()
    assert (
        after[("inventory_backup_last_verify_success_timestamp_seconds", ())] == runs["verify"].finished_at.timestamp()
    )
    assert after[("inventory_backup_size_bytes", ())] == runs["create"].size_bytes > 1
    assert after[("inventory_backup_duration_seconds", (("kind", "create"),))] == runs["create"].duration_seconds
    assert client.get("/metrics", headers={**AUTH, "Authorization": "Bearer wrong"}).status_code == 401
