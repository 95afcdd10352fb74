"""Backups on SQLite and MariaDB: taken hot under 16 writers and restored whole, verified by a real
restore, refused when a restore would do harm, and pruned by age."""

from __future__ import annotations

import gzip
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text

from app.extensions import db
from app.models import BackupRun, Movement
from app.services import backup as backups
from app.services import stock
from app.services.backup_store import DirectoryStore
from app.services.ledger import find_ledger_mismatches, find_total_mismatches

CLIENTS = 16


def run(app, *args):
    return app.test_cli_runner().invoke(args=list(args))


def _movement_ids(app) -> set[int]:
    with app.app_context():
        ids = set(db.session.scalars(select(Movement.id)))
        db.session.remove()
    return ids


def _take(app, target: Path) -> backups.Backup:
    with app.app_context():
        made = backups.create_backup(target=str(target), app_version="test")
        db.session.remove()
    return made


def _stocked(factory, units: int = 100_000):
    item, shelf = factory.item(sku="HOT-1"), factory.location()
    factory.stock(item, shelf, units)
    return item, shelf


def test_backup_taken_while_16_clients_issue_restores_every_acknowledged_movement(
    app, make_app, factory, fresh_database, app_on, tmp_path
):
    item, shelf = _stocked(factory)
    busy = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": CLIENTS + 4, "max_overflow": 4})
    acked: list[tuple[int, float]] = []  # (movement id, when its call returned)
    started_after: list[tuple[int, float]] = []  # (movement id, when its call began)
    progress, stop = threading.Condition(), threading.Event()
    errors: list[BaseException] = []

    def client(n: int) -> None:
        with busy.app_context():
            try:
                while not stop.is_set():
                    began = time.monotonic()
                    movement = stock.issue_stock(sku=item.sku, location=shelf.code, quantity=1, user=f"c{n}")
                    with progress:
                        acked.append((movement.id, time.monotonic()))
                        started_after.append((movement.id, began))
                        progress.notify_all()
            except BaseException as exc:
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()

    def began_after(moment: float) -> int:
        return sum(1 for _mid, began in started_after if began > moment)

    with progress:  # every client is writing before the backup starts
        assert progress.wait_for(lambda: len({mid for mid, _ in acked}) >= 3 * CLIENTS, timeout=60)
    backup_started = time.monotonic()
    made = _take(app, tmp_path)
    backup_finished = time.monotonic()
    with progress:  # and keeps writing after it
        assert progress.wait_for(lambda: began_after(backup_finished) >= 3 * CLIENTS, timeout=60)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)

    restored_app = app_on(fresh_database())
    with restored_app.app_context():
        backups.restore_backup(backup=made.url, target=str(tmp_path), confirmed=True)
        assert find_ledger_mismatches() == [] and find_total_mismatches() == []
        restored = set(db.session.scalars(select(Movement.id)))
        db.session.remove()
    before = {mid for mid, when in acked if when < backup_started}
    after = {mid for mid, when in started_after if when > backup_finished}
    assert before and after
    assert before <= restored
    assert not (after & restored)
    assert len(restored) == made.manifest["row_counts"]["movements"]
    assert max(restored) == made.manifest["last_movement_id"]
    assert len(_movement_ids(app)) > len(restored)


def test_verify_restores_a_backup_in_scratch_and_records_success(app, factory, tmp_path):
    _stocked(factory, 50)
    made = _take(app, tmp_path)
    result = run(app, "backup", "verify", made.url)
    assert result.exit_code == 0, result.output
    assert "ok   ledger checksum" in result.output and "ok   check-ledger" in result.output
    assert "ok   migrations check" in result.output and f"backup {made.name} verified" in result.output
    with app.app_context():
        runs = [(r.kind, r.name, r.ok) for r in db.session.scalars(select(BackupRun).order_by(BackupRun.id))]
        db.session.remove()
    assert runs == [("create", made.name, True), ("verify", made.name, True)]
    if made.manifest["backend"] == "mysql":
        with app.app_context():
            scratch = db.session.execute(text("SHOW DATABASES LIKE 'inventory_verify_%'")).all()
            db.session.remove()
        assert scratch == []


