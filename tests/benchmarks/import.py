"""A 100,000-row import of items with opening stock, on MariaDB.

    python tests/benchmarks/import.py [--rows 100000] [--changes 10000] [--mysql-url mysql+pymysql://root@127.0.0.1:3306]

Creates its own database, writes a GBK CSV of `rows` items (Chinese names, half with a barcode)
spread over 20 locations, then times the two steps the import page runs: the check (preview) and
the all-or-nothing commit (app.services.imports.commit_import), and a second commit of the same
file (idempotent: nothing written), then a file that renames the first `changes` items and
changes their reorder points (the changed-items path, no stock). Verifies item, movement and
stock counts and the ledger, prints the figures and drops the database. Goal (issue 13): the
commit finishes within 15 s on single MariaDB.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import pymysql
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

LOCATIONS = [f"BI-A-{n:02d}-01" for n in range(1, 21)]


def connect(server: str) -> pymysql.connections.Connection:
    url = make_url(server)
    host, port, user = url.host or "127.0.0.1", url.port or 3306, url.username or "root"
    return pymysql.connect(host=host, port=port, user=user, password=url.password or "", autocommit=True)


def make_file(rows: int) -> bytes:
    lines = ["编码,名称,条码,单位,分类,补货点,库位,数量"]
    for n in range(rows):
        barcode = f"69{n:011d}" if n % 2 else ""
        name = f"不锈钢螺栓 M{n % 97} 型号{n}"
        lines.append(f"IMP-{n:06d},{name},{barcode},个,紧固件,{n % 10},{LOCATIONS[n % 20]},{n % 50 + 1}")
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def make_changes(rows: int) -> bytes:
    """The first `rows` items renamed, with another reorder point: changes only, no stock."""
    lines = ["编码,名称,补货点"] + [f"IMP-{n:06d},镀锌螺栓 M{n % 97} 型号{n},{n % 10 + 1}" for n in range(rows)]
    return ("\r\n".join(lines) + "\r\n").encode("gbk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306")
    args = parser.parse_args()

    from flask_migrate import upgrade

    from app import create_app
    from app.config import Config
    from app.extensions import db
    from app.models import Item, Movement, StockLevel
    from app.services import imports, ledger, locations

    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    conn = connect(args.mysql_url)
    conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        url = f"{args.mysql_url}/{name}?charset=utf8mb4"
        app = create_app(Config(SECRET_KEY="bench-" + "x" * 32, SQLALCHEMY_DATABASE_URI=url, INVENTORY_ENV="testing"))
        data = make_file(args.rows)
        with app.app_context():
            upgrade()
            locations.create_warehouse(code="BI", name="导入基准")
            for code in LOCATIONS:
                locations.create_location(warehouse="BI", code=code)
            started = time.perf_counter()
            checked = imports.check_file(data, "bench.csv")
            check_seconds = time.perf_counter() - started
            assert not checked.errors, checked.errors[:3]
            db.session.remove()
            started, cpu = time.perf_counter(), time.process_time()
            result = imports.commit_import(data=data, filename="bench.csv", user="bench")
            commit_seconds, commit_cpu = time.perf_counter() - started, time.process_time() - cpu
            started = time.perf_counter()
            again = imports.commit_import(data=data, filename="bench.csv", user="bench")
            again_seconds = time.perf_counter() - started
            changes = make_changes(min(args.changes, args.rows))
            started = time.perf_counter()
            changed = imports.commit_import(data=changes, filename="changes.csv", user="bench")
            change_seconds = time.perf_counter() - started
            counts = [db.session.scalar(select(func.count()).select_from(m)) for m in (Item, Movement, StockLevel)]
            mismatches = ledger.find_ledger_mismatches()
            db.session.remove()
            db.engine.dispose()
        assert result.items_created == args.rows and result.stock_lines == args.rows, result
        assert again.already_imported and counts == [args.rows, args.rows, args.rows], counts
        assert mismatches == [], mismatches[:3]
        assert changed.items_updated == min(args.changes, args.rows) and changed.stock_lines == 0, changed
        print(f"rows                 {args.rows:>10,}")
        print(f"file                 {len(data) / 1e6:>10.1f} MB (GBK CSV)")
        print(f"check (preview)      {check_seconds:>10.1f} s")
        print(f"commit               {commit_seconds:>10.1f} s  ({args.rows / commit_seconds:,.0f} rows/s)")
        print(f"  of it Python's CPU {commit_cpu:>10.1f} s  (the rest: the database, and waiting for a core)")
        print(f"commit again         {again_seconds:>10.3f} s  (idempotent: nothing written)")
        print(f"commit of changes    {change_seconds:>10.1f} s  ({changed.items_updated:,} items changed)")
        print("ledger               reconciles")
    finally:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


if __name__ == "__main__":
    main()
