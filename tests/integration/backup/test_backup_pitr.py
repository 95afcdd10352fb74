"""Point-in-time recovery on a MariaDB of our own with binary logging on: after a table is dropped,
`backup restore --until T` brings back exactly the movements acknowledged by T."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app.extensions import db
from app.models import Movement
from app.services import backup as backups
from app.services import stock
from app.services.ledger import find_ledger_mismatches, find_total_mismatches
from tests.factories import Factory
from tests.integration.backup.conftest import _execute

MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)


@pytest.fixture
def pitr_app(binlog_server, app_on):
    name = f"inventory_pitr_{uuid.uuid4().hex[:12]}"
    _execute(binlog_server, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    yield app_on(f"{binlog_server}/{name}?charset=utf8mb4", migrate=True)
    _execute(binlog_server, f"DROP DATABASE IF EXISTS `{name}`")


def _issue(app, sku: str, shelf: str, count: int) -> list[int]:
    with app.app_context():
        ids = [stock.issue_stock(sku=sku, location=shelf, quantity=1, user="pitr").id for _ in range(count)]
        db.session.remove()
    return ids


def _next_whole_second() -> datetime:
    """A moment T on a whole second (the binary log's resolution), once the clock has passed it."""
    now = datetime.now(UTC)
    moment = now.replace(microsecond=0) + timedelta(seconds=1)
    while datetime.now(UTC) < moment:  # waiting for the wall clock itself, which T is about
        time.sleep(0.02)
    return moment


@pytest.mark.mysql
def test_point_in_time_recovery_restores_exactly_the_movements_acknowledged_by_t(pitr_app, tmp_path):
    factory = Factory(pitr_app)
    item, shelf = factory.item(sku="PITR-1"), factory.location()
    opening = factory.stock(item, shelf, 1000).id
    before_backup = _issue(pitr_app, item.sku, shelf.code, 5)
    with pitr_app.app_context():
        made = backups.create_backup(target=str(tmp_path), app_version="test")
        db.session.remove()
    assert made.manifest["binlog"]["file"].startswith("binlog.")
    after_backup = _issue(pitr_app, item.sku, shelf.code, 5)
    moment = _next_whole_second()
    after_t = _issue(pitr_app, item.sku, shelf.code, 5)
    with pitr_app.app_context():
        db.session.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        db.session.execute(text("DROP TABLE items"))
        db.session.commit()
        db.session.remove()

    result = pitr_app.test_cli_runner().invoke(
        args=["backup", "restore", made.url, "--yes", "--until", f"{moment:%Y-%m-%d %H:%M:%S}"]
    )
    assert result.exit_code == 0, result.output
    with pitr_app.app_context():
        restored = set(db.session.scalars(select(Movement.id)))
        assert find_ledger_mismatches() == [] and find_total_mismatches() == []
        on_hand = db.session.scalar(text("SELECT on_hand FROM items WHERE sku = 'PITR-1'"))
        db.session.remove()
    assert restored == {opening, *before_backup, *after_backup}
    assert not restored & set(after_t)
    assert on_hand == 1000 - 10


@pytest.mark.mysql
def test_point_in_time_recovery_refuses_a_moment_before_the_backup(pitr_app, tmp_path):
    with pitr_app.app_context():
        made = backups.create_backup(target=str(tmp_path), app_version="test")
        db.session.remove()
    result = pitr_app.test_cli_runner().invoke(
        args=["backup", "restore", made.url, "--yes", "--until", "2020-01-01 00:00:00"]
    )
    assert result.exit_code == 1 and "before the backup was taken" in result.output


@MYSQL_ONLY
def test_point_in_time_recovery_refuses_a_backup_taken_without_binary_logging(app, factory, tmp_path):
    """The shared test server runs without a binary log, as a server with log_bin off would."""
    factory.item(sku="NOLOG-1")
    with app.app_context():
        assert db.session.execute(text("SHOW VARIABLES LIKE 'log_bin'")).one()[1] == "OFF"
        made = backups.create_backup(target=str(tmp_path), app_version="test")
        db.session.remove()
    assert made.manifest["binlog"] is None
    result = app.test_cli_runner().invoke(
        args=["backup", "restore", made.url, "--yes", "--until", f"{datetime.now(UTC):%Y-%m-%d %H:%M:%S}"]
    )
    assert result.exit_code == 1 and "binary logging was off" in result.output
    with app.app_context():
        assert db.session.scalar(text("SELECT COUNT(*) FROM items WHERE sku = 'NOLOG-1'")) == 1
        db.session.remove()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_point_in_time_recovery_on_sqlite_says_it_is_not_available(app, tmp_path):
    with app.app_context():
        made = backups.create_backup(target=str(tmp_path), app_version="test")
        db.session.remove()
    result = app.test_cli_runner().invoke(
        args=["backup", "restore", made.url, "--yes", "--until", "2026-11-26 10:15:00"]
    )
    assert result.exit_code == 1
    assert "point-in-time recovery (--until) is not available on SQLite" in result.output