def test_verify_fails_clearly_on_a_truncated_backup(app, factory, tmp_path):
    _stocked(factory, 50)
    made = _take(app, tmp_path)
    payload = tmp_path / made.name / made.manifest["payload"]["file"]
    payload.write_bytes(payload.read_bytes()[: payload.stat().st_size // 2])
    result = run(app, "backup", "verify", made.url)
    assert result.exit_code == 1
    assert "truncated" in result.output and "FAILED verification" in result.output
    with app.app_context():
        last = db.session.scalars(select(BackupRun).order_by(BackupRun.id.desc())).first()
        db.session.remove()
    assert last.kind == "verify" and not last.ok and "truncated" in last.detail


def test_verify_fails_on_an_altered_backup_even_with_a_matching_payload_hash(app, factory, tmp_path):
    """Someone edits a ledger line in the payload and fixes up the manifest's size and hash: the
    restore in scratch still catches it (ledger checksum and check-ledger)."""
    item, shelf = _stocked(factory, 50)
    with app.app_context():
        stock.issue_stock(sku=item.sku, location=shelf.code, quantity=7, user="x")
        db.session.remove()
    made = _take(app, tmp_path)
    folder = tmp_path / made.name
    payload = folder / made.manifest["payload"]["file"]
    if made.manifest["backend"] == "sqlite":
        _alter_sqlite_payload(payload, tmp_path)
    else:
        dump = gzip.decompress(payload.read_bytes())
        assert b"'issue',1,NULL" not in dump
        payload.write_bytes(gzip.compress(dump.replace(b",7.000,", b",8.000,", 1)))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["payload"]["bytes"] = payload.stat().st_size
    manifest["payload"]["sha256"] = backups._file_sha256(payload)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    result = run(app, "backup", "verify", made.url)
    assert result.exit_code == 1, result.output
    assert "FAIL ledger checksum" in result.output and "FAIL check-ledger" in result.output


def _alter_sqlite_payload(payload: Path, tmp_path: Path) -> None:
    import sqlite3

    plain = tmp_path / "plain.sqlite"
    plain.write_bytes(gzip.decompress(payload.read_bytes()))
    conn = sqlite3.connect(plain)
    assert conn.execute("UPDATE movements SET quantity = 8 WHERE kind = 'issue'").rowcount == 1
    conn.commit()
    conn.close()
    payload.write_bytes(gzip.compress(plain.read_bytes()))


def test_restore_refuses_without_yes_and_changes_nothing(app, factory, tmp_path):
    _stocked(factory, 50)
    made = _take(app, tmp_path)
    factory.item(sku="AFTER-1")
    result = run(app, "backup", "restore", made.url)
    assert result.exit_code == 1 and "pass --yes to confirm" in result.output
    with app.app_context():
        assert db.session.scalar(text("SELECT COUNT(*) FROM items WHERE sku = 'AFTER-1'")) == 1
        db.session.remove()


def test_restore_refuses_over_a_newer_schema_unless_told(app, factory, tmp_path):
    item, _shelf = _stocked(factory, 50)
    made = _take(app, tmp_path)
    with app.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = 'f0f0f0f0f0f0'"))
        db.session.commit()
    refused = run(app, "backup", "restore", made.url, "--yes")
    assert refused.exit_code == 1 and "newer than the backup's" in refused.output
    with app.app_context():
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == "f0f0f0f0f0f0"
        db.session.remove()
    forced = run(app, "backup", "restore", made.url, "--yes", "--over-newer-schema")
    assert forced.exit_code == 0, forced.output
    with app.app_context():
        assert db.session.scalar(text("SELECT version_num FROM alembic_version")) == made.manifest["schema_revision"]
        assert db.session.scalar(select(func.count()).select_from(Movement)) == 1
        db.session.remove()
    assert item.sku == "HOT-1"


def test_restore_brings_back_a_dropped_table(app, factory, tmp_path):
    _stocked(factory, 50)
    made = _take(app, tmp_path)
    with app.app_context():
        db.session.execute(text("DROP TABLE stock_levels"))
        db.session.commit()
    result = run(app, "backup", "restore", made.url, "--yes")
    assert result.exit_code == 0, result.output
    assert run(app, "check-ledger").exit_code == 0
    with app.app_context():
        assert db.session.scalar(text("SELECT SUM(quantity) FROM stock_levels")) == 50
        db.session.remove()


def test_list_shows_backups_newest_first_and_ignores_incomplete_ones(app, factory, tmp_path):
    _stocked(factory, 5)
    first = _take(app, tmp_path)
    (tmp_path / "inventory-20990101T000000Z").mkdir()  # an upload that broke off: no manifest
    result = run(app, "backup", "list", "--target", str(tmp_path))
    assert result.exit_code == 0
    assert first.name in result.output and "inventory-20990101T000000Z" not in result.output


def _fake(tmp_path: Path, when: datetime) -> str:
    name = f"inventory-{when:%Y%m%dT%H%M%S}Z"
    (tmp_path / name).mkdir()
    manifest = {"format": 1, "name": name, "created_at": when.isoformat(), "payload": {"file": "x", "bytes": 0}}
    (tmp_path / name / "manifest.json").write_text(json.dumps(manifest))
    return name


def test_prune_keeps_the_newest_of_each_recent_day_and_week(app, tmp_path):
    now = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
    names = {k: _fake(tmp_path, now - timedelta(days=k)) for k in range(40)}
    extra_same_day = _fake(tmp_path, now - timedelta(hours=1))
    result = run(app, "backup", "prune", "--keep-daily", "7", "--keep-weekly", "4", "--target", str(tmp_path))
    assert result.exit_code == 0, result.output
    left = set(DirectoryStore(tmp_path).names())
    daily = {names[k] for k in range(7)}
    assert daily <= left and extra_same_day not in left
    # 2026-11-26 is a Thursday. Of the four newest ISO weeks, the two newest end on days that are
    # already kept daily (Thu 26, Sun 22); the next two are kept by their Sundays, 15 and 8 Nov.
    assert left == daily | {names[11], names[18]}
    assert "32 backup(s) deleted" in result.output
