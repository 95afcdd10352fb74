"""The schema and the transaction setup: migrations agree with the models, and each database is
configured the way the stock service relies on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade
from sqlalchemy import event, select, text

from app import MIGRATIONS_DIR
from app.extensions import db
from app.models import Category, Item
from app.services import stock, transaction

SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
MYSQL_ONLY = pytest.mark.parametrize("backend", [pytest.param("mysql", marks=pytest.mark.mysql)], indirect=True)


def test_migrations_have_a_single_head():
    assert len(ScriptDirectory(MIGRATIONS_DIR).get_heads()) == 1


def test_models_and_migrations_agree(app_ctx):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        assert compare_metadata(context, db.metadata) == []


def test_migrations_downgrade_to_nothing_and_back(app_ctx):
    downgrade(revision="base")
    with db.engine.connect() as conn:
        tables = set(db.inspect(conn).get_table_names()) - {"alembic_version"}
    upgrade()
    assert tables == set()
    with db.engine.connect() as conn:
        assert {"items", "stock_levels", "movements"} <= set(db.inspect(conn).get_table_names())


def test_upgrade_fills_each_item_total_from_its_stock_levels(app_ctx, factory):
    item, shelf, bin_ = factory.item(sku="FILL-1"), factory.location(), factory.location()
    factory.stock(item, shelf, 5)
    factory.stock(item, bin_, "2.5")
    factory.item(sku="FILL-2")
    downgrade(revision="caff2c0f360b")  # before items.on_hand
    upgrade()
    totals = dict(db.session.execute(text("SELECT sku, on_hand FROM items")).tuples().all())
    assert totals == {"FILL-1": Decimal("7.5"), "FILL-2": 0}


@SQLITE_ONLY
def test_sqlite_write_transactions_begin_immediate(app_ctx, factory):
    item, shelf = factory.item(sku="IMM-1"), factory.location()
    statements: list[str] = []

    def capture(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        stock.receive_stock(sku=item.sku, location=shelf.code, quantity=1, user="t")
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)
    assert statements[0] == "BEGIN IMMEDIATE"
    assert db.session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert db.session.execute(text("PRAGMA foreign_keys")).scalar() == 1


@SQLITE_ONLY
def test_sqlite_writers_wait_for_each_other_instead_of_failing(make_app, factory):
    """A second writer queues behind a held write lock (busy timeout) and then succeeds."""
    app = make_app()
    item, shelf = factory.item(sku="WAIT-1"), factory.location()
    factory.stock(item, shelf, 10)
    locked, release = threading.Event(), threading.Event()
    done: list[str] = []

    def hold_lock():
        with app.app_context(), db.engine.connect() as conn, conn.execution_options(inventory_write=True).begin():
            locked.set()
            release.wait(5)

    def issue():
        with app.app_context():
            done.append(str(stock.issue_stock(sku="WAIT-1", location=shelf.code, quantity=1, user="t").from_balance))
            db.session.remove()

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert locked.wait(5)
    writer = threading.Thread(target=issue)
    writer.start()
    writer.join(0.5)
    assert done == []  # still waiting for the lock
    release.set()
    holder.join()
    writer.join(10)
    assert done == ["9.000"]


def test_listed_codes_are_joined_as_the_column_compares_them(app_ctx, factory, backend, monkeypatch):
    for sku in ("LST-a'b\"c%", "LST-螺栓📦", "LST-Case", "LST-Ünï"):
        factory.item(sku=sku)
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)  # several documents, so the chunking is used
    asked = ["LST-a'b\"c%", "LST-螺栓📦", "lst-case", "LST-uni", '"]}, {"x', "LST-" + "x" * 61, "LST-none"]
    skus = Item.__table__.c.sku
    found = [
        sku
        for listed in transaction.listed(asked, like=skus)
        for sku in db.session.scalars(select(skus).join(listed, skus == listed.c.value))
    ]
    # MariaDB's utf8mb4_unicode_ci ignores case and accents, as IN (...) did; SQLite compares bytes.
    folded = ["LST-Case", "LST-Ünï"] if backend == "mysql" else []
    assert sorted(found) == sorted(["LST-a'b\"c%", "LST-螺栓📦", *folded])


def test_rows_a_generator_makes_are_inserted_in_its_order_and_its_error_writes_none(app_ctx, monkeypatch):
    """insert_rows runs a generator of rows (on MariaDB in its helper thread, a document ahead of
    the INSERT under way): the rows arrive in the generator's order across several documents, and
    an error raised while making a later document rolls back the documents already inserted."""
    monkeypatch.setattr(transaction, "JSON_ROWS", 2)
    table = Category.__table__

    def rows(fail_at: int | None) -> Iterator[dict[str, str]]:
        for n in range(7):
            if n == fail_at:
                raise RuntimeError("this row could not be made")
            yield {"name": f"GEN-{n}", "description": f"第 {n} 批 '\\"}

    @transaction.unit_of_work
    def write(fail_at: int | None) -> None:
        transaction.insert_rows(table, rows(fail_at))

    made = select(Category.name, Category.description).where(Category.name.like("GEN-%")).order_by(Category.id)
    with pytest.raises(RuntimeError, match="could not be made"):
        write(5)
    assert db.session.execute(made).all() == []
    write(None)
    assert [tuple(row) for row in db.session.execute(made)] == [(f"GEN-{n}", f"第 {n} 批 '\\") for n in range(7)]


@MYSQL_ONLY
def test_mysql_sessions_use_read_committed_utf8mb4_and_innodb(app_ctx):
    raw = db.session.connection().connection.dbapi_connection
    isolation = db.engine.dialect.get_isolation_level(raw)  # @@tx_isolation or @@transaction_isolation
    charset = db.session.execute(text("SELECT @@character_set_connection")).scalar()
    engines = set(
        db.session.execute(
            text("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")
        ).scalars()
    )
    assert (isolation, charset, engines) == ("READ COMMITTED", "utf8mb4", {"InnoDB"})


@MYSQL_ONLY
def test_mysql_keeps_chinese_names_and_emoji(app_ctx, factory):
    item = factory.item(sku="CN-1", name="不锈钢螺丝钉 📦")
    stored = db.session.execute(text("SELECT name FROM items WHERE sku = 'CN-1'")).scalar()
    assert stored == item.name == "不锈钢螺丝钉 📦"


@MYSQL_ONLY
def test_a_connection_the_server_dropped_is_replaced_without_failing_the_request(make_app, factory):
    """No pre-ping: the stale pooled connection fails on the first statement, nothing was written,
    so the unit of work runs again on a new connection."""
    import pymysql
    from sqlalchemy.engine import make_url

    from app.services.transaction import transaction_retried

    single = make_app(SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 1, "max_overflow": 0})  # the one to kill
    item, shelf = factory.item(sku="DROP-1"), factory.location()
    factory.stock(item, shelf, 5)
    reasons: list[str] = []

    def count_retry(sender, reason):
        reasons.append(reason)

    with single.app_context():
        stale_id = db.session.execute(text("SELECT CONNECTION_ID()")).scalar()
        db.session.commit()  # the connection goes back to the pool
        url = make_url(str(db.engine.url))
        killer = pymysql.connect(host=url.host, port=url.port or 3306, user=url.username, password=url.password or "")
        killer.cursor().execute(f"KILL CONNECTION {int(stale_id)}")
        killer.close()
        transaction_retried.connect(count_retry)
        try:
            movement = stock.issue_stock(sku="DROP-1", location=shelf.code, quantity=2, user="t")
        finally:
            transaction_retried.disconnect(count_retry)
        assert db.session.execute(text("SELECT CONNECTION_ID()")).scalar() != stale_id
        db.session.remove()
    assert movement.from_balance == 3 and reasons == ["disconnect"]


@MYSQL_ONLY
def test_a_connection_returned_mid_transaction_releases_its_row_locks(app_ctx, factory):
    """Without pool reset-on-return, closing a Connection must still roll back what it held."""
    import pymysql
    from sqlalchemy.engine import make_url

    item, shelf = factory.item(sku="LOCK-1"), factory.location()
    factory.stock(item, shelf, 5)
    with db.engine.connect() as conn:
        conn.execute(text("SELECT quantity FROM stock_levels FOR UPDATE"))
    url = make_url(str(db.engine.url))
    other = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or "", database=url.database
    )
    try:
        with other.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 1")
            cur.execute("SELECT quantity FROM stock_levels FOR UPDATE")  # 1205 if the lock were still held
            assert cur.fetchone()[0] == 5
    finally:
        other.close()
